//! The real `llmrouter` binary, run on real files from the repository root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn llmrouter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmrouter")).args(args).current_dir(root()).output().expect("run llmrouter")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: exit code 1, no panic, and the message contains every `needle`.
fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code 1 expected; stderr:\n{err}");
    assert!(!err.contains("panicked"), "no panic:\n{err}");
    assert!(err.starts_with("error: "), "a readable error:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}:\n{err}");
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmrouter-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// thresholdrouter's example config with the model written to `dir` and `edit` applied.
fn threshold_config(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join("custom_routers/thresholdrouter/config.yaml")).expect("config");
    let model = dir.join("model.json").display().to_string();
    let text = text.replace("saved_models/thresholdrouter/thresholdrouter.json", &model);
    let path = dir.join("config.yaml");
    std::fs::write(&path, edit(text)).expect("write config");
    path
}

fn candidates() -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("data/example_data/llm_candidates/default_llm.json")).expect("llm data");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn list_routers_json_is_the_snapshot() {
    let o = llmrouter(&["list-routers", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert!(listed.as_array().is_some_and(|a| a.iter().all(|r| r["name"].is_string() && r["origin"].is_string())));
    if cfg!(feature = "all-routers") {
        let snapshot =
            std::fs::read_to_string(root().join("llmrouter-cli/tests/snapshots/list-routers.json")).expect("snapshot");
        assert_eq!(stdout(&o), snapshot, "list-routers --format json is a contract; update the snapshot deliberately");
    }
}

#[test]
fn list_routers_text_and_long() {
    let o = llmrouter(&["list-routers"]);
    let out = stdout(&o);
    for name in ["randomrouter", "thresholdrouter", "smallest_llm", "largest_llm"] {
        assert!(out.contains(name), "{out}");
    }
    let long = stdout(&llmrouter(&["list-routers", "--long"]));
    assert!(long.contains("# thresholdrouter") && long.len() > out.len() * 3, "--long shows each README");
}

#[test]
fn infer_random_router_on_one_query() {
    let o = llmrouter(&[
        "infer",
        "--router",
        "randomrouter",
        "--config",
        "custom_routers/randomrouter/config.yaml",
        "--query",
        "Hello world",
        "--route-only",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json decision");
    assert!(candidates().contains(&d["model_name"].as_str().expect("model_name").to_owned()));
    assert_eq!(d["model_name"], d["predicted_llm"]);
    assert_eq!(d["query"], "Hello world");
}

#[test]
fn train_then_infer_threshold_router() {
    let dir = temp_dir("train-infer");
    let config = threshold_config(&dir, |t| t);
    let config = config.to_str().expect("utf8");
    let o = llmrouter(&["train", "--router", "thresholdrouter", "--config", config]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("model saved to"), "{}", stdout(&o));
    assert!(dir.join("model.json").is_file());
    let o = llmrouter(&[
        "infer",
        "--router",
        "thresholdrouter",
        "--config",
        config,
        "--query",
        "Explain quantum entanglement",
        "--route-only",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let difficulty = d["difficulty_score"].as_f64().expect("difficulty_score");
    assert!((0.0..=1.0).contains(&difficulty));
    assert_eq!(d["threshold"], 0.5);
    let expected = if difficulty < 0.5 { "gemma-2-9b-it" } else { "llama-3.1-nemotron-51b-instruct" };
    assert_eq!(d["model_name"], expected);
    assert!(!stderr(&o).contains("was trained with other"), "{}", stderr(&o));

    // Editing a training setting after training: the model still routes, with a warning that
    // names the command to retrain.
    threshold_config(&dir, |t| t.replace("  epochs: 30", "  epochs: 31"));
    let o = llmrouter(&["infer", "--router", "thresholdrouter", "--config", config, "--query", "Hi", "--route-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("was trained with other `hparam` / `embedding` settings")
            && err.contains("llmrouter train --router thresholdrouter"),
        "{err}"
    );
}

#[test]
fn infer_before_training_says_how_to_train() {
    let dir = temp_dir("untrained");
    let config = threshold_config(&dir, |t| t);
    let o = llmrouter(&[
        "infer",
        "--router",
        "thresholdrouter",
        "--config",
        config.to_str().expect("utf8"),
        "--query",
        "hi",
        "--route-only",
    ]);
    fails_with(&o, &["model.json", "llmrouter train --router thresholdrouter"]);
}

#[test]
fn unknown_router_lists_what_exists() {
    let o = llmrouter(&["infer", "--router", "my_router", "--config", "x.yaml", "--query", "hi", "--route-only"]);
    fails_with(&o, &["Unknown router: my_router", "routers in this binary:", "randomrouter"]);
    let o = llmrouter(&["train", "--router", "thresholdroutr", "--config", "x.yaml"]);
    fails_with(&o, &["Unknown router: thresholdroutr", "did you mean: thresholdrouter"]);
}

#[test]
fn missing_config_file_is_named() {
    let o = llmrouter(&[
        "infer",
        "--router",
        "randomrouter",
        "--config",
        "no/such/config.yaml",
        "--query",
        "hi",
        "--route-only",
    ]);
    fails_with(&o, &["config file not found: no/such/config.yaml"]);
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let dir = temp_dir("yaml");
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        "data_path:\n  llm_data: data/example_data/llm_candidates/default_llm.json\n   seed: 1\nhparam: {}\n",
    )
    .expect("write");
    let o = llmrouter(&[
        "infer",
        "--router",
        "randomrouter",
        "--config",
        path.to_str().expect("utf8"),
        "--query",
        "hi",
        "--route-only",
    ]);
    fails_with(&o, &[&format!("{}:3:", path.display()), "invalid YAML"]);
}

#[test]
fn unknown_config_key_is_named() {
    let dir = temp_dir("unknown-key");
    let config = threshold_config(&dir, |t| t.replace("  epochs: 30", "  epoch: 30"));
    let o = llmrouter(&["train", "--router", "thresholdrouter", "--config", config.to_str().expect("utf8")]);
    fails_with(&o, &["config.yaml", "hparam", "unknown field `epoch`"]);
}

#[test]
fn hparam_model_that_is_not_a_candidate_is_named() {
    let dir = temp_dir("not-candidate");
    let config = threshold_config(&dir, |t| t.replace("small_model: gemma-2-9b-it", "small_model: gpt-5-nano"));
    let o = llmrouter(&["train", "--router", "thresholdrouter", "--config", config.to_str().expect("utf8")]);
    fails_with(&o, &[&format!("{}:", config.display()), "hparam.small_model", "gpt-5-nano", "not a candidate"]);
}

#[test]
fn broken_routing_line_seven_is_named() {
    let dir = temp_dir("broken-line");
    let data = std::fs::read_to_string(root().join("data/example_data/routing_data/default_routing_train_data.jsonl"))
        .expect("data");
    let mut lines: Vec<&str> = data.lines().take(60).collect();
    lines[6] = "{\"query\": \"half a row\", \"model_name\": ";
    let routing = dir.join("routing.jsonl");
    std::fs::write(&routing, lines.join("\n")).expect("write");
    let config = threshold_config(&dir, |t| {
        t.replace("data/example_data/routing_data/default_routing_train_data.jsonl", routing.to_str().expect("utf8"))
    });
    let o = llmrouter(&["train", "--router", "thresholdrouter", "--config", config.to_str().expect("utf8")]);
    fails_with(&o, &[&format!("{}:7:", routing.display())]);
    assert!(!dir.join("model.json").exists(), "a failed run writes no model");
}

/// Calling a model needs an endpoint; one without any is refused before anything is sent. (The
/// calls themselves are tested against a local server in tests/infer_calls.rs.)
#[test]
fn calling_a_model_without_an_endpoint_says_where_to_set_one() {
    let dir = temp_dir("no-endpoint");
    std::fs::write(dir.join("llm.json"), r#"{"solo": {"size": "7B", "cost": 0.2, "model": "org/solo"}}"#)
        .expect("write llm data");
    let config = dir.join("config.yaml");
    std::fs::write(&config, format!("data_path:\n  llm_data: {}\n", dir.join("llm.json").display())).expect("config");
    let o =
        llmrouter(&["infer", "--router", "smallest_llm", "--config", config.to_str().expect("utf8"), "--query", "hi"]);
    fails_with(&o, &["model `solo` has no endpoint", "api_endpoint"]);
    assert_eq!(stdout(&o), "", "no answer is printed");
}

#[test]
fn untrainable_router_says_so() {
    let o = llmrouter(&["train", "--router", "smallest_llm", "--config", "routers/smallest_llm/config.yaml"]);
    fails_with(&o, &["smallest_llm", "nothing to train"]);
    let o = llmrouter(&["train", "--router", "thresholdrouter", "--config", "x.yaml", "--device", "cuda"]);
    fails_with(&o, &["device `cuda`", "--device cpu"]);
}

#[test]
fn batch_files_in_every_format() {
    let dir = temp_dir("batch");
    let inputs = [
        ("q.txt", "What is 2+2?\n\nWrite a haiku about routers.\nProve Fermat's little theorem.\n"),
        (
            "q.json",
            r#"["What is 2+2?", {"query": "Write a haiku about routers.", "id": 7}, "Prove Fermat's little theorem."]"#,
        ),
        (
            "q.jsonl",
            "{\"query\": \"What is 2+2?\"}\n\"Write a haiku about routers.\"\n{\"query\": \"Prove Fermat's little theorem.\", \"id\": \"x\"}\n",
        ),
    ];
    for (name, text) in inputs {
        let input = dir.join(name);
        std::fs::write(&input, text).expect("write");
        let o = llmrouter(&[
            "infer",
            "--router",
            "smallest_llm",
            "--config",
            "routers/smallest_llm/config.yaml",
            "--input",
            input.to_str().expect("utf8"),
            "--route-only",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let lines: Vec<serde_json::Value> =
            stdout(&o).lines().map(|l| serde_json::from_str(l).expect("jsonl")).collect();
        assert_eq!(lines.len(), 3, "{name}");
        assert_eq!(lines[1]["query"], "Write a haiku about routers.");
        assert!(
            lines.iter().all(|d| d["model_name"] == "mistral-7b-instruct-v0.3"),
            "{name}: smallest by size, then price, then name"
        );
    }
    let o = llmrouter(&[
        "infer",
        "--router",
        "smallest_llm",
        "--config",
        "routers/smallest_llm/config.yaml",
        "--input",
        dir.join("q.json").to_str().expect("utf8"),
        "--output",
        dir.join("out.json").to_str().expect("utf8"),
        "--route-only",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).expect("out")).expect("json");
    assert_eq!(out.as_array().map(Vec::len), Some(3));
    assert_eq!(out[1]["id"], 7);
}

#[test]
fn a_failed_batch_leaves_the_earlier_output_intact() {
    let dir = temp_dir("atomic");
    let out = dir.join("out.jsonl");
    std::fs::write(&out, "earlier results\n").expect("write");
    let input = dir.join("q.jsonl");
    std::fs::write(&input, "{\"query\": \"fine\"}\n{\"query\": \"   \"}\n").expect("write");
    let o = llmrouter(&[
        "infer",
        "--router",
        "largest_llm",
        "--config",
        "routers/largest_llm/config.yaml",
        "--input",
        input.to_str().expect("utf8"),
        "--output",
        out.to_str().expect("utf8"),
        "--route-only",
    ]);
    fails_with(&o, &["empty query"]);
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "earlier results\n");
}

#[test]
fn closed_stdout_is_not_a_crash() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmrouter"))
        .args(["list-routers", "--long"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(o.status.success(), "a closed stdout ends the program quietly: {:?}\n{}", o.status, stderr(&o));
}

/// One config for any router on the example data: no `hparam` (each router takes its defaults),
/// `{router}` in the model path, models written into `dir`.
fn shared_example_config(dir: &Path) -> PathBuf {
    let text = format!(
        "data_path:\n  llm_data: data/example_data/llm_candidates/default_llm.json\n  \
         routing_data_train: data/example_data/routing_data/default_routing_train_data.jsonl\n  \
         routing_data_test: data/example_data/routing_data/default_routing_test_data.jsonl\n\
         model_path:\n  save_model_path: {}\nembedding:\n  dim: 4096\n",
        dir.join("{router}.json").display()
    );
    let config = dir.join("config.yaml");
    std::fs::write(&config, text).expect("write");
    config
}

#[test]
fn eval_scores_trained_routers_against_the_reference_points() {
    let dir = temp_dir("eval");
    let config = shared_example_config(&dir);
    let config = config.to_str().expect("utf8");
    let out_dir = dir.to_str().expect("utf8");
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--router", "knnrouter,elorouter", "--config", config, "--output", out_dir];
        args.extend_from_slice(extra);
        llmrouter(&args)
    };
    fails_with(&eval(&[]), &["llmrouter train --router knnrouter"]);
    let o = eval(&["--train"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for row in ["knnrouter", "elorouter", "best single", "cheapest", "random", "oracle"] {
        assert!(out.contains(row), "{row} in\n{out}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report")).expect("json");
    let routers = report["routers"].as_array().expect("routers");
    assert_eq!(routers.len(), 2);
    let oracle = report["references"][3]["mean_score"].as_f64().expect("oracle");
    for r in routers {
        let score = r["mean_score"].as_f64().expect("score");
        assert!((0.0..=oracle).contains(&score), "a router never beats the oracle: {score} vs {oracle}");
        let shares: f64 = r["shares"].as_object().expect("shares").values().map(|v| v.as_f64().expect("share")).sum();
        assert!((shares - 1.0).abs() < 1e-9, "shares sum to 1");
        // Both predict per-model scores: a full sweep, and the curve figures.
        assert_eq!(r["curve"].as_array().expect("curve").len(), 98, "{}", r["name"]);
        assert_eq!(r["swept"], true);
        let aiq = r["aiq"].as_f64().expect("aiq");
        assert!((0.0..=oracle).contains(&aiq), "AIQ {aiq}");
        assert!(r["apgr"].is_number(), "APGR is a number: {}", r["apgr"]);
        assert!(r["cpt50"].is_number() || r["cpt50"].is_null(), "CPT(50%) is a number or null: {}", r["cpt50"]);
    }
    // The sweep's cheapest point costs no more than its costliest one and scores no more.
    let curve = routers[0]["curve"].as_array().expect("curve");
    let (first, last) = (&curve[0], &curve[curve.len() - 1]);
    let figure = |point: &serde_json::Value, key: &str| point[key].as_f64().expect(key);
    let (first_cost, last_cost) = (figure(first, "mean_cost"), figure(last, "mean_cost"));
    let (first_score, last_score) = (figure(first, "mean_score"), figure(last, "mean_score"));
    assert!(last_cost <= first_cost, "cheapest point costs {last_cost}, costliest {first_cost}");
    assert!(last_score <= first_score, "cheapest point scores {last_score}, costliest {first_score}");
    let svg = std::fs::read_to_string(dir.join("cost_quality.svg")).expect("plot written");
    assert!(
        svg.starts_with("<svg") && svg.contains("knnrouter") && svg.contains("elorouter") && svg.contains("oracle")
    );
    for column in ["AIQ", "APGR", "CPT(50%)", "CPT(80%)", "mean score per task", "plot: "] {
        assert!(out.contains(column), "{column} in\n{out}");
    }
}

#[test]
fn calibrate_stores_a_cost_weight_that_infer_and_eval_use() {
    let dir = temp_dir("calibrate");
    let config = shared_example_config(&dir);
    let config = config.to_str().expect("utf8");
    let calibrate = |budget: &[&str]| {
        let mut args = vec!["--quiet", "calibrate", "--router", "svmrouter", "--config", config];
        args.extend_from_slice(budget);
        llmrouter(&args)
    };
    // Usage errors: no budget, two budgets, a model that is not a candidate, a budget below any spend.
    for (args, needle) in [
        (&[][..], "--max-cost-per-query"),
        (&["--max-cost-per-query", "1e-4", "--max-share", "gemma-2-9b-it=0.5"][..], "cannot be used with"),
    ] {
        let o = calibrate(args);
        assert_eq!(o.status.code(), Some(2), "a usage error: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{needle} in {}", stderr(&o));
    }
    fails_with(&calibrate(&["--max-share", "no-such-model=0.5"]), &["`no-such-model`"]);
    fails_with(&calibrate(&["--max-share", "gemma-2-9b-it"]), &["MODEL=SHARE"]);
    fails_with(&calibrate(&["--max-cost-per-query", "1e-12"]), &["raise the budget"]);

    let o = calibrate(&["--max-share", "llama-3.1-nemotron-51b-instruct=0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("calibrated svmrouter: cost weight") && out.contains("test"), "{out}");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("svmrouter.json")).expect("model")).expect("json");
    let c = &model["calibration"];
    let weight = c["cost_weight"].as_f64().expect("stored weight");
    assert!(weight > 0.0, "a 10% cap on the priciest model binds on this data: {c}");
    assert!(c["validation_value"].as_f64().expect("share") <= 0.1);
    assert_eq!(c["budget"]["kind"], "max_share");
    // A calibration that fails after retraining leaves the calibrated model as it was, and no
    // temporary file behind.
    let before = std::fs::read(dir.join("svmrouter.json")).expect("model");
    fails_with(&calibrate(&["--max-cost-per-query", "1e-12"]), &["raise the budget"]);
    assert_eq!(std::fs::read(dir.join("svmrouter.json")).expect("model"), before);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.contains("calibrating") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // `infer` decides with the stored weight; `eval` reports where its weight came from, and
    // `--cost-weight` overrides it.
    let o =
        llmrouter(&["infer", "--router", "svmrouter", "--config", config, "--query", "Hello world", "--route-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let decision: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("decision json");
    let mix: Option<llmrouter_core::CostMix> = serde_json::from_value(c["mix"].clone()).expect("mix");
    let weights = llmrouter_core::MetricWeights { cost: weight, cost_mix: mix, ..Default::default() };
    assert_eq!(decision["cost_weight"].as_f64(), Some(weights.for_query("Hello world").cost));
    let o = llmrouter(&["eval", "--router", "svmrouter", "--config", config]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("(calibration in the model file)"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("calibrated for share of queries sent to llama-3.1-nemotron-51b-instruct <= 10.0%; here"),
        "{}",
        stdout(&o)
    );
    let o = llmrouter(&["eval", "--router", "svmrouter", "--config", config, "--cost-weight", "0"]);
    assert!(stdout(&o).contains("cost weight 0 (--cost-weight)"), "{}", stdout(&o));
    // Retraining writes a model without the calibration.
    let o = llmrouter(&["train", "--router", "svmrouter", "--config", config]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = std::fs::read_to_string(dir.join("svmrouter.json")).expect("model");
    assert!(!model.contains("\"calibration\""));
}
