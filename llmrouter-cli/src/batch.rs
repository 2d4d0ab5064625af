//! Answering a file of queries: bounded concurrency, one result line per query written as it
//! completes, a progress bar, a summary, and `--resume`.
//!
//! Every query is routed first (routing is local and fast, and a bad input file is refused before
//! anything is spent); then `concurrency` tasks on the tokio runtime take the routed queries in
//! order and call the models through one shared [`Client`] (one connection pool). The main thread
//! writes each result as one JSON line (`index` is the query's position in the input) the moment
//! it arrives, and flushes it. This is the one output of `llmrouter` that is not written
//! atomically, by design: an interrupted run keeps every answer it paid for, and `--resume`
//! continues from there.
//!
//! `--resume` reads the output file back: it keeps the successful lines whose `index` and
//! `query` match the input, drops failed lines, repeats and a line cut off by the interruption
//! (rewriting the file atomically when it drops anything), and answers the remaining queries.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use llmrouter_core::{Candidates, Progress, QueryInput, Router};
use tokio::runtime::Runtime;

use crate::client::{Client, InferResult};
use crate::output;
use crate::progress::Bar;
use crate::routing::route_all;

/// How a batch runs.
pub struct Settings<'a> {
    /// Queries in flight at once.
    pub concurrency: usize,
    /// Other models tried when the chosen one fails (0: no fallback).
    pub max_fallbacks: usize,
    /// Keep the answers already in `output`.
    pub resume: bool,
    /// The results file (`.jsonl`); standard output when `None`.
    pub output: Option<&'a Path>,
    /// No progress bar, no summary.
    pub quiet: bool,
}

