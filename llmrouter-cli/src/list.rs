//! `llmrouter list-routers`: what this binary contains.

use anyhow::{Result, bail};
use llmrouter_core::{RouterRegistration, registry};

use crate::cli::{ListArgs, ListFormat};
use crate::output;
use crate::plugins::{not_compiled, origin_of};

pub fn run(args: &ListArgs) -> Result<()> {
    let routers = registry::all()?;
    let text = match args.format {
        ListFormat::Json => {
            let items: Vec<serde_json::Value> = routers
                .iter()
                .map(|r| {
                    let mut item = serde_json::json!({
                        "name": r.name,
                        "aliases": r.aliases,
                        "summary": r.summary,
                        "trainable": r.train.is_some(),
                        "package": r.package,
                        "origin": origin_of(r.name),
                    });
                    if args.long {
                        item["docs"] = r.docs.into();
                    }
                    item
                })
                .collect();
            serde_json::to_string_pretty(&items)? + "\n"
        }
        ListFormat::Markdown => {
            if args.long {
                bail!("`--long` has no Markdown form: use `--format text --long` or `--format json --long`");
            }
            markdown_table(&routers)
        }
        ListFormat::Text => {
            let mut out = if routers.is_empty() {
                "no routers: this binary was built without router features \
                 (build with default features, or `--features <router>`)\n"
                    .to_owned()
            } else {
                let width = routers.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
                let owidth = routers.iter().map(|r| origin_of(r.name).len()).max().unwrap_or(6).max(6);
                let mut out = format!("{:width$}  {:6}  {:owidth$}  SUMMARY\n", "NAME", "TRAINS", "ORIGIN");
                for r in routers {
                    let trains = if r.train.is_some() { "yes" } else { "no" };
                    let origin = origin_of(r.name);
                    out.push_str(&format!(
                        "{:width$}  {trains:6}  {origin:owidth$}  {}{}\n",
                        r.name,
                        r.summary,
                        also(r)
                    ));
                    if args.long {
                        for line in r.docs.lines() {
                            out.push_str(&format!("    {line}\n").replace("    \n", "\n"));
                        }
                        out.push('\n');
                    }
                }
                out
            };
            let missing = not_compiled();
            if !missing.is_empty() {
                out.push_str("\nnot compiled into this binary:\n");
                for m in missing {
                    out.push_str(&format!(
                        "  {} ({}, {}): add it with `{}`\n",
                        m.name,
                        m.origin.label(),
                        m.path,
                        m.fix
                    ));
                }
            }
            out
        }
    };
    output::stdout(&text)
}

/// The router table of README.md (kept there by `cargo xtask readme`): one row per compiled-in
/// router, sorted by name. Crates on disk but not compiled in are not listed.
fn markdown_table(routers: &[&RouterRegistration]) -> String {
    let mut sorted = routers.to_vec();
    sorted.sort_by_key(|r| r.name);
    let mut out = String::from("| name | trains | what it does |\n|---|---|---|\n");
    for r in sorted {
        let trains = if r.train.is_some() { "yes" } else { "no" };
        out.push_str(&format!("| `{}` | {trains} | {}{} |\n", r.name, cell(r.summary), also(r)));
    }
    out
}

/// The router's other names, as a suffix of its summary (` (also: dcrouter)`), or nothing.
fn also(r: &RouterRegistration) -> String {
    if r.aliases.is_empty() { String::new() } else { format!(" (also: {})", r.aliases.join(", ")) }
}

/// `text` as one Markdown table cell: `|` escaped, line breaks as spaces.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_stay_on_one_line_and_escape_pipes() {
        assert_eq!(super::cell("a | b\n  c"), "a \\| b c");
    }
}
