//! `llmrouter infer`: route one query or a file of queries and, without `--route-only`, send each
//! to the chosen model (through [`crate::client`], on a tokio runtime) and report its answer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use llmrouter_core::{Candidates, MetaRouter, QueryInput, RouteDecision, Router};

use crate::batch;
use crate::cli::{AnswerFormat, InferArgs};
use crate::client::{ApiKeys, Client, ClientOptions, InferResult, fallback_order};
use crate::output;
use crate::routing::route_all;
use crate::warnings::{warn_ignored, warn_stale_model};

pub fn run(args: &InferArgs, quiet: bool) -> Result<()> {
    let registration = crate::plugins::find(&args.router)?;
    let meta = MetaRouter::from_yaml(&args.config, registration.name)?;
    warn_ignored(&meta, quiet);
    warn_stale_model(&meta, quiet);
    let candidates = meta.candidates.clone();
    let default_endpoint = meta.config.api_endpoint.clone();
    let router = (registration.build)(meta).with_context(|| format!("building router `{}`", registration.name))?;
    if args.route_only {
        return route_only(args, router.as_ref(), quiet);
    }
    let keys = ApiKeys::from_env(candidates.all())?;
    let options = ClientOptions {
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        max_retries: args.retries,
        backoff: Duration::from_millis(args.backoff_ms),
        temperature: args.temp,
        max_tokens: args.max_tokens,
        pool_per_host: usize::from(args.concurrency),
        ..ClientOptions::default()
    };
    let client = Arc::new(
        Client::new(options, keys, default_endpoint).context("setting up TLS with the platform's certificates")?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let max_fallbacks = if args.fallback { args.max_fallbacks } else { 0 };
    match (&args.query, &args.input) {
        (Some(query), _) => {
            let decision = router.route_single(&QueryInput::new(query.as_str()))?;
            answer_one(args, &client, &runtime, &candidates, decision, max_fallbacks, quiet)
        }
        (None, Some(input)) => {
            let queries = llmrouter_core::data::read_queries(input)?;
            let settings = batch::Settings {
                concurrency: usize::from(args.concurrency),
                max_fallbacks,
                resume: args.resume,
                output: args.output.as_deref(),
                quiet,
            };
            batch::run(router.as_ref(), &candidates, &client, &runtime, &queries, &settings)
        }
        (None, None) => bail!("give --query or --input"),
    }
}

/// `--route-only`: print or write the decisions.
fn route_only(args: &InferArgs, router: &dyn Router, quiet: bool) -> Result<()> {
    match (&args.query, &args.input) {
        (Some(query), _) => {
            let decision = router.route_single(&QueryInput::new(query.as_str()))?;
            output::stdout(&(serde_json::to_string_pretty(&decision)? + "\n"))
        }
        (None, Some(input)) => {
            let queries = llmrouter_core::data::read_queries(input)?;
            let decisions = route_all(router, &queries, quiet)?;
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

/// Answers one query: prints the answer (or the JSON result), and fails when no model answered.
fn answer_one(
    args: &InferArgs,
    client: &Client,
    runtime: &tokio::runtime::Runtime,
    candidates: &Candidates,
    decision: RouteDecision,
    max_fallbacks: usize,
    quiet: bool,
) -> Result<()> {
    if args.verbose {
        let next: Vec<&str> =
            fallback_order(&decision, candidates).iter().take(max_fallbacks).map(|c| c.name.as_str()).collect();
        eprintln!("routing: {}", serde_json::to_string(&decision)?);
        if !next.is_empty() {
            eprintln!("fallback: {}", next.join(", "));
        }
    }
    let result = runtime.block_on(client.answer(decision, candidates, max_fallbacks));
    if args.verbose {
        eprint!("{}", details(&result));
    } else if result.success && !result.fallback_from.is_empty() {
        output::info(quiet, &format!("note: {}", fallback_note(&result)));
    }
    match args.format {
        AnswerFormat::Json => output::stdout(&(serde_json::to_string_pretty(&result)? + "\n"))?,
        AnswerFormat::Text => {
            if let Some(text) = &result.response {
                output::stdout(&format!("{text}\n"))?;
            }
        }
    }
    if !result.success {
        bail!("{}", failure_message(&result));
    }
    Ok(())
}

/// What `--verbose` adds: model, latency, attempts, tokens and cost, one per line.
fn details(result: &InferResult) -> String {
    let mut text = format!("model: {} ({})\n", result.model_name, result.api_model);
    if !result.fallback_from.is_empty() {
        text.push_str(&format!("fallback: {}\n", fallback_note(result)));
    }
    let plural = if result.attempts == 1 { "" } else { "s" };
    text.push_str(&format!("latency: {} ms, {} attempt{plural}\n", result.latency_ms, result.attempts));
    match &result.usage {
        Some(u) => text.push_str(&format!(
            "tokens: {} prompt + {} completion = {}\n",
            u.prompt_tokens, u.completion_tokens, u.total_tokens
        )),
        None if result.success => text.push_str("tokens: not reported by the API\n"),
        None => {}
    }
    if let Some(cost) = result.cost {
        text.push_str(&format!("cost: ${cost:.8}\n"));
    }
    text
}

/// "`a` failed (error); answered by `b`".
fn fallback_note(result: &InferResult) -> String {
    let failed: Vec<String> =
        result.fallback_from.iter().map(|f| format!("`{}` failed ({})", f.model_name, f.error)).collect();
    format!("{}; answered by `{}`", failed.join("; "), result.model_name)
}

/// Why no model answered, naming every model tried.
pub fn failure_message(result: &InferResult) -> String {
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    let own = result.attempts - result.fallback_from.iter().map(|f| f.attempts).sum::<u32>();
    let mut text = format!(
        "model `{}` failed after {own} attempt{}: {}",
        result.model_name,
        plural(own),
        result.error.as_deref().unwrap_or("unknown error")
    );
    for f in &result.fallback_from {
        text.push_str(&format!(
            "\n  before it, `{}` failed after {} attempt{}: {}",
            f.model_name,
            f.attempts,
            plural(f.attempts),
            f.error
        ));
    }
    text
}
