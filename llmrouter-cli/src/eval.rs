//! `llmrouter eval`: routes a test split with one or more trained routers and reports what the
//! picks are worth next to the best single model, the cheapest model, random choice and the
//! per-query oracle (see `llmrouter_core::eval`), with each router's cost-quality curve and its
//! AIQ, APGR and CPT (see `llmrouter_core::eval::curve`).

use std::time::Instant;

use anyhow::{Context, Result};
use llmrouter_core::eval::curve::{self, Anchors, CurveMetrics, CurvePoint};
use llmrouter_core::eval::{Summary, baselines, one_hot, predict_set, route_set, summarize};
use llmrouter_core::model::Budget;
use llmrouter_core::router::TrainingSet;
use llmrouter_core::{Device, MetaRouter};
use serde::Serialize;

use crate::cli::EvalArgs;
use crate::output;
use crate::plot::{self, Kind, Marker, Series};
use crate::progress::Bar;

/// One evaluated router.
#[derive(Serialize)]
struct Evaluated {
    #[serde(flatten)]
    summary: Summary,
    /// The cost weight its decisions used, and where it came from.
    cost_weight: f64,
    cost_weight_from: &'static str,
    /// A calibration's second cost weight and the share of queries it decides.
    cost_mix: Option<llmrouter_core::CostMix>,
    /// The budget a calibration was chosen for.
    budget: Option<Budget>,
    /// Operating points: the cost-weight sweep for routers that predict per-model scores,
    /// else the one point of its decisions.
    curve: Vec<CurvePoint>,
    /// Whether `curve` is a sweep.
    swept: bool,
    #[serde(flatten)]
    metrics: CurveMetrics,
    /// Wall time of routing, predicting and sweeping, seconds.
    seconds: f64,
}

/// A reference point in `report.json`: its figures and its (one-point) curve figures.
#[derive(Serialize)]
struct Reference<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    #[serde(flatten)]
    metrics: &'a CurveMetrics,
}

