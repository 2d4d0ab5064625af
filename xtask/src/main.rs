//! `cargo xtask`: repository chores, one module per subcommand.
//!
//! - `cargo xtask example-data [--check]`: regenerates (or checks) the synthetic example data in
//!   `data/example_data/` from a fixed seed.

mod example_data;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  example-data [--check]   regenerate data/example_data/{query_data,routing_data} (seeded, synthetic);
                           with --check, change nothing and fail when the files are stale";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("example-data") => example_data::run(&workspace_root(), args.iter().any(|a| a == "--check")),
        Some("-h" | "--help") | None => {
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
