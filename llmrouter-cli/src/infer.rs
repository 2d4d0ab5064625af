//! `llmrouter infer`: route one query or a file of queries.

use anyhow::{Context, Result, bail};
use llmrouter_core::{MetaRouter, Progress, QueryInput, RouteDecision, Router, registry};

use crate::cli::InferArgs;
use crate::output;
use crate::progress::Bar;

/// Queries routed between two progress-bar updates.
const CHUNK: usize = 256;

pub fn run(args: &InferArgs, quiet: bool) -> Result<()> {
    let registration = crate::plugins::find(&args.router)?;
    if !args.route_only {
        bail!(
            "calling the chosen model is not implemented in this version of llmrouter: only routing is.\n  \
             Add --route-only to print which model should answer (nothing was sent anywhere)."
        );
    }
    let router = build(registration, &args.config, quiet)?;
    match (&args.query, &args.input) {
        (Some(query), _) => {
            let decision = router.route_single(&QueryInput::new(query.as_str()))?;
            output::stdout(&(serde_json::to_string_pretty(&decision)? + "\n"))
        }
        (None, Some(input)) => {
            let queries = llmrouter_core::data::read_queries(input)?;
            let bar = Bar::new(quiet || queries.len() < 2 * CHUNK);
            bar.begin(queries.len() as u64, "routing");
            let mut decisions: Vec<RouteDecision> = Vec::with_capacity(queries.len());
            for chunk in queries.chunks(CHUNK) {
                decisions.extend(router.route_batch(chunk)?);
                bar.advance(chunk.len() as u64);
            }
            bar.finish();
            let as_list = args.output.as_ref().is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
            let text = if as_list {
                serde_json::to_string_pretty(&decisions)? + "\n"
            } else {
                let mut text = String::new();
                for d in &decisions {
                    text.push_str(&serde_json::to_string(d)?);
                    text.push('\n');
                }
                text
            };
            match &args.output {
                Some(path) => {
                    output::file(path, text.as_bytes())?;
                    output::info(quiet, &format!("routed {} queries -> {}", decisions.len(), path.display()));
                    Ok(())
                }
                None => output::stdout(&text),
            }
        }
        (None, None) => bail!("give --query or --input"),
    }
}

/// Builds router `registration` from `config`, printing config warnings.
pub fn build(
    registration: &'static registry::RouterRegistration,
    config: &std::path::Path,
    quiet: bool,
) -> Result<Box<dyn Router>> {
    let meta = MetaRouter::from_yaml(config, registration.name)?;
    warn_ignored(&meta, quiet);
    (registration.build)(meta).with_context(|| format!("building router `{}`", registration.name))
}

/// Warns about LLMRouter keys that are accepted but have no effect here.
pub fn warn_ignored(meta: &MetaRouter, quiet: bool) {
    for key in &meta.config.ignored_keys {
        output::info(
            quiet,
            &format!(
                "warning: {}: `{key}` is accepted for Python LLMRouter compatibility but not used \
                 (routers here compute their own query features)",
                meta.config.path().display()
            ),
        );
    }
}