pub fn run(args: &EvalArgs, quiet: bool) -> Result<()> {
    let names: Vec<&str> = args.router.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    anyhow::ensure!(!names.is_empty(), "give at least one router to --router");
    if let Some(w) = args.cost_weight {
        anyhow::ensure!(w >= 0.0 && w.is_finite(), "--cost-weight must be a non-negative number, not {w}");
    }
    let registrations = names.iter().map(|n| crate::plugins::find(n)).collect::<Result<Vec<_>, _>>()?;
    let mut evaluated: Vec<Evaluated> = Vec::new();
    let mut test: Option<(TrainingSet, MetaRouter, Anchors)> = None;
    for reg in registrations {
        let mut meta = MetaRouter::from_yaml(&args.config, reg.name)?;
        if let Some(w) = args.cost_weight {
            meta.pin_cost_weight(w);
        }
        crate::warnings::warn_ignored(&meta, quiet);
        if args.train {
            if let Some(train) = reg.train {
                output::info(quiet, &format!("training {}", reg.name));
                train(meta.clone(), Device::Cpu)?.train(&Bar::new(quiet))?;
            }
        }
        crate::warnings::warn_stale_model(&meta, quiet);
        // Applied here to report it; `build` then finds it applied and the file already read.
        let calibration = meta.apply_calibration()?;
        let cost_weight_from = match &calibration {
            Some(_) => "calibration in the model file",
            None if args.cost_weight.is_some() => "--cost-weight",
            None => "metric.weights.cost",
        };
        let router = (reg.build)(meta.clone()).with_context(|| format!("building router `{}`", reg.name))?;
        if test.is_none() {
            let (table, source) = match &args.data {
                Some(path) => (meta.load_routing_file(path)?, path.display().to_string()),
                None => (meta.load_routing_test()?, "data_path.routing_data_test".to_owned()),
            };
            let (set, warning) = TrainingSet::for_evaluation(&meta, &table, &source)?;
            if let Some(warning) = warning {
                eprintln!("{warning}"); // a figure is affected: shown even with --quiet
            }
            let anchors = Anchors::of(&set);
            test = Some((set, meta.clone(), anchors));
        }
        let Some((set, _, anchors)) = &test else { continue };
        let started = Instant::now();
        let bar = Bar::new(quiet);
        let picks = route_set(router.as_ref(), set, &bar)?;
        let summary = summarize(reg.name, set, &one_hot(&picks), meta.config.metric);
        let (curve, swept) = match predict_set(router.as_ref(), set, &bar)? {
            Some(pred) => (curve::sweep(&pred, set, meta.config.metric, &curve::cost_weight_grid(), &bar)?, true),
            None => (
                vec![CurvePoint {
                    cost_weight: meta.config.metric.cost,
                    mean_cost: summary.mean_cost,
                    mean_score: summary.mean_score,
                }],
                false,
            ),
        };
        let points: Vec<(f64, f64)> = curve.iter().map(|p| (p.mean_cost, p.mean_score)).collect();
        let metrics = curve::metrics(&points, anchors);
        let seconds = started.elapsed().as_secs_f64();
        output::info(quiet, &format!("{}: {} queries routed and swept in {seconds:.2} s", reg.name, set.len()));
        evaluated.push(Evaluated {
            summary,
            cost_weight: meta.config.metric.cost,
            cost_weight_from,
            cost_mix: meta.config.metric.cost_mix,
            budget: calibration.map(|c| c.budget),
            curve,
            swept,
            metrics,
            seconds,
        });
    }
    let Some((set, meta, anchors)) = test else { return Ok(()) };
    let weights = meta.config.metric;
    let refs: Vec<(Summary, CurveMetrics)> = baselines(&set, weights)
        .into_iter()
        .map(|s| {
            let m = curve::metrics(&[(s.mean_cost, s.mean_score)], &anchors);
            (s, m)
        })
        .collect();
    let mut text = format!(
        "{} test queries, {} models; utility = {} * score - cost weight * normalised cost\n",
        set.len(),
        set.models.len(),
        weights.performance,
    );
    let width = evaluated.iter().map(|e| &e.summary).chain(refs.iter().map(|(s, _)| s)).map(|s| s.name.len()).max();
    let width = width.unwrap_or(0).max(12);
    text.push_str(&format!(
        "{:<width$} {:>7} {:>8} {:>10} {:>7} {:>7} {:>7} {:>9} {:>9}\n",
        "", "score", "accuracy", "cost/query", "utility", "AIQ", "APGR", "CPT(50%)", "CPT(80%)"
    ));
    let rows = evaluated.iter().map(|e| (&e.summary, &e.metrics)).chain(refs.iter().map(|(s, m)| (s, m)));
    for (s, m) in rows {
        text.push_str(&format!(
            "{:<width$} {:>7.4} {:>8.4} {:>10.3e} {:>7.4} {:>7.4} {:>7} {:>9} {:>9}\n",
            s.name,
            s.mean_score,
            s.accuracy,
            s.mean_cost,
            s.utility,
            m.aiq,
            opt(m.apgr, |v| format!("{v:.4}")),
            opt(m.cpt50, |v| format!("{v:.3e}")),
            opt(m.cpt80, |v| format!("{v:.3e}")),
        ));
    }
    text.push_str(&format!(
        "AIQ over mean cost {:.3e}..{:.3e} USD/query; APGR and CPT against {} (cheapest) and {} (best)\n",
        anchors.cheapest.1, anchors.max_cost, anchors.cheapest.0, anchors.best.0
    ));
    for e in &evaluated {
        let shares: Vec<String> =
            e.summary.shares.iter().filter(|(_, v)| **v > 0.0).map(|(k, v)| format!("{k} {:.1}%", v * 100.0)).collect();
        let curve = if e.swept {
            format!("curve of {} cost weights", e.curve.len())
        } else {
            "no per-model predictions: its one point is its curve".to_owned()
        };
        let mix = match e.cost_mix {
            Some(m) => format!(", {:.1}% of queries at {:.3e} less", m.share * 100.0, e.cost_weight - m.cost_weight),
            None => String::new(),
        };
        text.push_str(&format!(
            "{}: cost weight {}{mix} ({}); {curve}; sends {}\n",
            e.summary.name,
            e.cost_weight,
            e.cost_weight_from,
            shares.join(", ")
        ));
        if let Some(budget) = &e.budget {
            let here = match budget {
                Budget::MaxCostPerQuery { .. } => e.summary.mean_cost,
                Budget::MaxShare { model, .. } => e.summary.shares.get(model).copied().unwrap_or(0.0),
            };
            text.push_str(&format!(
                "{}: calibrated for {budget}; here {here:.4e} ({:+.1}% of the budget)\n",
                e.summary.name,
                (here / budget.limit() - 1.0) * 100.0
            ));
        }
    }
    text.push_str(&per_task_table(&evaluated, &refs));
    if let Some(dir) = &args.output {
        let report = serde_json::json!({
            "config": meta.config.path(),
            "queries": set.len(),
            "models": set.models,
            "weights": weights,
            "anchors": anchors,
            "routers": evaluated,
            "references": refs.iter().map(|(summary, metrics)| Reference { summary, metrics }).collect::<Vec<_>>(),
        });
        let path = dir.join("report.json");
        output::file(&path, (serde_json::to_string_pretty(&report)? + "\n").as_bytes())?;
        let svg_path = dir.join("cost_quality.svg");
        output::file(&svg_path, chart(&set, &evaluated, &refs, &meta).as_bytes())?;
        text.push_str(&format!("report: {}\nplot: {}\n", path.display(), svg_path.display()));
    }
    output::stdout(&text)
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_owned())
}