/// Answers `queries`, writing one result line per query; fails when any query got no answer.
pub fn run(
    router: &dyn Router,
    candidates: &Candidates,
    client: &Arc<Client>,
    runtime: &Runtime,
    queries: &[QueryInput],
    settings: &Settings,
) -> Result<()> {
    let done = match settings.output {
        Some(path) => prepare_output(path, queries, settings.resume, settings.quiet)?,
        None => vec![false; queries.len()],
    };
    let skipped = done.iter().filter(|d| **d).count();
    let pending: Vec<usize> = (0..queries.len()).filter(|&i| !done[i]).collect();
    let to_route: Vec<QueryInput> = pending.iter().map(|&i| queries[i].clone()).collect();
    let decisions = route_all(router, &to_route, settings.quiet)?;
    let mut sink: Box<dyn Write> = match settings.output {
        Some(path) => Box::new(open_append(path)?),
        None => Box::new(std::io::stdout()),
    };

    let started = Instant::now();
    // Results on a terminal's standard output would be drawn over by the bar.
    let bar = Bar::new(settings.quiet || (settings.output.is_none() && std::io::stdout().is_terminal()));
    bar.begin(pending.len() as u64, "answering");
    let mut summary = Summary::default();
    let queue = Arc::new(Mutex::new(pending.into_iter().zip(decisions)));
    let stop = Arc::new(AtomicBool::new(false));
    let candidates = Arc::new(candidates.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<InferResult>();
    let workers: Vec<_> = (0..settings.concurrency.max(1))
        .map(|_| {
            let (tx, queue, stop) = (tx.clone(), Arc::clone(&queue), Arc::clone(&stop));
            let (client, candidates, max_fallbacks) =
                (Arc::clone(client), Arc::clone(&candidates), settings.max_fallbacks);
            runtime.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Some((index, decision)) = queue.lock().ok().and_then(|mut q| q.next()) else { break };
                    let mut result = client.answer(decision, &candidates, max_fallbacks).await;
                    result.index = Some(index);
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let written: Result<()> = runtime.block_on(async {
        while let Some(result) = rx.recv().await {
            let line = serde_json::to_string(&result)? + "\n";
            let write = sink.write_all(line.as_bytes()).and_then(|()| sink.flush());
            if let Err(e) = write {
                // Let the workers finish the calls in flight and take no more.
                stop.store(true, Ordering::Relaxed);
                drop(rx);
                for worker in workers {
                    let _ = worker.await;
                }
                let target = settings.output.map_or("standard output".to_owned(), |p| p.display().to_string());
                return Err(anyhow::Error::new(e).context(format!("writing a result to {target}")));
            }
            summary.add(&result);
            bar.advance(1);
            let rate = summary.total() as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(&format!("{} ok, {} failed, {rate:.1}/s", summary.ok, summary.failed));
        }
        Ok(())
    });
    bar.finish();
    written?;
    output::info(settings.quiet, &summary.report(started.elapsed().as_secs_f64(), skipped, settings.output));
    if summary.failed > 0 {
        let place = settings.output.map_or("in the output".to_owned(), |p| format!("in {}", p.display()));
        let retry = if settings.output.is_some() { "; rerun with --resume to retry them" } else { "" };
        bail!("{} of {} queries got no answer (each has its `error` {place}){retry}", summary.failed, summary.total());
    }
    Ok(())
}

/// Opens `path` to append result lines, creating it and its folder when missing.
fn open_append(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} to append results", path.display()))
}

/// Checks the output file and, with `--resume`, returns which queries it already answers.
fn prepare_output(path: &Path, queries: &[QueryInput], resume: bool, quiet: bool) -> Result<Vec<bool>> {
    if path.extension().is_none_or(|e| e != "jsonl") {
        bail!(
            "{}: results are written as JSON lines, one per query as it completes: name a .jsonl file",
            path.display()
        );
    }
    if !path.exists() {
        return Ok(vec![false; queries.len()]);
    }
    if !resume {
        bail!(
            "{} already exists: add --resume to keep its answers and answer only the other queries, \
             or remove it",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {} to resume", path.display()))?;
    let Resumed { done, kept, failed, repeated, cut_off } = resumed(&text, queries, path)?;
    let answered = done.iter().filter(|d| **d).count();
    if kept != text {
        output::file(path, kept.as_bytes())?;
    }
    let mut note = format!("resuming {}: {answered} of {} queries already answered", path.display(), queries.len());
    if failed > 0 {
        note.push_str(&format!("; retrying {failed} that failed"));
    }
    if repeated > 0 {
        note.push_str(&format!("; dropped {repeated} repeated results"));
    }
    if cut_off {
        note.push_str("; dropped the last line, cut off by the interruption");
    }
    output::info(quiet, &note);
    Ok(done)
}

/// What a results file already holds, for `--resume`.
#[derive(Debug)]
struct Resumed {
    /// Which queries it answers successfully.
    done: Vec<bool>,
    /// Its lines to keep: one success per answered query, in file order.
    kept: String,
    /// Lines of failed answers (dropped, to retry).
    failed: usize,
    /// Repeated successes (dropped).
    repeated: usize,
    /// Whether its last line was cut off by an interruption (dropped).
    cut_off: bool,
}

/// Reads the text of results file `path` against the input's `queries`.
fn resumed(text: &str, queries: &[QueryInput], path: &Path) -> Result<Resumed> {
    let mut done = vec![false; queries.len()];
    let mut kept = String::with_capacity(text.len());
    let (mut failed, mut repeated, mut cut_off) = (0usize, 0usize, false);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            // The last line, cut off when an earlier run was killed mid-write.
            Err(_) if i + 1 == lines.len() && !raw.ends_with('\n') => {
                cut_off = true;
                continue;
            }
            Err(e) => bail!(
                "{}:{}: not a result line ({e}); --resume continues a file written by `llmrouter infer --output`",
                path.display(),
                i + 1
            ),
        };
        let index = value.get("index").and_then(serde_json::Value::as_u64);
        let query = value.get("query").and_then(serde_json::Value::as_str);
        let success = value.get("success").and_then(serde_json::Value::as_bool);
        let (Some(index), Some(query), Some(success)) = (index, query, success) else {
            bail!(
                "{}:{}: no `index`, `query` and `success`: not a line written by `llmrouter infer --output`",
                path.display(),
                i + 1
            );
        };
        let belongs = usize::try_from(index).ok().and_then(|i| queries.get(i)).is_some_and(|q| q.query == query);
        if !belongs {
            bail!(
                "{}:{}: this result (index {index}) is not for this input: the input has another query there. \
                 Write the answers of this input to another --output file",
                path.display(),
                i + 1
            );
        }
        let index = index as usize;
        if !success {
            failed += 1;
        } else if done[index] {
            repeated += 1;
        } else {
            done[index] = true;
            kept.push_str(line);
            kept.push('\n');
        }
    }
    Ok(Resumed { done, kept, failed, repeated, cut_off })
}

/// Running totals of a batch.
#[derive(Debug, Default)]
struct Summary {
    ok: usize,
    failed: usize,
    fallbacks: usize,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost: f64,
    /// Per answering model (or last model tried): (answered, failed).
    per_model: BTreeMap<String, (usize, usize)>,
}

impl Summary {
    fn add(&mut self, result: &InferResult) {
        let entry = self.per_model.entry(result.model_name.clone()).or_default();
        if result.success {
            self.ok += 1;
            entry.0 += 1;
            if !result.fallback_from.is_empty() {
                self.fallbacks += 1;
            }
        } else {
            self.failed += 1;
            entry.1 += 1;
        }
        if let Some(u) = &result.usage {
            self.prompt_tokens += u.prompt_tokens;
            self.completion_tokens += u.completion_tokens;
        }
        self.cost += result.cost.unwrap_or(0.0);
    }

    fn total(&self) -> usize {
        self.ok + self.failed
    }

    fn report(&self, seconds: f64, skipped: usize, output: Option<&Path>) -> String {
        let rate = self.total() as f64 / seconds.max(1e-9);
        let mut text = format!(
            "answered {} of {} queries in {seconds:.1} s ({rate:.1}/s); {} failed",
            self.ok,
            self.total(),
            self.failed
        );
        text.push_str(&format!(
            "\n  tokens: {} prompt + {} completion = {}; cost ${:.6}",
            self.prompt_tokens,
            self.completion_tokens,
            self.prompt_tokens + self.completion_tokens,
            self.cost
        ));
        if !self.per_model.is_empty() {
            let models: Vec<String> = self
                .per_model
                .iter()
                .map(|(m, (ok, failed))| match failed {
                    0 => format!("{m} {ok}"),
                    _ => format!("{m} {ok} ({failed} failed)"),
                })
                .collect();
            text.push_str(&format!("\n  per model: {}", models.join(", ")));
        }
        if self.fallbacks > 0 {
            text.push_str(&format!("\n  {} queries answered by a fallback model", self.fallbacks));
        }
        if skipped > 0 {
            text.push_str(&format!("\n  {skipped} queries answered by an earlier run were skipped"));
        }
        if let Some(path) = output {
            text.push_str(&format!("\n  results: {}", path.display()));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmrouter_tests::mutate::{self, apply, apply_text, array_to_lines, edits};
    use proptest::prelude::*;

    fn queries() -> Vec<QueryInput> {
        ["What is 2 + 2?", "Name a prime.", "Translate 'cat' to French.", "Is water wet?", "Sum 1..10."]
            .into_iter()
            .map(QueryInput::new)
            .collect()
    }

    /// A results file as `infer --output` writes it: answers of every query but the last, one of
    /// them failed and one repeated.
    fn seed(queries: &[QueryInput]) -> serde_json::Value {
        let line = |i: usize, success: bool| {
            serde_json::json!({"index": i, "query": queries[i].query, "success": success,
                "model_name": "gemma-2-9b-it", "response": if success { "4" } else { "" }})
        };
        serde_json::Value::Array(vec![line(0, true), line(1, false), line(2, true), line(2, true), line(3, true)])
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// Damaged results files: `--resume` never panics, and either refuses the file naming
        /// it, or keeps exactly one successful line for each query it counts as answered, each
        /// for that query (exactly-once), and nothing else.
        #[test]
        fn resume_reads_damaged_results_files((tree, text) in edits()) {
            let (queries, path) = (queries(), Path::new("/runs/answers.jsonl"));
            let mut doc = seed(&queries);
            apply(&mut doc, &tree);
            let mut body = array_to_lines(&doc);
            apply_text(&mut body, &text);
            match resumed(&body, &queries, path) {
                Ok(r) => {
                    let mut seen = vec![false; queries.len()];
                    for line in r.kept.lines() {
                        let v: serde_json::Value = serde_json::from_str(line).expect("a kept line is JSON");
                        let i = v["index"].as_u64().expect("index") as usize;
                        prop_assert_eq!(v["query"].as_str(), Some(queries[i].query.as_str()));
                        prop_assert_eq!(v["success"].as_bool(), Some(true));
                        prop_assert!(!seen[i], "index {} kept twice", i);
                        seen[i] = true;
                    }
                    prop_assert_eq!(seen, r.done);
                }
                Err(e) => prop_assert!(e.to_string().contains("answers.jsonl"), "error without the file: {}", e),
            }
        }
    }

    #[test]
    fn resume_keeps_one_success_per_query_and_retries_failures() {
        let queries = queries();
        let body = array_to_lines(&seed(&queries));
        let r = resumed(&body, &queries, Path::new("a.jsonl")).expect("a valid results file");
        assert_eq!(r.done, vec![true, false, true, true, false]);
        assert_eq!((r.failed, r.repeated, r.cut_off), (1, 1, false));
        assert_eq!(r.kept.lines().count(), 3);
    }
}
