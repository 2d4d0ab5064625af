//! `cargo xtask bench-route` and `cargo xtask bench-serve`: build the bench binaries of
//! `llmrouter-cli/benches/` (with the `llmrouter` binary) in the release profile and run one,
//! passing the remaining arguments on. They print figures; nothing is asserted about time.
//!
//! The bench binaries live in the CLI crate (`harness = false`), so plain `cargo test` never
//! builds them and xtask needs no HTTP dependencies of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Builds `llmrouter` and the bench `name` (`route` or `serve`) with `--release`, then runs the
/// bench from the repository root with `args`; `serve` gets `--binary` pointing at the build.
pub fn run(root: &Path, name: &str, args: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "llmrouter-cli", "--bins", "--bench", name])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("the release build failed");
    }
    let (bench, binary) = executables(&String::from_utf8_lossy(&output.stdout), name)?;
    let mut command = Command::new(&bench);
    command.current_dir(root);
    if name == "serve" && !args.iter().any(|a| a == "--binary") {
        command.arg("--binary").arg(&binary);
    }
    let status = command.args(args).status().with_context(|| format!("running {}", bench.display()))?;
    if !status.success() {
        bail!("the {name} benchmark failed ({status})");
    }
    Ok(())
}

/// The executables of the bench target `name` and of the `llmrouter` binary, from cargo's JSON
/// messages.
fn executables(messages: &str, name: &str) -> Result<(PathBuf, PathBuf)> {
    let (mut bench, mut binary) = (None, None);
    for line in messages.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(exe), Some(target)) = (message["executable"].as_str(), message.get("target")) else { continue };
        let kinds: Vec<&str> = target["kind"].as_array().into_iter().flatten().filter_map(|k| k.as_str()).collect();
        if kinds.contains(&"bench") && target["name"] == name {
            bench = Some(PathBuf::from(exe));
        } else if kinds.contains(&"bin") && target["name"] == "llmrouter" {
            binary = Some(PathBuf::from(exe));
        }
    }
    match (bench, binary) {
        (Some(b), Some(l)) => Ok((b, l)),
        _ => bail!("cargo did not report the `{name}` bench and the `llmrouter` binary"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executables_come_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"llmrouter"},"executable":"/t/llmrouter"}
{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"x"},"executable":null}
{"reason":"compiler-artifact","target":{"kind":["bench"],"name":"serve"},"executable":"/t/deps/serve-1"}
{"reason":"build-finished","success":true}"#;
        let (bench, binary) = executables(messages, "serve").expect("found");
        assert_eq!(bench, PathBuf::from("/t/deps/serve-1"));
        assert_eq!(binary, PathBuf::from("/t/llmrouter"));
        assert!(executables(messages, "route").is_err());
    }
}
