//! A crate outside core adds an embedding backend with `register_embedding_backend!` (linkme):
//! it is listed beside `hashed` and `minilm`, `embedding.backend` selects it, a misspelt name is
//! refused with a suggestion, and a router trains and routes with it end to end.

use std::path::{Path, PathBuf};

use llmrouter_core::embed::{self, BackendContext, Embedder, EmbedderSpec};
use llmrouter_core::{Config, Device, MetaRouter, NoProgress, QueryInput, Result, Router, Trainer};

/// A toy embedding: character classes of the text, scaled by a length fitted on the training
/// texts (its only state, kept in the spec's `state`).
struct Toy {
    scale: f32,
}

const TOY_DIM: usize = 6;

impl Embedder for Toy {
    fn id(&self) -> String {
        format!("toy-{}", self.scale)
    }

    fn dim(&self) -> usize {
        TOY_DIM
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let count = |f: fn(&char) -> bool| text.chars().filter(f).count() as f32 / self.scale;
        let mut v = vec![
            count(|c| c.is_ascii_digit()),
            count(|c| c.is_ascii_uppercase()),
            count(|c| c.is_ascii_lowercase()),
            count(|c| c.is_whitespace()),
            count(|c| c.is_ascii_punctuation()),
            1.0,
        ];
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        Ok(v)
    }
}

fn toy_fit(_ctx: &BackendContext<'_>, texts: &[&str]) -> Result<(EmbedderSpec, Box<dyn Embedder>)> {
    let scale = texts.iter().map(|t| t.chars().count()).sum::<usize>() as f32 / texts.len().max(1) as f32;
    let mut spec = EmbedderSpec::plain("toy", TOY_DIM);
    spec.state.insert("scale".into(), f64::from(scale).into());
    Ok((spec, Box::new(Toy { scale })))
}

fn toy_load(ctx: &BackendContext<'_>, spec: &EmbedderSpec) -> Result<Box<dyn Embedder>> {
    let scale = spec
        .state
        .get("scale")
        .and_then(|v| v.as_f64())
        .ok_or_else(|| llmrouter_core::Error::model(ctx.model_path, "toy embedder without `scale`"))?;
    Ok(Box::new(Toy { scale: scale as f32 }))
}

llmrouter_core::register_embedding_backend! {
    static TOY = EmbeddingBackend {
        name: "toy",
        summary: "character classes (a test backend)",
        fit: toy_fit,
        load: toy_load,
    };
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A config for `router` on the example data with `embedding.backend: <backend>`, writing its model
/// into a temporary folder.
fn config(backend: &str) -> (PathBuf, Config) {
    let dir = std::env::temp_dir().join(format!("llmrouter-toy-backend-{}-{backend}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let data = root().join("data/example_data");
    let yaml = format!(
        "data_path:\n  llm_data: {}\n  routing_data_train: {}\nmodel_path:\n  save_model_path: {}\n\
         embedding:\n  backend: {backend}\n",
        data.join("llm_candidates/default_llm.json").display(),
        data.join("routing_data/default_routing_train_data.jsonl").display(),
        dir.join("{router}.json").display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, &yaml).expect("config");
    let config = Config::load(&path).expect("config loads");
    (dir, config)
}

#[test]
fn a_backend_from_another_crate_is_listed_and_selected() {
    let names: Vec<&str> = embed::backends().expect("backends").iter().map(|b| b.name).collect();
    assert_eq!(names, ["hashed", "minilm", "toy"], "sorted, the test crate's backend included");
    let (_dir, config) = config("toy");
    let (spec, embedder) = embed::fit(&config, &["What is 2+2?", "Explain Rust lifetimes."]).expect("fit");
    assert_eq!((spec.backend.as_str(), spec.dim), ("toy", TOY_DIM));
    assert!(spec.state.contains_key("scale"));
    let v = embedder.embed("Hello, World 42").expect("embed");
    assert_eq!(v.len(), TOY_DIM);
    assert!(v[0] > 0.0 && v[1] > 0.0 && v[4] > 0.0, "digits, capitals and punctuation counted: {v:?}");
    // Saved and rebuilt, it gives the same vectors.
    let back: EmbedderSpec = serde_json::from_str(&serde_json::to_string(&spec).expect("ser")).expect("de");
    let again = embed::from_spec(&back, &config, Path::new("/x/model.json")).expect("rebuild");
    assert_eq!(again.embed("Hello, World 42").expect("embed"), v);
}

#[test]
fn a_misspelt_backend_is_refused_with_the_closest_names() {
    let (_dir, config) = config("tooy");
    let err = embed::fit(&config, &["hello"]).err().expect("unknown backend").to_string();
    assert!(err.contains("embedding.backend") && err.contains("Unknown embedding backend: tooy"), "{err}");
    assert!(err.contains("did you mean: toy?") && err.contains("hashed, minilm, toy"), "{err}");
}

#[test]
fn a_router_trains_and_routes_with_the_new_backend() {
    let (dir, config) = config("toy");
    let meta = MetaRouter::from_config(config, "svmrouter").expect("meta");
    let report = svmrouter::SvmTrainer::from_meta(meta.clone(), Device::Cpu)
        .expect("trainer")
        .train(&NoProgress)
        .expect("trains with the toy embedder");
    let embedder = report.metrics.iter().find(|(k, _)| k == "embedder").map(|(_, v)| v.clone());
    assert!(embedder.as_deref().is_some_and(|e| e.starts_with("toy-")), "{:?}", report.metrics);
    let router = svmrouter::SvmRouter::from_meta(meta.clone()).expect("router loads the model");
    let d = router.route_single(&QueryInput::new("Prove that there are infinitely many primes.")).expect("routes");
    assert!(meta.candidates.index_of(&d.model_name).is_some(), "routed to a candidate: {}", d.model_name);
    // The model file stores the backend and its state.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("svmrouter.json")).expect("model")).expect("json");
    assert_eq!(saved["model"]["embedder"]["backend"], "toy");
    assert!(saved["model"]["embedder"]["scale"].is_number(), "{}", saved["model"]["embedder"]);
    // A config that now selects another backend is refused, naming both.
    let (_other, hashed) = self::config("hashed");
    let with_hashed =
        MetaRouter::from_config(hashed.with_model_path(&dir.join("svmrouter.json")), "svmrouter").expect("meta");
    let err = svmrouter::SvmRouter::from_meta(with_hashed).err().expect("mismatch").to_string();
    assert!(err.contains("`toy`") && err.contains("`hashed`"), "{err}");
}
