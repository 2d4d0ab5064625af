//! `llmrouter list-routers`: what this binary contains.

use anyhow::Result;
use llmrouter_core::registry;

use crate::cli::{ListArgs, ListFormat};
use crate::output;

pub fn run(args: &ListArgs) -> Result<()> {
    let routers = registry::all()?;
    let text = match args.format {
        ListFormat::Json => {
            let items: Vec<serde_json::Value> = routers
                .iter()
                .map(|r| {
                    let mut item = serde_json::json!({
                        "name": r.name,
                        "summary": r.summary,
                        "trainable": r.train.is_some(),
                        "package": r.package,
                    });
                    if args.long {
                        item["docs"] = r.docs.into();
                    }
                    item
                })
                .collect();
            serde_json::to_string_pretty(&items)? + "\n"
        }
        ListFormat::Text => {
            if routers.is_empty() {
                "no routers: this binary was built without router features \
                 (build with default features, or `--features <router>`)\n"
                    .to_owned()
            } else {
                let width = routers.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
                let mut out = format!("{:width$}  {:6}  SUMMARY\n", "NAME", "TRAINS");
                for r in routers {
                    let trains = if r.train.is_some() { "yes" } else { "no" };
                    out.push_str(&format!("{:width$}  {trains:6}  {}\n", r.name, r.summary));
                    if args.long {
                        for line in r.docs.lines() {
                            out.push_str(&format!("    {line}\n").replace("    \n", "\n"));
                        }
                        out.push('\n');
                    }
                }
                out
            }
        }
    };
    output::stdout(&text)
}
