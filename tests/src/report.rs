//! Train, route and score one router on a config's test split: the shared driver of the
//! real-data tests and of the `router-report` benchmark binary.

use std::path::Path;
use std::time::Instant;

use llmrouter_core::eval::{Summary, baselines, one_hot, route_set, summarize};
use llmrouter_core::router::TrainingSet;
use llmrouter_core::{Config, Device, MetaRouter, MetricWeights, NoProgress, QueryInput, Result, registry};

/// Prints progress messages (per-epoch losses) on standard error.
struct Log;

impl llmrouter_core::Progress for Log {
    fn set_message(&self, message: &str) {
        eprintln!("  {message}");
    }
}

/// What one router did on the test split.
pub struct RouterRun {
    /// Test-split figures.
    pub summary: Summary,
    /// Wall time of training (0 for routers without a trainer).
    pub train_secs: f64,
    /// Wall time of routing the whole test split, embeddings included.
    pub route_secs: f64,
    /// The same with embeddings precomputed (routers whose model stores an embedder).
    pub route_secs_without_embedding: Option<f64>,
}

/// Trains `router` on `config` (model written to `model_path`), routes the test split and
/// scores it. `cost_weight` overrides `metric.weights.cost` when given.
pub fn run_router(
    config: &Path,
    router: &str,
    model_path: &Path,
    cost_weight: Option<f64>,
) -> Result<(RouterRun, TrainingSet)> {
    let reg = registry::find(router)?;
    let mut parsed = Config::load(config)?.with_model_path(model_path);
    if let Some(w) = cost_weight {
        parsed.metric.cost = w;
    }
    let meta = MetaRouter::from_config(parsed, router)?;
    let started = Instant::now();
    if let Some(train) = reg.train {
        let report = train(meta.clone(), Device::Cpu)?.train(&Log)?;
        for (k, v) in report.metrics {
            eprintln!("  {k}: {v}");
        }
    }
    let train_secs = started.elapsed().as_secs_f64();
    let built = (reg.build)(meta.clone())?;
    let (test, _) = TrainingSet::for_evaluation(&meta, &meta.load_routing_test()?, "the test data")?;
    let started = Instant::now();
    let picks = route_set(built.as_ref(), &test, &NoProgress)?;
    let route_secs = started.elapsed().as_secs_f64();
    let route_secs_without_embedding = precomputed_routing_time(built.as_ref(), &meta, model_path, &test)?;
    let summary = summarize(router, &test, &one_hot(&picks), meta.config.metric);
    Ok((RouterRun { summary, train_secs, route_secs, route_secs_without_embedding }, test))
}

/// Routing time with each query's `embedding` filled in beforehand, when the model file names
/// its embedder.
fn precomputed_routing_time(
    router: &dyn llmrouter_core::Router,
    meta: &MetaRouter,
    model_path: &Path,
    test: &TrainingSet,
) -> Result<Option<f64>> {
    let Ok(text) = std::fs::read_to_string(model_path) else { return Ok(None) };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { return Ok(None) };
    let Some(spec) = value.get("model").and_then(|m| m.get("embedder")) else { return Ok(None) };
    let Ok(spec) = serde_json::from_value::<llmrouter_core::embed::EmbedderSpec>(spec.clone()) else { return Ok(None) };
    let embedder = llmrouter_core::embed::from_spec(&spec, &meta.config, model_path)?;
    let texts: Vec<&str> = test.queries.iter().map(String::as_str).collect();
    let vectors = embedder.embed_batch(&texts, &NoProgress)?;
    let queries: Vec<QueryInput> = test
        .queries
        .iter()
        .zip(vectors)
        .map(|(q, v)| {
            let mut input = QueryInput::new(q.as_str());
            input.embedding = Some(v);
            input
        })
        .collect();
    let started = Instant::now();
    for chunk in queries.chunks(512) {
        router.route_batch(chunk)?;
    }
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// The reference points on a test split.
pub fn references(test: &TrainingSet, weights: MetricWeights) -> Vec<Summary> {
    baselines(test, weights)
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A table row.
pub fn row(s: &Summary) -> String {
    format!("{:<44} {:>10.4} {:>10.4} {:>12.3e} {:>10.4}", s.name, s.mean_score, s.accuracy, s.mean_cost, s.utility)
}

/// The table header matching [`row`].
pub fn header() -> String {
    format!("{:<44} {:>10} {:>10} {:>12} {:>10}", "router", "score", "accuracy", "cost/query", "utility")
}
