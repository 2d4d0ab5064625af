//! Routing data loads the same in all three layouts, on the real files of `../shared/data`.

use std::path::Path;

use llmrouter_core::data::{Candidates, RoutingTable};
use llmrouter_tests::{shared_data, temp_dir};

const FILES: &[(&str, &str)] = &[
    ("llmrouter_dc_train.jsonl", "llmrouter_dc_models.json"),
    ("llmrouter_dc_test.jsonl", "llmrouter_dc_models.json"),
    ("routerdc7_train.jsonl", "routerdc7_models.json"),
    ("routerdc7_test.jsonl", "routerdc7_models.json"),
    ("routerdc7_test_ood.jsonl", "routerdc7_models.json"),
    ("routellm_mmlu_train.jsonl", "routellm_models.json"),
    ("routellm_mmlu_test.jsonl", "routellm_models.json"),
    ("routellm_gsm8k_train.jsonl", "routellm_models.json"),
    ("routellm_gsm8k_test.jsonl", "routellm_models.json"),
];

#[test]
fn every_shared_file_loads_completely() {
    let Some(dir) = shared_data() else { return };
    for (file, models) in FILES {
        let path = dir.join(file);
        let table = RoutingTable::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let candidates = Candidates::load(&dir.join(models)).unwrap_or_else(|e| panic!("{models}: {e}"));
        let lines = std::fs::read_to_string(&path).expect("read").lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(table.rows.len(), lines, "{file}: one row per line");
        assert_eq!(table.models, candidates.names(), "{file}: the models of {models}");
        for row in &table.rows {
            assert!(row.cells.iter().all(Option::is_some), "{file}: every model scored on {:?}", row.id);
            assert!(row.best.is_some());
        }
    }
}

/// The first `n` rows of a wide file, rewritten in the long and best layouts.
fn convert(wide_text: &str, n: usize) -> (String, String, String) {
    let (mut wide, mut long, mut best) = (String::new(), String::new(), String::new());
    for line in wide_text.lines().take(n) {
        wide.push_str(line);
        wide.push('\n');
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let scores = v["scores"].as_object().expect("scores");
        // Best: highest score, first model in name order on ties (the table's rule).
        let mut names: Vec<&String> = scores.keys().collect();
        names.sort();
        let mut top = names[0];
        for name in &names {
            let score = |n: &str| scores[n].as_f64().unwrap_or_else(|| panic!("score of {n}: {}", scores[n]));
            if score(name) > score(top) {
                top = name;
            }
        }
        for name in names.iter().rev() {
            let mut row = serde_json::json!({
                "id": v["id"], "query": v["query"], "task_name": v["task"],
                "model_name": name, "performance": scores[*name],
            });
            if let Some(cost) = v.get("cost_est").and_then(|c| c.get(name.as_str())) {
                row["cost"] = cost.clone();
            }
            long.push_str(&row.to_string());
            long.push('\n');
        }
        let mut row = serde_json::json!({
            "id": v["id"], "query": v["query"], "task": v["task"], "best_llm": top, "performance": scores[top],
        });
        if let Some(cost) = v.get("cost_est").and_then(|c| c.get(top.as_str())) {
            row["cost"] = cost.clone();
        }
        best.push_str(&row.to_string());
        best.push('\n');
    }
    (wide, long, best)
}

fn load(dir: &Path, name: &str, text: &str) -> RoutingTable {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    RoutingTable::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_three_layouts_load_into_equal_tables() {
    let Some(data) = shared_data() else { return };
    let tmp = temp_dir("layouts");
    for file in ["llmrouter_dc_test.jsonl", "routellm_mmlu_test.jsonl", "routerdc7_test.jsonl"] {
        let text = std::fs::read_to_string(data.join(file)).expect("read");
        let (wide, long, best) = convert(&text, 40);
        let wide = load(&tmp, "wide.jsonl", &wide);
        let long = load(&tmp, "long.jsonl", &long);
        let best = load(&tmp, "best.jsonl", &best);
        assert_eq!(wide.rows.len(), 40);
        assert_eq!(long, wide, "{file}: long layout equals wide layout");
        assert_eq!(best, wide.best_only(), "{file}: best layout equals the wide table's best cells");
        assert!(wide.best_only().rows.iter().all(|r| r.cells.iter().filter(|c| c.is_some()).count() == 1));
    }
}

#[test]
fn a_broken_line_seven_is_named() {
    let Some(data) = shared_data() else { return };
    let tmp = temp_dir("broken");
    let text = std::fs::read_to_string(data.join("routellm_gsm8k_test.jsonl")).expect("read");
    let mut lines: Vec<String> = text.lines().take(10).map(String::from).collect();
    let half = lines[6].len() / 2;
    lines[6].truncate(half);
    let path = tmp.join("broken.jsonl");
    std::fs::write(&path, lines.join("\n")).expect("write");
    let err = RoutingTable::load(&path).expect_err("line 7 is broken");
    assert!(err.to_string().starts_with(&format!("{}:7: invalid JSON", path.display())), "{err}");
}
