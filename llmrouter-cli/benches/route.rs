//! `cargo xtask bench-route`: how long the learned routers take to decide, in process, on the
//! test queries of `configs/llmrouter_dc.yaml` (a bench binary, `harness = false`: it prints
//! figures and asserts nothing about time).
//!
//! For each router it trains a model into `target/bench/models/` when none is there, then routes
//! the test queries:
//! - as one batch (`route_batch`, on every core), repeated for at least `--seconds`, giving the
//!   process CPU time per query (from `/proc/self/stat`) and the wall time per query;
//! - one query at a time on one thread (`route_single`, as `serve` calls it), giving the mean,
//!   p50 and p99 per query;
//! - embedding only, one query at a time on one thread, so the router's own work is the
//!   difference.
//!
//! ```sh
//! cargo xtask bench-route [--routers knnrouter,svmrouter] [--seconds 3] [--config C] [--input Q]
//! ```

#[allow(dead_code)] // `DISCOVERED` is the CLI's; the bench needs only the `use x as _;` lines.
#[path = "../src/routers.rs"]
mod routers;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use llmrouter_core::embed::{EmbedderSpec, from_spec};
use llmrouter_core::router::Device;
use llmrouter_core::{MetaRouter, NoProgress, QueryInput, registry};

/// The learned routers of llmrouter_dc, measured when `--routers` is not given.
const LEARNED: &[&str] = &["elorouter", "hybrid_llm", "knnrouter", "mfrouter", "mlprouter", "svmrouter"];

/// Upper bound on repeated batches, whatever `--seconds` says.
const MAX_ROUNDS: usize = 200;

struct Args {
    routers: Vec<String>,
    config: PathBuf,
    input: PathBuf,
    models: PathBuf,
    seconds: f64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        routers: LEARNED.iter().map(|s| (*s).to_owned()).collect(),
        config: PathBuf::from("configs/llmrouter_dc.yaml"),
        input: PathBuf::from("../shared/data/llmrouter_dc_test.jsonl"),
        models: PathBuf::from("target/bench/models"),
        seconds: 3.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--routers" => args.routers = value()?.split(',').map(str::to_owned).collect(),
            "--config" => args.config = value()?.into(),
            "--input" => args.input = value()?.into(),
            "--models" => args.models = value()?.into(),
            "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => bail!("unknown argument `{other}`"),
        }
    }
    Ok(args)
}

/// Only the embedder of a model file (every learned router saves it as `embedder`).
#[derive(serde::Deserialize)]
struct EmbedderOnly {
    embedder: Option<EmbedderSpec>,
}

fn main() -> Result<()> {
    support::enter_workspace_root()?;
    let args = parse_args()?;
    let queries = support::read_queries(&args.input)?;
    println!(
        "routing {} queries of {} ({} cores; load average {})",
        queries.len(),
        args.input.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        support::load_average()
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "router", "batch cpu", "batch wall", "single", "single p50", "single p99", "embed only"
    );
    for name in &args.routers {
        let row = measure(name, &args, &queries).with_context(|| format!("measuring {name}"))?;
        println!("{row}");
    }
    println!("(µs per query; batch: route_batch of all queries on every core, CPU time of the process;");
    println!(" single: route_single one query at a time on one thread; embed only: the embedder alone, one thread)");
    Ok(())
}

/// The model of router `name` under `dir`, trained first when missing.
fn meta_with_model(name: &str, config: &Path, dir: &Path) -> Result<MetaRouter> {
    let registration = registry::find(name)?;
    let mut meta = MetaRouter::from_yaml(config, name)?;
    let path = dir.join(format!("{name}.json"));
    meta.set_model_path(&path);
    if !path.is_file() {
        let Some(train) = registration.train else { return Ok(meta) };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        eprintln!("training {name} into {}", path.display());
        train(meta.clone(), Device::Cpu)?.train(&NoProgress)?;
        meta = MetaRouter::from_yaml(config, name)?;
        meta.set_model_path(&path);
    }
    Ok(meta)
}

fn measure(name: &str, args: &Args, queries: &[QueryInput]) -> Result<String> {
    let meta = meta_with_model(name, &args.config, &args.models)?;
    let embedder = match meta.load_model::<EmbedderOnly>() {
        Ok((EmbedderOnly { embedder: Some(spec) }, path)) => Some(from_spec(&spec, &meta.config, &path)?),
        _ => None,
    };
    let router = (registry::find(name)?.build)(meta)?;
    let n = queries.len().max(1) as f64;
    router.route_batch(queries)?; // warm-up

    // Batches, for at least `seconds` and at most MAX_ROUNDS.
    let (cpu0, wall0) = (support::process_cpu(), Instant::now());
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && (rounds < 3 || wall0.elapsed().as_secs_f64() < args.seconds) {
        router.route_batch(queries)?;
        rounds += 1;
    }
    let batch_wall = wall0.elapsed().as_secs_f64() * 1e6 / (n * rounds as f64);
    let batch_cpu = (support::process_cpu() - cpu0).as_secs_f64() * 1e6 / (n * rounds as f64);

    // One query at a time, one pass (at least `seconds / 2` when a pass is shorter).
    let mut times: Vec<Duration> = Vec::with_capacity(queries.len());
    let started = Instant::now();
    while times.len() < queries.len() * 50
        && (times.len() < queries.len() || started.elapsed().as_secs_f64() < args.seconds / 2.0)
    {
        let q = &queries[times.len() % queries.len()];
        let t = Instant::now();
        router.route_single(q)?;
        times.push(t.elapsed());
    }
    let single_mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / times.len() as f64;
    times.sort_unstable();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1e6;

    let embed = match &embedder {
        Some(e) => {
            let t = Instant::now();
            for q in queries {
                e.embed_batch_sparse(&[q.query.as_str()], &NoProgress)?;
            }
            format!("{:.1}", t.elapsed().as_secs_f64() * 1e6 / n)
        }
        None => "-".to_owned(),
    };
    Ok(format!(
        "{name:<12} {batch_cpu:>10.1} {batch_wall:>10.1} {single_mean:>10.1} {:>10.1} {:>10.1} {embed:>10}",
        at(0.5),
        at(0.99)
    ))
}
