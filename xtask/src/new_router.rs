//! `cargo xtask new-router <name> [--destination <dir>]`: renders `templates/router/` into a new
//! router crate, without needing cargo-generate.
//!
//! It understands exactly the placeholders the template uses, `{{crate_name}}` and
//! `{{crate_name | pascal_case}}`, strips `.liquid` from file names and skips
//! `cargo-generate.toml`, so `cargo generate --path templates/router --name <name>` and this
//! command produce the same files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use llmrouter_core::registry::is_valid_name;

/// Entry point.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut name = None;
    let mut destination = root.join("custom_routers");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--destination" | "-d" => {
                let dir = it.next().context("--destination needs a folder")?;
                destination = PathBuf::from(dir);
            }
            other if other.starts_with('-') => {
                bail!("unknown option `{other}` (usage: new-router <name> [--destination <dir>])")
            }
            other if name.is_none() => name = Some(other.to_owned()),
            other => bail!("unexpected argument `{other}`"),
        }
    }
    let Some(name) = name else { bail!("usage: cargo xtask new-router <name> [--destination <dir>]") };
    if !is_valid_name(&name) {
        bail!("`{name}` is not a router name: use lower-case ASCII letters, digits and `_`, starting with a letter");
    }
    let target = destination.join(&name);
    if target.exists() {
        bail!("{} already exists; choose another name or remove it", target.display());
    }
    let files = render(&root.join("templates/router"), &name)?;
    for (rel, text) in &files {
        let path = target.join(rel);
        llmrouter_core::model::write_atomic(&path, text.as_bytes())?;
    }
    println!("created router crate `{name}` in {} ({} files)", target.display(), files.len());
    println!("next: cargo xtask plugins && cargo build -p llmrouter-cli");
    println!(
        "then: llmrouter infer --router {name} --config {}/config.yaml --query \"Hello\" --route-only",
        target.display()
    );
    Ok(())
}

/// The rendered template: (path relative to the new crate, contents), sorted by path.
pub fn render(template: &Path, name: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    collect(template, template, &mut files)?;
    files.sort();
    let pascal = pascal_case(name);
    let mut out = Vec::new();
    for rel in files {
        if rel == Path::new("cargo-generate.toml") {
            continue;
        }
        let text = std::fs::read_to_string(template.join(&rel))
            .with_context(|| format!("reading template {}", rel.display()))?;
        let text = text.replace("{{crate_name | pascal_case}}", &pascal).replace("{{crate_name}}", name);
        if let Some(pos) = text.find("{{") {
            let line = text[..pos].lines().count();
            bail!(
                "templates/router/{}:{line}: placeholder this renderer does not know; use {{{{crate_name}}}} or {{{{crate_name | pascal_case}}}}",
                rel.display()
            );
        }
        let rel = match rel.to_str().and_then(|s| s.strip_suffix(".liquid")) {
            Some(stripped) => PathBuf::from(stripped),
            None => rel,
        };
        out.push((rel, text));
    }
    Ok(out)
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

/// `my_router2` to `MyRouter2`.
pub fn pascal_case(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_template_file() {
        let files = render(&crate::workspace_root().join("templates/router"), "my_router").expect("renders");
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        for want in ["Cargo.toml", "README.md", "config.yaml", "src/lib.rs", "tests/conformance.rs"] {
            assert!(names.contains(&want.to_owned()), "{names:?}");
        }
        let lib = &files.iter().find(|(p, _)| p == Path::new("src/lib.rs")).expect("lib").1;
        assert!(lib.contains("pub struct MyRouter") && lib.contains("name: \"my_router\""), "{lib}");
        assert!(files.iter().all(|(_, t)| !t.contains("{{")));
    }

    #[test]
    fn pascal() {
        assert_eq!(pascal_case("my_router2"), "MyRouter2");
        assert_eq!(pascal_case("knn"), "Knn");
    }
}
