//! `llmrouter calibrate`: retrain a router without a validation share of its training data, pick
//! on that share the cost weight with the best score within a budget (`llmrouter_core::eval::calibrate`),
//! store it in the model file, and report the outcome on the test split next to the budget.

use anyhow::{Context, Result, bail};
use llmrouter_core::eval::calibrate::{self, Budget, Outcome};
use llmrouter_core::eval::predict_set;
use llmrouter_core::meta::Holdout;
use llmrouter_core::router::TrainingSet;
use llmrouter_core::{Error, MetaRouter, MetricWeights};

use crate::cli::CalibrateArgs;
use crate::output;
use crate::progress::Bar;

pub fn run(args: &CalibrateArgs, quiet: bool) -> Result<()> {
    let budget = budget(args)?;
    anyhow::ensure!(
        args.validation_share > 0.0 && args.validation_share < 1.0,
        "--validation-share must lie strictly between 0 and 1, not {}",
        args.validation_share
    );
    let reg = crate::plugins::find(&args.router)?;
    if reg.train.is_none() {
        return Err(Error::NotTrainable { router: reg.name.to_owned() }.into());
    }
    let holdout = Holdout { share: args.validation_share, seed: args.seed };
    let meta = MetaRouter::from_yaml(&args.config, reg.name)?.with_holdout(holdout);
    crate::warnings::warn_ignored(&meta, quiet);
    if let Budget::MaxShare { model, .. } = &budget {
        if meta.candidates.index_of(model).is_none() {
            bail!(
                "--max-share names `{model}`, which is not a candidate model of {} (candidates: {})",
                meta.candidates.source().display(),
                meta.candidates.names().join(", ")
            );
        }
    }
    output::info(
        quiet,
        &format!("training {} without the validation share ({:.0}%)", reg.name, args.validation_share * 100.0),
    );
    let prepared = calibrate::prepare(reg, meta, &Bar::new(quiet))?;
    if let Some(warning) = &prepared.warning {
        eprintln!("{warning}"); // the chosen cost weight is affected: shown even with --quiet
    }
    let calibration = prepared.calibrate(&budget)?;
    let meta = &prepared.meta;
    let weights = meta.config.metric;
    let chosen = Outcome {
        cost_weight: calibration.cost_weight,
        mix: calibration.mix,
        mean_score: calibration.validation_mean_score,
        mean_cost: calibration.validation_mean_cost,
        value: calibration.validation_value,
    };
    let mix = match chosen.mix {
        Some(m) => format!(
            " ({:.1}% of queries, chosen by a hash of their text, at a weight {:.3e} lower)",
            m.share * 100.0,
            chosen.cost_weight - m.cost_weight
        ),
        None => String::new(),
    };
    let unit = match budget {
        Budget::MaxCostPerQuery { .. } => "USD/query",
        Budget::MaxShare { .. } => "share",
    };
    let mut table = String::new();
    table.push_str(&format!(
        "{:<12} {:>8} {:>10} {:>12} {:>12} {:>12} {:>9}\n",
        "split", "queries", "mean score", "mean cost", "budgeted", "budget", "vs budget"
    ));
    table.push_str(&row("validation", calibration.validation_queries, &chosen, budget.limit()));
    if meta.config.data_path_value(llmrouter_core::config::DataKey::RoutingDataTest).is_some() {
        let (test, warning) =
            TrainingSet::for_evaluation(&meta, &meta.load_routing_test()?, "data_path.routing_data_test")?;
        if let Some(warning) = warning {
            eprintln!("{warning}"); // a figure is affected: shown even with --quiet
        }
        if let Some(pred) = predict_set(prepared.router.as_ref(), &test, &Bar::new(quiet))? {
            let w = MetricWeights { cost: chosen.cost_weight, cost_mix: chosen.mix, ..weights };
            let o = calibrate::outcome(&pred, &test, w, &budget)?;
            table.push_str(&row("test", test.len(), &o, budget.limit()));
        }
    }
    // Only now does the calibrated model replace the one the config names.
    let model_path = prepared.finish()?;
    let mut text = format!(
        "calibrated {}: cost weight {:.6}{mix} for {budget}\nstored in {} (`infer` and `eval` use it; `train` drops it)\n",
        reg.name,
        chosen.cost_weight,
        model_path.display()
    );
    text.push_str(&table);
    text.push_str(&format!("budgeted quantity: {unit}\n"));
    output::stdout(&text)
}

fn row(split: &str, queries: usize, o: &Outcome, limit: f64) -> String {
    format!(
        "{split:<12} {queries:>8} {:>10.4} {:>12.4e} {:>12.4e} {:>12.4e} {:>+8.1}%\n",
        o.mean_score,
        o.mean_cost,
        o.value,
        limit,
        (o.value / limit - 1.0) * 100.0
    )
}

fn budget(args: &CalibrateArgs) -> Result<Budget> {
    match (args.max_cost_per_query, &args.max_share) {
        (Some(usd), None) => {
            anyhow::ensure!(usd > 0.0 && usd.is_finite(), "--max-cost-per-query must be a positive number of USD");
            Ok(Budget::MaxCostPerQuery { usd })
        }
        (None, Some(spec)) => {
            let (model, share) = spec.rsplit_once('=').with_context(|| {
                format!("--max-share takes MODEL=SHARE (e.g. gpt-4-1106-preview=0.2), not `{spec}`")
            })?;
            let share: f64 = share
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| (0.0..=1.0).contains(s))
                .with_context(|| format!("--max-share {spec}: the share must be a number from 0 to 1"))?;
            Ok(Budget::MaxShare { model: model.trim().to_owned(), share })
        }
        _ => bail!("give exactly one budget: --max-cost-per-query USD or --max-share MODEL=SHARE"),
    }
}
