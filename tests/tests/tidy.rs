//! Structure checks rustc cannot make (after rust-analyzer's tidy test):
//! - `llmrouter-core` is in layers, and a module names only modules of lower layers (a `crate::x`
//!   path to a higher or equal layer fails, naming the file, the line and the import);
//! - the CLI's modules import each other without cycles;
//! - every router crate has `README.md`, `config.yaml` and `tests/conformance.rs`;
//! - every `.rs` file of the workspace starts with a `//!` module doc.
//!
//! The layer table below is the one ARCHITECTURE.md draws; a new top-level module of core must be
//! added to both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Core's top-level modules, lowest layer first. A module may name modules of earlier rows only.
const LAYERS: &[&[&str]] = &[
    &["error", "names", "plugins", "progress", "rng"],
    &["learn"],
    &["query"],
    &["config"],
    &["data"],
    &["model"],
    &["meta"],
    &["embed"],
    &["decision"],
    &["router"],
    &["registry"],
    &["eval"],
    &["testing"],
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Every `.rs` file under `dir`, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src` belongs to (`embed/hashed.rs` is `embed`), `None` for
/// the crate root and binaries' `main.rs`.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// `(line number, module)` for every `crate::module` (or `$crate::module`) a file names outside
/// comments. Items re-exported at the crate root (`crate::Router`) count as their module.
fn imports(text: &str, reexports: &BTreeMap<String, String>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_use_group = false;
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let word: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let module = reexports.get(&word).cloned().unwrap_or(word.clone());
            if !module.is_empty() && !module.starts_with("__") {
                out.push((i + 1, module));
            }
            rest = &after[word.len()..];
        }
        // `use crate::{a, b::c}` groups: every first segment is an import.
        if code.trim_start().starts_with("use crate::{") {
            in_use_group = true;
        }
        if in_use_group {
            let inner = code.split("crate::{").last().unwrap_or(code);
            for part in inner.split(',') {
                let word: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !word.is_empty() {
                    out.push((i + 1, reexports.get(&word).cloned().unwrap_or(word)));
                }
            }
            if code.contains("};") {
                in_use_group = false;
            }
        }
    }
    out
}

/// Names core's `lib.rs` re-exports (`pub use meta::MetaRouter;`), mapped to their module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let joined = lib.replace('\n', " ");
    for stmt in joined.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt.strip_prefix("pub use ") else { continue };
        let module: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let items = match (path.find('{'), path.rfind('}')) {
            (Some(a), Some(b)) => path[a + 1..b].to_owned(),
            _ => path.rsplit("::").next().unwrap_or_default().to_owned(),
        };
        for item in items.split(',') {
            let item = item.trim();
            if !item.is_empty() {
                map.insert(item.to_owned(), module.clone());
            }
        }
    }
    map
}

/// Every upward or sideways import in core: `file:line: module `a` (layer n) names `b` (layer m)`.
fn layer_violations(src: &Path) -> Vec<String> {
    let rank: BTreeMap<&str, usize> =
        LAYERS.iter().enumerate().flat_map(|(r, mods)| mods.iter().map(move |m| (*m, r))).collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = top_module(src, file) else { continue };
        let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
        let Some(&own) = rank.get(module.as_str()) else {
            problems.push(format!(
                "{shown}: module `{module}` is in no layer; add it to LAYERS in tests/tests/tidy.rs and to \
                 ARCHITECTURE.md"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (line, target) in imports(&text, &reexports) {
            if target == module {
                continue;
            }
            match rank.get(target.as_str()) {
                Some(&r) if r < own => {}
                Some(&r) => problems.push(format!(
                    "{shown}:{line}: `{module}` (layer {}) names `crate::{target}` (layer {}): a module may only \
                     name lower layers",
                    own + 1,
                    r + 1
                )),
                None => {}
            }
        }
    }
    problems
}

#[test]
fn core_modules_only_name_lower_layers() {
    let problems = layer_violations(&root().join("llmrouter-core/src"));
    assert!(problems.is_empty(), "core's layering is broken:\n{}", problems.join("\n"));
}

#[test]
fn the_layer_check_catches_an_upward_import() {
    // A planted copy of core in which the lowest layer above the foundations names the top one.
    let dir = std::env::temp_dir().join(format!("llmrouter-tidy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("eval")).expect("dir");
    std::fs::write(dir.join("lib.rs"), "//! x\npub mod query;\npub mod eval;\npub use eval::Summary;\n").expect("lib");
    std::fs::write(dir.join("eval/mod.rs"), "//! x\nuse crate::query::QueryInput;\n").expect("eval");
    std::fs::write(
        dir.join("query.rs"),
        "//! x\n// crate::eval in a comment is fine\nuse crate::{error::Result, Summary};\n",
    )
    .expect("query");
    let problems = layer_violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("query.rs:3") && problems[0].contains("names `crate::eval`"), "{problems:?}");
}

#[test]
fn cli_modules_import_each_other_without_cycles() {
    let src = root().join("llmrouter-cli/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
    for file in &files {
        let Some(module) = top_module(&src, file) else { continue };
        let text = std::fs::read_to_string(file).expect("read");
        for (_, target) in imports(&text, &BTreeMap::new()) {
            if target != module && modules.contains(&target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a cycle; report it as a path.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("llmrouter-cli/src has an import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn every_router_crate_has_readme_config_and_conformance_test() {
    let mut missing = Vec::new();
    let mut crates = 0;
    for folder in ["routers", "custom_routers"] {
        let Ok(entries) = std::fs::read_dir(root().join(folder)) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let dir = entry.path();
            if !dir.join("Cargo.toml").is_file() {
                continue;
            }
            crates += 1;
            for file in ["README.md", "config.yaml", "tests/conformance.rs"] {
                if !dir.join(file).is_file() {
                    missing.push(format!("{}/{file}", dir.strip_prefix(root()).unwrap_or(&dir).display()));
                }
            }
        }
    }
    assert!(crates >= 10, "found only {crates} router crates under routers/ and custom_routers/");
    assert!(missing.is_empty(), "router crates lack required files:\n{}", missing.join("\n"));
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for dir in ["llmrouter-core", "llmrouter-cli", "routers", "custom_routers", "xtask", "tests", "templates"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} .rs files", files.len());
    let undocumented: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            // A generated file may put its `// @generated` marker first.
            let first_doc = text.lines().find(|l| !l.starts_with("// @generated")).unwrap_or_default();
            !first_doc.starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(undocumented.is_empty(), "these files do not start with a `//!` module doc:\n{}", undocumented.join("\n"));
}
