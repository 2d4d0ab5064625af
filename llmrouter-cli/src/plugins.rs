//! What this binary knows about router crates: each compiled-in router's origin, and the router
//! crates on disk it does *not* contain, with the command that adds them.
//!
//! The build already knows its own routers (the generated [`DISCOVERED`] table). Plugin folders
//! are scanned at run time only to report crates the build does not know yet, so that a user who
//! dropped a crate into `custom_routers/` is told to regenerate instead of "unknown router".

use llmrouter_core::plugins::{Origin, scan, search_dirs};
use llmrouter_core::{Error, RouterRegistration, registry};

use crate::routers::DISCOVERED;

/// A router crate on disk that this binary does not contain.
pub struct NotCompiled {
    /// The router (folder) name.
    pub name: String,
    /// Where it is.
    pub origin: Origin,
    /// Its folder.
    pub path: String,
    /// The command that adds it.
    pub fix: String,
}

/// The origin label of a compiled-in router.
pub fn origin_of(name: &str) -> &'static str {
    DISCOVERED.iter().find(|d| d.name == name).map_or("unknown", |d| d.origin.label())
}

/// Router crates known to the build with their feature off, then crates in the plugin folders
/// (relative to the working directory) that the build has never seen.
pub fn not_compiled() -> Vec<NotCompiled> {
    let registered = registry::names().unwrap_or_default();
    let mut out: Vec<NotCompiled> = DISCOVERED
        .iter()
        .filter(|d| !d.compiled && !registered.contains(&d.name))
        .map(|d| NotCompiled {
            name: d.name.to_owned(),
            origin: d.origin,
            path: d.path.to_owned(),
            fix: format!("cargo build -p llmrouter-cli --features {}", d.name),
        })
        .collect();
    let cwd = std::env::current_dir().unwrap_or_default();
    for c in scan(&search_dirs(&cwd), &mut |_| {}) {
        let known = registered.contains(&c.folder.as_str()) || DISCOVERED.iter().any(|d| d.name == c.folder);
        if !known && !out.iter().any(|o| o.name == c.folder) {
            out.push(NotCompiled {
                name: c.folder,
                origin: c.origin,
                path: c.dir.display().to_string(),
                fix: "cargo xtask plugins && cargo build -p llmrouter-cli".to_owned(),
            });
        }
    }
    out
}

/// [`registry::find`], with an unknown name's error also saying which router crates on disk
/// this binary lacks.
pub fn find(name: &str) -> Result<&'static RouterRegistration, Error> {
    match registry::find(name) {
        Err(Error::UnknownRouter { name, suggestions, available, mut hints }) => {
            let missing = not_compiled();
            if let Some(m) = missing.iter().find(|m| m.name == name) {
                hints.push(format!(
                    "`{name}` is a router crate in {} ({}) that is not compiled into this binary; add it with: {}",
                    m.path,
                    m.origin.label(),
                    m.fix
                ));
            } else if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|m| format!("{} ({})", m.name, m.path)).collect();
                hints.push(format!("router crates on disk but not compiled in: {}", list.join(", ")));
            }
            Err(Error::UnknownRouter { name, suggestions, available, hints })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_equals_the_enabled_features() {
        let registered = registry::names().expect("no duplicate names");
        let enabled: Vec<&str> = DISCOVERED.iter().filter(|d| d.compiled).map(|d| d.name).collect();
        assert_eq!(registered, enabled, "every enabled router feature registers exactly its router");
        if cfg!(feature = "all-routers") {
            assert!(!registered.is_empty(), "the default build has routers to check");
        }
        for r in registry::all().expect("registry") {
            assert_eq!(r.name, r.package, "router name equals package name");
            assert!(registry::is_valid_name(r.name), "{} is a well-formed name", r.name);
            assert!(!r.summary.is_empty() && r.docs.starts_with(&format!("# {}", r.name)), "{} has docs", r.name);
        }
    }
}
