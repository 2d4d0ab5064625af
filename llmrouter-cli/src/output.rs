//! Writing results: standard output that tolerates a closed pipe, and atomic files.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Whether `err` is a closed standard output (the reader went away): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Writes `text` to standard output.
pub fn stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub fn file(path: &Path, bytes: &[u8]) -> Result<()> {
    llmrouter_core::model::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Prints an informational line on standard error unless `quiet`.
pub fn info(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("{line}");
    }
}
