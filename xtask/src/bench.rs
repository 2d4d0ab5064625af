//! `cargo xtask bench-route` and `cargo xtask bench-serve`: build a bench binary of
//! `llmrouter-cli/benches/` in the release profile and run it, passing the remaining arguments
//! on. They print figures; nothing is asserted about time.
//!
//! The bench binaries live in the CLI crate (`harness = false`), so plain `cargo test` never
//! builds them and xtask needs no HTTP dependencies of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Builds the bench `name` (`route` or `serve`) with `--release` and runs it from the
/// repository root with `args`. For `serve` it first builds the `llmrouter` binary exactly as a
/// user does (`cargo build --release -p llmrouter-cli`) and copies it to `target/bench/`, the
/// `--binary` the bench starts (building a bench also relinks the binary, with the
/// dev-dependencies' features).
pub fn run(root: &Path, name: &str, args: &[String]) -> Result<()> {
    let cargo = || {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
        // `cargo run` gave xtask the variables of its own package (`CARGO_PKG_NAME=xtask`, ...);
        // build scripts that watch them (ring's) would rerun and rebuild half the tree, so the
        // build sees the environment a user's shell has.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || matches!(&*key, "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE")
            {
                command.env_remove(&*key);
            }
        }
        command.current_dir(root);
        command
    };
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let mut extra: Vec<String> = Vec::new();
    if name == "serve" && !args.iter().any(|a| a == "--binary") {
        let status =
            cargo().args(["build", "--release", "-p", "llmrouter-cli"]).status().context("running cargo build")?;
        if !status.success() {
            bail!("the release build of llmrouter failed");
        }
        let dir = target_dir.join("bench");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let binary = dir.join("llmrouter");
        std::fs::copy(target_dir.join("release/llmrouter"), &binary).context("copying the release binary")?;
        extra = vec!["--binary".to_owned(), binary.display().to_string()];
    }
    let output = cargo()
        .args(["build", "--release", "-p", "llmrouter-cli", "--bench", name])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("the release build of the {name} bench failed");
    }
    let bench = bench_executable(&String::from_utf8_lossy(&output.stdout), name)?;
    let status = Command::new(&bench)
        .current_dir(root)
        .args(&extra)
        .args(args)
        .status()
        .with_context(|| format!("running {}", bench.display()))?;
    if !status.success() {
        bail!("the {name} benchmark failed ({status})");
    }
    Ok(())
}

/// The executable of the bench target `name`, from cargo's JSON messages.
fn bench_executable(messages: &str, name: &str) -> Result<PathBuf> {
    for line in messages.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(exe), Some(target)) = (message["executable"].as_str(), message.get("target")) else { continue };
        let is_bench = target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bench"));
        if is_bench && target["name"] == name {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo did not report the `{name}` bench's executable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_executable_comes_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"llmrouter"},"executable":"/t/llmrouter"}
{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"x"},"executable":null}
{"reason":"compiler-artifact","target":{"kind":["bench"],"name":"serve"},"executable":"/t/deps/serve-1"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(bench_executable(messages, "serve").expect("found"), PathBuf::from("/t/deps/serve-1"));
        assert!(bench_executable(messages, "route").is_err());
    }
}
