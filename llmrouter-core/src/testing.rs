//! The shared conformance suite every router crate runs from its `tests/` folder, behind core's
//! `testing` feature (router crates enable it in `[dev-dependencies]` only, so it never ships in
//! a library or the binary):
//!
//! ```ignore
//! llmrouter_core::conformance_tests!(router: MyRouter, config: "config.yaml");
//! llmrouter_core::conformance_tests!(router: MyRouter, trainer: MyTrainer, config: "config.yaml");
//! ```
//!
//! Its helpers assert, and panic with a message naming the router and the check, by design:
//! they are test code.
//!
//! It checks that the router builds from its example config, routes fixture queries only to
//! candidates, is deterministic, rejects empty input, and (with a trainer) trains
//! deterministically, gives identical decisions after save and load, and refuses a missing, a
//! corrupted and a foreign model file with a clear error.
//!
//! Data paths in the example config resolve from the workspace root (the tests change into it);
//! the model is written to a temporary folder, never into the repository.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::error::Result;
use crate::meta::MetaRouter;
use crate::progress::NoProgress;
use crate::query::{QueryInput, RouteDecision};
use crate::router::{Device, Router, Trainer};

/// Queries every router must route.
pub const FIXTURE_QUERIES: &[&str] = &[
    "Hello world",
    "Explain quantum entanglement to a physics graduate student, with the relevant equations.",
    "What is the capital of France?",
    "Write a Python function that returns the n-th Fibonacci number using memoization.",
    "Janet has 4 apples. She gives 2 to Bob. How many does she have left?",
    "Prove that there are infinitely many primes.",
    "Translate 'good morning' into Spanish.",
    "¿Cuál es la raíz cuadrada de 144?",
];

/// Expands to the conformance `#[test]` functions for a router crate.
#[macro_export]
macro_rules! conformance_tests {
    (router: $router:ty, config: $config:literal $(,)?) => {
        fn __conformance_config() -> ::std::path::PathBuf {
            $crate::testing::prepare(env!("CARGO_MANIFEST_DIR"), $config, module_path!(), None)
        }

        #[test]
        fn conformance_builds_and_routes_only_to_candidates() {
            $crate::testing::routes_only_to_candidates::<$router>(&__conformance_config());
        }

        #[test]
        fn conformance_is_deterministic() {
            $crate::testing::deterministic::<$router>(&__conformance_config());
        }

        #[test]
        fn conformance_rejects_empty_query() {
            $crate::testing::rejects_empty_query::<$router>(&__conformance_config());
        }
    };
    (router: $router:ty, trainer: $trainer:ty, config: $config:literal $(,)?) => {
        fn __conformance_config(case: &str) -> ::std::path::PathBuf {
            $crate::testing::prepare(env!("CARGO_MANIFEST_DIR"), $config, module_path!(), Some(case))
        }

        #[test]
        fn conformance_builds_and_routes_only_to_candidates() {
            let config = __conformance_config("routes");
            $crate::testing::train::<$trainer>(&config);
            $crate::testing::routes_only_to_candidates::<$router>(&config);
        }

        #[test]
        fn conformance_is_deterministic() {
            let config = __conformance_config("deterministic");
            $crate::testing::train_deterministic::<$router, $trainer>(&config);
            $crate::testing::deterministic::<$router>(&config);
        }

        #[test]
        fn conformance_rejects_empty_query() {
            let config = __conformance_config("empty");
            $crate::testing::train::<$trainer>(&config);
            $crate::testing::rejects_empty_query::<$router>(&config);
        }

        #[test]
        fn conformance_refuses_bad_model_files() {
            let config = __conformance_config("bad-model");
            $crate::testing::refuses_bad_model_files::<$router, $trainer>(&config);
        }
    };
}

/// Changes into the workspace root (once), and writes a copy of the crate's example config whose
/// model path points into a fresh temporary folder (when `case` is given). Returns the config
/// path to use.
pub fn prepare(manifest_dir: &str, config: &str, module: &str, case: Option<&str>) -> PathBuf {
    static CHDIR: Once = Once::new();
    let manifest_dir = Path::new(manifest_dir);
    CHDIR.call_once(|| {
        if let Some(root) = workspace_root(manifest_dir) {
            std::env::set_current_dir(root).expect("change into the workspace root");
        }
    });
    let original = manifest_dir.join(config);
    let Some(case) = case else { return original };
    let text = std::fs::read_to_string(&original).expect("read the example config");
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("example config is YAML");
    let dir = std::env::temp_dir()
        .join(format!("llmrouter-conformance-{}-{}", std::process::id(), module.replace("::", "-")))
        .join(case);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temporary folder");
    let model = dir.join("model.json");
    let mut model_path = serde_yaml_ng::Mapping::new();
    model_path.insert("save_model_path".into(), model.display().to_string().into());
    model_path.insert("load_model_path".into(), model.display().to_string().into());
    let serde_yaml_ng::Value::Mapping(map) = &mut value else {
        panic!("{} is not a YAML mapping: the model could not be redirected to a temporary folder", original.display())
    };
    map.insert("model_path".into(), serde_yaml_ng::Value::Mapping(model_path));
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&value).expect("serialise config")).expect("write config");
    path
}