/// Mean score per task, one column per router plus the best single model and the oracle; empty
/// when the data has no tasks.
fn per_task_table(evaluated: &[Evaluated], refs: &[(Summary, CurveMetrics)]) -> String {
    let mut columns: Vec<&Summary> = evaluated.iter().map(|e| &e.summary).collect();
    columns.extend(refs.iter().map(|(s, _)| s).filter(|s| s.name.starts_with("best single") || s.name == "oracle"));
    let Some(first) = columns.first() else { return String::new() };
    if first.per_task.keys().all(|t| t == "(none)") {
        return String::new();
    }
    let header =
        |s: &Summary| if s.name.starts_with("best single") { "best single".to_owned() } else { s.name.clone() };
    let mut text = format!("\nmean score per task\n{:<28} {:>7}", "task", "queries");
    for s in &columns {
        text.push_str(&format!(" {:>12}", trim(&header(s), 12)));
    }
    text.push('\n');
    for (task, figures) in &first.per_task {
        text.push_str(&format!("{:<28} {:>7}", trim(task, 28), figures.queries));
        for s in &columns {
            text.push_str(&format!(" {:>12.4}", s.per_task.get(task).map_or(f64::NAN, |t| t.mean_score)));
        }
        text.push('\n');
    }
    text
}

fn trim(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { s.chars().take(n - 1).chain(std::iter::once('~')).collect() }
}

fn chart(set: &TrainingSet, evaluated: &[Evaluated], refs: &[(Summary, CurveMetrics)], meta: &MetaRouter) -> String {
    let series: Vec<Series> = evaluated
        .iter()
        .map(|e| Series {
            name: e.summary.name.clone(),
            points: e.curve.iter().map(|p| (p.mean_cost, p.mean_score)).collect(),
            hull: e.metrics.hull.vertices.clone(),
        })
        .collect();
    let mut markers: Vec<Marker> = llmrouter_core::eval::model_figures(set)
        .iter()
        .zip(&set.models)
        .map(|(&(score, cost), name)| Marker { name: name.clone(), cost, score, kind: Kind::Model })
        .collect();
    for (s, _) in refs {
        let kind = match s.name.as_str() {
            "random" => Kind::Random,
            "oracle" => Kind::Oracle,
            _ => continue,
        };
        markers.push(Marker { name: s.name.clone(), cost: s.mean_cost, score: s.mean_score, kind });
    }
    let title = format!(
        "cost vs quality: {} ({} queries)",
        meta.config.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        set.len()
    );
    plot::cost_quality_svg(&title, &series, &markers)
}
