//! Helpers shared by the workspace-level integration tests in `tests/tests/`.
//!
//! Tests that need the real routing data of `../shared/data` call [`shared_data`]. In a user's
//! clone that folder does not exist and those tests print why and return early; CI sets
//! `LLMROUTER_REQUIRE_SHARED_DATA=1`, which turns its absence into a failure.

use std::path::{Path, PathBuf};

pub mod mutate;
pub mod report;

// Link every router crate so that its registration is in the registry.
use elorouter as _;
use hybrid_llm as _;
use knnrouter as _;
use mfrouter as _;
use mlprouter as _;
use routerdc as _;
use svmrouter as _;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or_else(|| here.to_path_buf())
}

/// `../shared/data` beside the repository, or `None` (after saying so) when it is absent and not
/// required.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("LLMROUTER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    let required = std::env::var("LLMROUTER_REQUIRE_SHARED_DATA").is_ok_and(|v| v == "1");
    assert!(!required, "LLMROUTER_REQUIRE_SHARED_DATA=1 but {} does not exist", dir.display());
    eprintln!("skipping: this test needs the real routing data in {} (absent in this clone)", dir.display());
    None
}

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmrouter-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temporary folder");
    dir
}