fn workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest.contains("[workspace]").then(|| dir.to_owned())
    })
}

fn meta(config: &Path, router: &str) -> MetaRouter {
    MetaRouter::from_yaml(config, router).unwrap_or_else(|e| panic!("config {} must load: {e}", config.display()))
}

fn build<R: Router>(config: &Path) -> Result<R> {
    R::from_meta(meta(config, "conformance"))
}

fn route_all<R: Router>(router: &R) -> Vec<RouteDecision> {
    let queries: Vec<QueryInput> = FIXTURE_QUERIES.iter().map(|q| QueryInput::new(*q)).collect();
    let batch = router.route_batch(&queries).expect("route_batch must succeed on the fixture queries");
    let single: Vec<RouteDecision> =
        queries.iter().map(|q| router.route_single(q).expect("route_single must succeed")).collect();
    assert_eq!(batch, single, "route_batch and route_single must agree");
    batch
}

/// Trains with `T` on the config; panics with the error otherwise.
pub fn train<T: Trainer>(config: &Path) {
    let mut trainer =
        T::from_meta(meta(config, "conformance"), Device::Cpu).unwrap_or_else(|e| panic!("trainer builds: {e}"));
    let report = trainer.train(&NoProgress).unwrap_or_else(|e| panic!("training succeeds: {e}"));
    assert!(report.model_path.is_file(), "training writes {}", report.model_path.display());
}

/// Every fixture query is routed to a candidate, with `model_name == predicted_llm`.
pub fn routes_only_to_candidates<R: Router>(config: &Path) {
    let m = meta(config, "conformance");
    let names: Vec<String> = m.candidates.names().into_iter().map(String::from).collect();
    let router = R::from_meta(m).unwrap_or_else(|e| panic!("router builds from {}: {e}", config.display()));
    for d in route_all(&router) {
        assert!(names.contains(&d.model_name), "routed to `{}`, not a candidate ({names:?})", d.model_name);
        assert_eq!(d.model_name, d.predicted_llm);
    }
}

/// Two routers built from the same config decide identically.
pub fn deterministic<R: Router>(config: &Path) {
    let a = build::<R>(config).unwrap_or_else(|e| panic!("router builds: {e}"));
    let b = build::<R>(config).unwrap_or_else(|e| panic!("router builds: {e}"));
    assert_eq!(route_all(&a), route_all(&b), "same config, same decisions");
}

/// Training twice writes byte-identical model files, and a router loaded from the saved file
/// decides like one loaded from a second training run.
pub fn train_deterministic<R: Router, T: Trainer>(config: &Path) {
    let model = meta(config, "conformance").config.save_model_path().expect("save path");
    train::<T>(config);
    let first = std::fs::read(&model).expect("model written");
    let before = route_all(&build::<R>(config).unwrap_or_else(|e| panic!("router loads the model: {e}")));
    train::<T>(config);
    let second = std::fs::read(&model).expect("model written");
    assert!(first == second, "training with the same seed must write the same model file");
    let after = route_all(&build::<R>(config).unwrap_or_else(|e| panic!("router loads the model: {e}")));
    assert_eq!(before, after, "identical decisions after save and load");
}

/// An empty query is an error, not a decision.
pub fn rejects_empty_query<R: Router>(config: &Path) {
    let router = build::<R>(config).unwrap_or_else(|e| panic!("router builds: {e}"));
    assert!(router.route_single(&QueryInput::new("   ")).is_err(), "an empty query must be rejected");
}

/// A missing, a corrupted and a foreign (other candidates) model file are clear errors.
pub fn refuses_bad_model_files<R: Router, T: Trainer>(config: &Path) {
    let model = meta(config, "conformance").config.save_model_path().expect("save path");
    let _ = std::fs::remove_file(&model);
    let err = build::<R>(config).err().expect("building without a trained model must fail");
    assert!(err.to_string().contains("llmrouter train"), "the error says how to train: {err}");

    train::<T>(config);
    let good = std::fs::read_to_string(&model).expect("model written");
    std::fs::write(&model, &good[..good.len() / 2]).expect("truncate");
    let err = build::<R>(config).err().expect("a corrupted model must be refused");
    assert!(err.to_string().contains(&model.display().to_string()), "the error names the file: {err}");

    let mut value: serde_json::Value = serde_json::from_str(&good).expect("model is JSON");
    let Some(serde_json::Value::Array(c)) = value.get_mut("candidates") else {
        panic!("the model file has no `candidates` list: {}", model.display())
    };
    c.push("some-other-model".into());
    std::fs::write(&model, serde_json::to_vec(&value).expect("json")).expect("write");
    let err = build::<R>(config).err().expect("a model for other candidates must be refused");
    assert!(err.to_string().contains("other candidate"), "the error says why: {err}");
}
