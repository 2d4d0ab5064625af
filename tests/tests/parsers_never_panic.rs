//! Property tests of every parser of user files: config YAML, `llm_data`, routing data in its
//! three layouts, query files and model files (the `--resume` results file is tested in
//! `llmrouter-cli`, where its parser lives).
//!
//! Each property draws 10,000 damaged copies of a valid seed (`llmrouter_tests::mutate`; set
//! `PROPTEST_CASES` for more) and checks that the parser never panics, never hangs (a case that
//! takes over [`HANG`] fails), and either refuses the input with an error that names the file or
//! returns something that keeps the parser's own promises (scores in [0, 1], unique model names,
//! no empty query, a decision among the candidates).
//!
//! The seeds are the example data in `data/example_data`, so these tests need no `../shared`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use llmrouter_core::data::{Candidates, RoutingTable, queries_from_str};
use llmrouter_core::{Config, Device, MetaRouter, NoProgress, QueryInput, registry};
use llmrouter_tests::mutate::{self, apply, apply_text, array_to_lines, edits, lines_to_array};
use llmrouter_tests::{temp_dir, workspace_root};
use proptest::prelude::*;
use serde_json::Value;
// Linked for its registration (a dev-dependency, so not linked by the library).
use thresholdrouter as _;

/// A case slower than this is taken for a hang. The slowest case of a normal run takes a few
/// milliseconds in a debug build, so this bounds hangs, not speed.
const HANG: Duration = Duration::from_secs(20);

/// Runs `f`, failing the case when it takes longer than [`HANG`].
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < HANG, "{what} took {took:?} on one input: a hang");
    out
}

fn example(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join("data/example_data").join(path)).expect("example data")
}

/// The first `n` lines of an example file.
fn head(path: &str, n: usize) -> String {
    example(path).lines().take(n).map(|l| format!("{l}\n")).collect()
}

/// An error that names `file` (its file name at least), so the user knows which input is wrong.
fn names(error: &impl std::fmt::Display, file: &Path) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).expect("file name");
    error.to_string().contains(name)
}

/// The candidate file's seed: the example candidates, as a JSON tree.
fn candidates_seed() -> Value {
    serde_json::from_str(&example("llm_candidates/default_llm.json")).expect("seed")
}

/// Routing data seeds in the three layouts, as arrays of lines: the long layout of the example
/// data, and the same queries written wide and best-only.
fn routing_seeds() -> Vec<Value> {
    let long = lines_to_array(&head("routing_data/default_routing_train_data.jsonl", 12));
    let Value::Array(rows) = &long else { unreachable!() };
    let mut wide: Vec<Value> = Vec::new();
    let mut best: Vec<Value> = Vec::new();
    for row in rows {
        let (id, model) = (&row["id"], row["model_name"].as_str().expect("model_name"));
        let at = match wide.iter().position(|w| &w["id"] == id) {
            Some(at) => at,
            None => {
                wide.push(serde_json::json!({"id": id, "query": row["query"], "task": row["task_name"],
                    "scores": {}, "cost": {}}));
                wide.len() - 1
            }
        };
        wide[at]["scores"][model] = row["performance"].clone();
        wide[at]["cost"][model] = row["cost"].clone();
        if !best.iter().any(|b| &b["id"] == id) {
            best.push(serde_json::json!({"id": id, "query": row["query"], "best_llm": model,
                "performance": row["performance"], "cost": row["cost"]}));
        }
    }
    vec![long, Value::Array(wide), Value::Array(best)]
}

