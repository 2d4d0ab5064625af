//! Where router crates live, and how to find them.
//!
//! Router crates are found, in this order, in `routers/` (built-ins), `./custom_routers/`,
//! `~/.llmrouter/plugins/` and each folder of `$LLMROUTER_PLUGINS` (colon-separated). Every
//! sub-folder holding a `Cargo.toml` is a router crate. `cargo xtask plugins` uses this to
//! generate the wiring that compiles them in; the binary uses it only to say which router crates
//! on disk it does *not* contain, and how to add them.

use std::path::{Path, PathBuf};

/// Where a router crate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// `routers/` of the repository.
    BuiltIn,
    /// `custom_routers/` of the repository.
    Custom,
    /// `~/.llmrouter/plugins/`.
    Home,
    /// A folder of `$LLMROUTER_PLUGINS`.
    Env,
}

impl Origin {
    /// How `list-routers` shows it.
    pub fn label(self) -> &'static str {
        match self {
            Origin::BuiltIn => "built-in",
            Origin::Custom => "./custom_routers",
            Origin::Home => "~/.llmrouter/plugins",
            Origin::Env => "$LLMROUTER_PLUGINS",
        }
    }

    /// Whether the crate lives outside the repository tree.
    pub fn is_external(self) -> bool {
        matches!(self, Origin::Home | Origin::Env)
    }
}

/// A router crate known to the build: one entry of the table `cargo xtask plugins` generates in
/// the CLI, whether or not its feature is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discovered {
    /// The router (folder, package and feature) name.
    pub name: &'static str,
    /// Where the crate was found.
    pub origin: Origin,
    /// Its folder: relative to the repository root inside it, absolute outside.
    pub path: &'static str,
    /// Whether its feature is enabled in this build.
    pub compiled: bool,
}

/// A folder that may hold router crates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    /// What kind of folder it is.
    pub origin: Origin,
    /// The folder.
    pub path: PathBuf,
}

/// The folders to scan, in order, for a repository at `repo_root`.
pub fn search_dirs(repo_root: &Path) -> Vec<SearchDir> {
    let mut dirs = vec![
        SearchDir { origin: Origin::BuiltIn, path: repo_root.join("routers") },
        SearchDir { origin: Origin::Custom, path: repo_root.join("custom_routers") },
    ];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(SearchDir { origin: Origin::Home, path: PathBuf::from(home).join(".llmrouter/plugins") });
    }
    if let Some(list) = std::env::var_os("LLMROUTER_PLUGINS") {
        for part in std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(SearchDir { origin: Origin::Env, path: part });
        }
    }
    dirs
}

/// A router crate on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCrate {
    /// The folder name (which must be the router name).
    pub folder: String,
    /// The crate folder.
    pub dir: PathBuf,
    /// Where it was found.
    pub origin: Origin,
    /// `[package] name` from its `Cargo.toml`, when readable.
    pub package: Option<String>,
}

/// Every sub-folder with a `Cargo.toml` in `dirs`, in search order and by folder name within a
/// folder. `log` receives one line per folder scanned, crate found or entry skipped.
pub fn scan(dirs: &[SearchDir], log: &mut dyn FnMut(String)) -> Vec<PluginCrate> {
    let mut found = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            Err(_) => {
                log(format!("scan {} ({}): not present", dir.path.display(), dir.origin.label()));
                continue;
            }
        };
        log(format!("scan {} ({})", dir.path.display(), dir.origin.label()));
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            let name = child.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                log(format!("  skip {name}: hidden"));
            } else if !child.is_dir() {
                log(format!("  skip {name}: not a folder"));
            } else if !child.join("Cargo.toml").is_file() {
                log(format!("  skip {name}: no Cargo.toml"));
            } else {
                let package = std::fs::read_to_string(child.join("Cargo.toml")).ok().and_then(|t| package_name(&t));
                log(format!("  found {name} (package {})", package.as_deref().unwrap_or("?")));
                found.push(PluginCrate { folder: name, dir: child, origin: dir.origin, package });
            }
        }
    }
    found
}

/// The `name` of the `[package]` table of a `Cargo.toml` (a plain `name = "..."` line).
pub fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some(rest) = line.strip_prefix("name") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            let value = value.split('#').next()?.trim();
            return Some(value.trim_matches(|c| c == '"' || c == '\'').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_reads_the_package_table_only() {
        let manifest = "[workspace]\nname = \"no\"\n\n[package]\nversion = \"1\"\nname = \"my_router\" # the router\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(manifest), Some("my_router".to_owned()));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn scan_finds_crates_and_logs_skips() {
        let root = std::env::temp_dir().join(format!("llmrouter-plugins-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["custom_routers/b_router", "custom_routers/a_router", "custom_routers/notes"] {
            std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        }
        std::fs::write(root.join("custom_routers/a_router/Cargo.toml"), "[package]\nname = \"a_router\"\n").expect("w");
        std::fs::write(root.join("custom_routers/b_router/Cargo.toml"), "[package]\nname = \"b\"\n").expect("w");
        let dirs = vec![
            SearchDir { origin: Origin::BuiltIn, path: root.join("routers") },
            SearchDir { origin: Origin::Custom, path: root.join("custom_routers") },
        ];
        let mut log = Vec::new();
        let found = scan(&dirs, &mut |l| log.push(l));
        let names: Vec<(&str, Option<&str>)> =
            found.iter().map(|c| (c.folder.as_str(), c.package.as_deref())).collect();
        assert_eq!(names, vec![("a_router", Some("a_router")), ("b_router", Some("b"))]);
        let missing = root.join("routers").display().to_string();
        assert!(log.iter().any(|l| l.contains(&missing) && l.contains("not present")), "{log:?}");
        assert!(log.iter().any(|l| l.contains("skip notes: no Cargo.toml")), "{log:?}");
    }
}
