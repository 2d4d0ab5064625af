//! What the bench binaries share: the working folder, the test queries, the machine's load and
//! the process's CPU time.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use llmrouter_core::QueryInput;

/// Makes the workspace root the working folder, so that the configs' relative paths
/// (`../shared/data/...`) resolve as they do for a user at the root (`cargo bench` starts in
/// the package's folder).
pub fn enter_workspace_root() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the workspace root")?;
    std::env::set_current_dir(root).with_context(|| format!("entering {}", root.display()))
}

/// The queries of a JSON-lines file (one object with `query` a line).
pub fn read_queries(path: &Path) -> Result<Vec<QueryInput>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// `/proc/loadavg`'s first three fields, or `?`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// User plus system CPU time of this process, every thread included (ended ones too), from
/// `/proc/self/stat` (in clock ticks of 10 ms); zero where there is no `/proc`.
pub fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Duration::ZERO };
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}
