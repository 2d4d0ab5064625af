//! `llmrouter eval`: routes a test split with one or more trained routers and reports what the
//! picks are worth next to the best single model, the cheapest model, random choice and the
//! per-query oracle (see `llmrouter_core::eval` for every figure's definition).

use anyhow::{Context, Result};
use llmrouter_core::eval::{Summary, baselines, one_hot, route_set, summarize};
use llmrouter_core::learn::TrainingSet;
use llmrouter_core::{Device, MetaRouter};

use crate::cli::EvalArgs;
use crate::output;
use crate::progress::Bar;

pub fn run(args: &EvalArgs, quiet: bool) -> Result<()> {
    let names: Vec<&str> = args.router.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    anyhow::ensure!(!names.is_empty(), "give at least one router to --router");
    let registrations = names.iter().map(|n| crate::plugins::find(n)).collect::<Result<Vec<_>, _>>()?;
    let mut summaries: Vec<Summary> = Vec::new();
    let mut test: Option<(TrainingSet, MetaRouter)> = None;
    for reg in registrations {
        let mut meta = MetaRouter::from_yaml(&args.config, reg.name)?;
        if let Some(w) = args.cost_weight {
            anyhow::ensure!(w >= 0.0 && w.is_finite(), "--cost-weight must be a non-negative number");
            meta.config.metric.cost = w;
        }
        crate::infer::warn_ignored(&meta, quiet);
        if args.train {
            if let Some(train) = reg.train {
                output::info(quiet, &format!("training {}", reg.name));
                train(meta.clone(), Device::Cpu)?.train(&Bar::new(quiet))?;
            }
        }
        let router = (reg.build)(meta.clone()).with_context(|| format!("building router `{}`", reg.name))?;
        if test.is_none() {
            let table = match &args.data {
                Some(path) => meta.load_routing_file(path)?,
                None => meta.load_routing_test()?,
            };
            test = Some((TrainingSet::from_table(&meta, &table)?, meta.clone()));
        }
        let Some((set, _)) = &test else { continue };
        let picks = route_set(router.as_ref(), set, &Bar::new(quiet))?;
        summaries.push(summarize(reg.name, set, &one_hot(&picks), meta.config.metric));
    }
    let Some((set, meta)) = test else { return Ok(()) };
    let weights = meta.config.metric;
    let refs = baselines(&set, weights);
    let mut text = format!(
        "{} test queries, {} models; utility = {} * score - {} * normalised cost\n",
        set.len(),
        set.models.len(),
        weights.performance,
        weights.cost
    );
    text.push_str(&format!("{:<48} {:>8} {:>9} {:>12} {:>8}\n", "", "score", "accuracy", "cost/query", "utility"));
    for s in summaries.iter().chain(&refs) {
        text.push_str(&format!(
            "{:<48} {:>8.4} {:>9.4} {:>12.4e} {:>8.4}\n",
            s.name, s.mean_score, s.accuracy, s.mean_cost, s.utility
        ));
    }
    for s in &summaries {
        let shares: Vec<String> =
            s.shares.iter().filter(|(_, v)| **v > 0.0).map(|(k, v)| format!("{k} {:.1}%", v * 100.0)).collect();
        text.push_str(&format!("{} sends: {}\n", s.name, shares.join(", ")));
    }
    if let Some(dir) = &args.output {
        let report = serde_json::json!({
            "config": meta.config.path(),
            "queries": set.len(),
            "models": set.models,
            "weights": weights,
            "routers": summaries,
            "references": refs,
        });
        let path = dir.join("report.json");
        output::file(&path, (serde_json::to_string_pretty(&report)? + "\n").as_bytes())?;
        text.push_str(&format!("report (with per-task figures): {}\n", path.display()));
    }
    output::stdout(&text)
}
