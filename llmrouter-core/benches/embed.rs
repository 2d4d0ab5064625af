//! Embedding throughput: texts per second for each backend, one text at a time and in one batch,
//! on one thread and on all, with each run's peak memory.
//!
//! ```sh
//! cargo bench -p llmrouter-core --features minilm --bench embed
//! cargo bench -p llmrouter-core --features minilm --bench embed -- --queries 100 --backend minilm
//! ```
//!
//! Queries: `../shared/data/llmrouter_dc_test.jsonl` (`--data FILE`, or `$LLMROUTER_SHARED_DATA`).
//! The hashed backend has the default `embedding.dim`, its IDF fitted on `llmrouter_dc_train.jsonl`
//! beside it, and is measured through its sparse output (`sparse`, `embed_batch_sparse`), which is
//! what routers use for it. MiniLM reads
//! `~/.cache/llmrouter/all-MiniLM-L6-v2` (`--model-dir DIR`; `cargo xtask fetch-minilm`); it is
//! skipped when built without the `minilm` feature or when the folder is absent.
//!
//! Each (backend, threads) pair runs in a child process of its own so that its peak memory
//! (`VmHWM` of `/proc/self/status`) is its own. One thread: the child is pinned to CPU 0 with
//! `taskset` (so `available_parallelism` and candle both see one core) and `RAYON_NUM_THREADS=1`.
//! `scripts/minilm_bench.py` measures Python sentence-transformers the same way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use llmrouter_core::NoProgress;
use llmrouter_core::embed::{Embedder, EmbeddingConfig, HashedTfidf};

struct Args {
    data: PathBuf,
    model_dir: Option<PathBuf>,
    queries: usize,
    backends: Vec<String>,
    child: Option<(String, usize)>,
}

fn parse_args() -> Args {
    let shared = std::env::var_os("LLMROUTER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let mut args = Args {
        data: shared.join("llmrouter_dc_test.jsonl"),
        model_dir: None,
        queries: usize::MAX,
        backends: vec!["hashed".into(), "minilm".into()],
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        match a.as_str() {
            "--data" => args.data = PathBuf::from(value()),
            "--model-dir" => args.model_dir = Some(PathBuf::from(value())),
            "--queries" => args.queries = value().parse().unwrap_or_else(|_| fail("--queries takes a number")),
            "--backend" => args.backends = vec![value()],
            "--child" => {
                let backend = value();
                let threads = value().parse().unwrap_or_else(|_| fail("--child BACKEND THREADS"));
                args.child = Some((backend, threads));
            }
            _ => {} // `cargo bench` passes --bench
        }
    }
    args
}

fn fail(message: &str) -> ! {
    eprintln!("embed bench: {message}");
    std::process::exit(2)
}

fn read_queries(path: &Path, limit: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        fail(&format!("cannot read {}: {e} (the queries of ../shared/data; --data FILE)", path.display()))
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(limit)
        .map(|l| {
            let row: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
            row["query"].as_str().unwrap_or_else(|| fail("a row without `query`")).to_owned()
        })
        .collect()
}

/// Peak resident memory of this process, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// Runs `pass` (which embeds `n` texts) until `min` has passed; texts per second.
fn rate(n: usize, min: Duration, mut pass: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut done = 0usize;
    while done == 0 || start.elapsed() < min {
        pass();
        done += n;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Texts per second one text at a time (`single`) and all in one batch (`batch`).
fn measure(texts: &[&str], min: Duration, single: impl Fn(&str), batch: impl Fn(&[&str])) -> (f64, f64) {
    texts.iter().take(4).for_each(|t| single(t));
    let one = rate(texts.len(), min, || texts.iter().for_each(|t| single(t)));
    let all = rate(texts.len(), min, || batch(texts));
    (one, all)
}

fn child(args: &Args, backend: &str, threads: usize) {
    let queries = read_queries(&args.data, args.queries);
    let texts: Vec<&str> = queries.iter().map(String::as_str).collect();
    let (single, batch) = match backend {
        "hashed" => {
            let train = read_queries(&args.data.with_file_name("llmrouter_dc_train.jsonl"), usize::MAX);
            let train: Vec<&str> = train.iter().map(String::as_str).collect();
            // The default `embedding.dim`, through the sparse path that routers use for it.
            let embedder = HashedTfidf::fit(EmbeddingConfig::default().dim, &train);
            measure(
                &texts,
                Duration::from_secs(2),
                |t| drop(std::hint::black_box(embedder.sparse(t))),
                |ts| drop(std::hint::black_box(embedder.embed_batch_sparse(ts, &NoProgress).expect("embed"))),
            )
        }
        "minilm" => minilm(args, &texts),
        other => fail(&format!("unknown backend `{other}` (hashed, minilm)")),
    };
    println!(
        "{}",
        serde_json::json!({"backend": backend, "threads": threads, "texts": texts.len(), "single": single,
                           "batch": batch, "peak_mib": peak_mib()})
    );
}

#[cfg(feature = "minilm")]
fn minilm(args: &Args, texts: &[&str]) -> (f64, f64) {
    let dir = args.model_dir.clone().unwrap_or_else(llmrouter_core::embed::default_minilm_dir);
    let model = llmrouter_core::embed::minilm::MiniLm::load(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    measure(
        texts,
        Duration::ZERO,
        |t| drop(std::hint::black_box(model.embed(t).expect("embed"))),
        |ts| drop(std::hint::black_box(model.embed_batch(ts, &NoProgress).expect("embed"))),
    )
}

#[cfg(not(feature = "minilm"))]
fn minilm(_args: &Args, _texts: &[&str]) -> (f64, f64) {
    fail("built without the `minilm` feature (cargo bench -p llmrouter-core --features minilm --bench embed)")
}

fn main() {
    let args = parse_args();
    if let Some((backend, threads)) = &args.child {
        child(&args, backend, *threads);
        return;
    }
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    let has_taskset = Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success());
    let texts = read_queries(&args.data, args.queries).len();
    println!(
        "{texts} queries of {}, {all} CPUs{}",
        args.data.display(),
        if has_taskset { "" } else { " (no taskset: 1 thread = RAYON_NUM_THREADS=1 only)" }
    );
    println!("{:<8} {:>7} {:>14} {:>14} {:>10}", "backend", "threads", "single text/s", "batch text/s", "peak MiB");
    for backend in &args.backends {
        if backend == "minilm" && !cfg!(feature = "minilm") {
            println!("minilm   skipped: built without the `minilm` feature (--features minilm)");
            continue;
        }
        let dir = args.model_dir.clone().unwrap_or_else(llmrouter_core::embed::default_minilm_dir);
        if backend == "minilm" && !dir.join("model.safetensors").is_file() {
            println!("minilm   skipped: no model in {} (cargo xtask fetch-minilm)", dir.display());
            continue;
        }
        for threads in [1, all] {
            let mut cmd = if threads == 1 && has_taskset {
                let mut c = Command::new("taskset");
                c.args(["-c", "0"]).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            cmd.args(std::env::args().skip(1)).args(["--child", backend, &threads.to_string()]);
            cmd.env("RAYON_NUM_THREADS", threads.to_string());
            let out = cmd.output().unwrap_or_else(|e| fail(&format!("running a child: {e}")));
            let line = String::from_utf8_lossy(&out.stdout);
            let Ok(r) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
                fail(&format!("child {backend}/{threads} failed: {line}{}", String::from_utf8_lossy(&out.stderr)))
            };
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            println!("{backend:<8} {threads:>7} {:>14.1} {:>14.1} {:>10.1}", f("single"), f("batch"), f("peak_mib"));
        }
    }
}