/// What a loaded routing table promises.
fn check_table(table: &RoutingTable) -> Result<(), TestCaseError> {
    prop_assert!(table.models.windows(2).all(|w| w[0] < w[1]), "models sorted and unique: {:?}", table.models);
    for row in &table.rows {
        prop_assert_eq!(row.cells.len(), table.models.len());
        prop_assert!(!row.query.trim().is_empty(), "an empty query was accepted: {:?}", row);
        if let Some(b) = row.best {
            prop_assert!(b < table.models.len(), "best {} of {} models", b, table.models.len());
        }
        for cell in row.cells.iter().flatten() {
            prop_assert!((0.0..=1.0).contains(&cell.score), "score {} outside [0, 1] was accepted", cell.score);
            if let Some(cost) = cell.cost {
                prop_assert!(cost.is_finite() && cost >= 0.0, "cost {} was accepted", cost);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(mutate::config())]

    #[test]
    fn routing_data_in_every_layout((layout, (tree, text)) in (0usize..3, edits())) {
        let path = PathBuf::from(format!("/data/routing_{layout}.jsonl"));
        let mut doc = routing_seeds().swap_remove(layout);
        apply(&mut doc, &tree);
        let mut body = array_to_lines(&doc);
        apply_text(&mut body, &text);
        match bounded("RoutingTable::from_jsonl_str", || RoutingTable::from_jsonl_str(&body, &path)) {
            Ok(table) => check_table(&table)?,
            Err(e) => prop_assert!(names(&e, &path), "error without the file: {}", e),
        }
    }

    #[test]
    fn candidate_files((tree, text) in edits()) {
        let path = PathBuf::from("/data/llm_candidates.json");
        let mut doc = candidates_seed();
        apply(&mut doc, &tree);
        let mut body = serde_json::to_string_pretty(&doc).expect("json");
        apply_text(&mut body, &text);
        match bounded("Candidates::from_json_str", || Candidates::from_json_str(&body, &path)) {
            Ok(candidates) => {
                let mut names: Vec<&str> = candidates.names();
                prop_assert!(!names.is_empty(), "no candidate was accepted");
                names.sort_unstable();
                prop_assert!(names.windows(2).all(|w| w[0] != w[1]), "a candidate twice: {:?}", names);
                for c in candidates.all() {
                    prop_assert!(c.price().is_finite() && c.price() >= 0.0, "price {} of {}", c.price(), c.name);
                }
            }
            Err(e) => prop_assert!(names(&e, &path), "error without the file: {}", e),
        }
    }

    #[test]
    fn query_files((format, (tree, text)) in (0usize..3, edits())) {
        let lines = head("query_data/default_query_test.jsonl", 6);
        let (path, mut doc) = match format {
            0 => (PathBuf::from("/q/queries.jsonl"), lines_to_array(&lines)),
            1 => (PathBuf::from("/q/queries.json"), lines_to_array(&lines)),
            _ => {
                let texts = lines_to_array(&lines).as_array().expect("array").iter().map(|v| v["query"].clone()).collect();
                (PathBuf::from("/q/queries.txt"), Value::Array(texts))
            }
        };
        apply(&mut doc, &tree);
        let mut body = match format {
            0 => array_to_lines(&doc),
            1 => serde_json::to_string(&doc).expect("json"),
            _ => doc.as_array().map(|a| a.iter().map(|v| format!("{}\n", v.as_str().unwrap_or("?"))).collect())
                .unwrap_or_default(),
        };
        apply_text(&mut body, &text);
        match bounded("queries_from_str", || queries_from_str(&body, &path)) {
            Ok(queries) => {
                for q in &queries {
                    prop_assert!(!q.query.trim().is_empty(), "an empty query was accepted");
                }
            }
            Err(e) => prop_assert!(names(&e, &path), "error without the file: {}", e),
        }
    }

    #[test]
    fn config_files((tree, text) in edits()) {
        let path = workspace_root().join("routers/knnrouter/config.yaml");
        let seed = std::fs::read_to_string(&path).expect("seed config");
        let mut doc: Value = serde_yaml_ng::from_str(&seed).expect("seed yaml");
        apply(&mut doc, &tree);
        let mut body = serde_yaml_ng::to_string(&doc).expect("yaml");
        apply_text(&mut body, &text);
        let parsed = bounded("Config::from_yaml_str", || Config::from_yaml_str(&body, &path));
        match parsed {
            // Every router must take the parsed config or refuse it (hparam, embedding, data
            // paths): never panic. There is no model file here, so none routes.
            Ok(config) => {
                for reg in registry::all().expect("registry") {
                    bounded(reg.name, || {
                        if let Ok(meta) = MetaRouter::from_config(config.clone(), reg.name) {
                            let _ = (reg.build)(meta);
                        }
                    });
                }
            }
            Err(e) => prop_assert!(names(&e, &path), "error without the file: {}", e),
        }
    }
}

/// The routers that save a model file, each trained once on a small slice of the example data
/// (so that a case is quick), with the model file's text.
struct Trained {
    router: &'static str,
    meta: MetaRouter,
    model_path: PathBuf,
    model: Value,
}

fn train_small(router: &'static str) -> Trained {
    let dir = temp_dir(&format!("model-fuzz-{router}"));
    let root = workspace_root();
    // 40 queries of the example data (eight candidates each), in the long layout.
    let train = dir.join("train.jsonl");
    std::fs::write(&train, head("routing_data/default_routing_train_data.jsonl", 320)).expect("train data");
    let model_path = dir.join(format!("{router}.json"));
    let hparam = match router {
        "mlprouter" => "hparam:\n  hidden_layer_sizes: [4]\n  epochs: 3\n  input_dim: 64\n",
        "mfrouter" => "hparam:\n  latent_dim: 4\n  epochs: 3\n  input_dim: 64\n",
        "thresholdrouter" => "hparam:\n  epochs: 3\n  hidden_size: 4\n  feature_dim: 64\n",
        _ => "",
    };
    let yaml = format!(
        "data_path:\n  llm_data: {}\n  routing_data_train: {}\nmodel_path:\n  save_model_path: {}\n\
         embedding:\n  backend: hashed\n  dim: 64\n{hparam}",
        root.join("data/example_data/llm_candidates/default_llm.json").display(),
        train.display(),
        model_path.display()
    );
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, yaml).expect("config");
    let meta = MetaRouter::from_yaml(&config_path, router).expect("config");
    let reg = registry::find(router).expect("router");
    let train_fn = reg.train.expect("a router that trains");
    train_fn(meta.clone(), Device::Cpu).and_then(|mut t| t.train(&NoProgress)).expect("train");
    let model = serde_json::from_slice(&std::fs::read(&model_path).expect("model")).expect("model json");
    Trained { router, meta, model_path, model }
}

/// Model files, damaged: every router refuses them naming the file, or routes to a candidate.
fn model_files_of(router: &'static str) {
    let trained = train_small(router);
    let query = QueryInput::new("What is the capital of Vietnam?");
    let reg = registry::find(router).expect("router");
    let candidates: Vec<String> = trained.meta.candidates.names().iter().map(|s| (*s).to_owned()).collect();
    let mut runner = proptest::test_runner::TestRunner::new(mutate::config());
    runner
        .run(&edits(), |(tree, text)| {
            let mut doc = trained.model.clone();
            apply(&mut doc, &tree);
            let mut body = serde_json::to_string(&doc).expect("json");
            apply_text(&mut body, &text);
            std::fs::write(&trained.model_path, &body).expect("write model");
            let routed = bounded(router, || (reg.build)(trained.meta.clone()).and_then(|r| r.route_single(&query)));
            match routed {
                Ok(decision) => prop_assert!(
                    candidates.contains(&decision.model_name),
                    "{} routed to {:?}, not a candidate",
                    trained.router,
                    decision.model_name
                ),
                Err(e) => prop_assert!(names(&e, &trained.model_path), "error without the file: {}", e),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{router}: {e}"));
}

#[test]
fn knnrouter_model_files() {
    model_files_of("knnrouter");
}

#[test]
fn svmrouter_model_files() {
    model_files_of("svmrouter");
}

#[test]
fn mlprouter_model_files() {
    model_files_of("mlprouter");
}

#[test]
fn mfrouter_model_files() {
    model_files_of("mfrouter");
}

#[test]
fn elorouter_model_files() {
    model_files_of("elorouter");
}

#[test]
fn hybrid_llm_model_files() {
    model_files_of("hybrid_llm");
}

#[test]
fn thresholdrouter_model_files() {
    model_files_of("thresholdrouter");
}
