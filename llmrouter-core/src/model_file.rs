//! The saved-model format and atomic file writing.
//!
//! A model file is one JSON document:
//!
//! ```json
//! {"format": "llmrouter-model", "format_version": 1, "router": "thresholdrouter",
//!  "candidates": ["model-a", "model-b"], "created_by": "llmrouter 0.1.0",
//!  "training_hash": "3f2a...", "model": { ... }}
//! ```
//!
//! `training_hash` fingerprints the config's `hparam` and `embedding` sections at training time
//! ([`crate::Config::training_hash`]); the CLI warns when a model is used with a config whose
//! training settings changed since. A calibration adds `calibration` (see [`crate::calibrate`]).
//!
//! `model` is the router's own payload and carries everything inference needs (weights, label
//! maps, featurizer state); `candidates` is checked on load so that a model trained for other
//! candidates is refused instead of silently mis-routing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The value of the `format` field.
pub const FORMAT: &str = "llmrouter-model";
/// The current `format_version`.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    format: &'static str,
    format_version: u32,
    router: &'a str,
    candidates: &'a [&'a str],
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    training_hash: Option<String>,
    model: &'a T,
}

/// Writes `model` for `router`, trained for `candidates`, to `path` atomically.
pub fn save<T: Serialize>(path: &Path, router: &str, candidates: &[&str], model: &T) -> Result<()> {
    write_envelope(path, router, candidates, None, model)
}

/// Writes `model`, trained by `router` from `meta`, to `path` atomically: with `meta`'s
/// candidates and the config's [`crate::Config::training_hash`] (see [`training_hash`]).
pub fn save_trained<T: Serialize>(path: &Path, meta: &crate::MetaRouter, router: &str, model: &T) -> Result<()> {
    let hash = meta.config.training_hash()?;
    write_envelope(path, router, &meta.candidates.names(), Some(hash), model)
}

/// The training hash stored in the model file at `path` (`None` for files written without one).
pub fn training_hash(path: &Path) -> Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        training_hash: Option<String>,
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io("read model file", path, e))?;
    let envelope: Envelope = serde_json::from_slice(&bytes)
        .map_err(|e| Error::model(path, format!("not a readable model file (corrupted or truncated?): {e}")))?;
    Ok(envelope.training_hash)
}

fn write_envelope<T: Serialize>(
    path: &Path,
    router: &str,
    candidates: &[&str],
    training_hash: Option<String>,
    model: &T,
) -> Result<()> {
    let envelope = EnvelopeOut {
        format: FORMAT,
        format_version: FORMAT_VERSION,
        router,
        candidates,
        created_by: format!("llmrouter {}", env!("CARGO_PKG_VERSION")),
        training_hash,
        model,
    };
    let bytes = serde_json::to_vec(&envelope).map_err(|e| Error::model(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
}

/// Reads a model file written by [`save`] for `router`, checking that it was trained for exactly
/// `candidates`.
pub fn load<T: DeserializeOwned>(path: &Path, router: &str, candidates: &[&str]) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read model file", path, e))?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::model(
            path,
            format!("not a readable model file (corrupted or truncated?): {e}; retrain it with `llmrouter train`"),
        )
    })?;
    let field = |v: &serde_json::Value, k: &str| v.get(k).cloned();
    if field(&value, "format").and_then(|f| f.as_str().map(str::to_owned)).as_deref() != Some(FORMAT) {
        return Err(Error::model(path, format!("not an llmrouter model file (no `\"format\": \"{FORMAT}\"`)")));
    }
    let version = field(&value, "format_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(Error::model(
            path,
            format!(
                "format_version {version:?} is not supported (this build reads version {FORMAT_VERSION}); retrain it"
            ),
        ));
    }
    let saved_router = field(&value, "router").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    if saved_router != router {
        return Err(Error::model(path, format!("this model was trained by router `{saved_router}`, not `{router}`")));
    }
    let saved: Vec<String> = field(&value, "candidates")
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| Error::model(path, "missing or malformed `candidates` list"))?;
    if saved.iter().map(String::as_str).ne(candidates.iter().copied()) {
        let missing: Vec<&str> = candidates.iter().copied().filter(|c| !saved.iter().any(|s| s == c)).collect();
        let extra: Vec<&str> = saved.iter().map(String::as_str).filter(|s| !candidates.contains(s)).collect();
        return Err(Error::model(
            path,
            format!(
                "trained for other candidate models (not in the model: [{}]; only in the model: [{}]); \
                 retrain with the current llm_data",
                missing.join(", "),
                extra.join(", ")
            ),
        ));
    }
    let model =
        value.get_mut("model").map(serde_json::Value::take).ok_or_else(|| Error::model(path, "missing `model`"))?;
    serde_json::from_value(model)
        .map_err(|e| Error::model(path, format!("model payload does not match router `{router}`: {e}")))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and synced,
/// then renamed over `path`. Creates missing parent folders. On failure `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp: PathBuf = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("llmrouter-core-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        dir.join(name)
    }

    #[test]
    fn round_trip_and_refusals() {
        let p = tmp("m.json");
        save(&p, "r", &["a", "b"], &vec![1.5f32, 2.0]).expect("save");
        let back: Vec<f32> = load(&p, "r", &["a", "b"]).expect("load");
        assert_eq!(back, vec![1.5, 2.0]);
        assert_eq!(training_hash(&p).expect("envelope"), None, "written without a config");
        let err = load::<Vec<f32>>(&p, "other", &["a", "b"]).expect_err("router");
        assert!(err.to_string().contains("trained by router `r`"), "{err}");
        let err = load::<Vec<f32>>(&p, "r", &["a", "c"]).expect_err("candidates");
        assert!(err.to_string().contains("[c]") && err.to_string().contains("[b]"), "{err}");
        let err = load::<String>(&p, "r", &["a", "b"]).expect_err("payload");
        assert!(err.to_string().contains("payload"), "{err}");
        std::fs::write(&p, b"{\"format\": \"llmrouter-mo").expect("write");
        let err = load::<Vec<f32>>(&p, "r", &["a", "b"]).expect_err("corrupt");
        assert!(err.to_string().contains("corrupted"), "{err}");
    }

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let p = tmp("sub/atomic.bin");
        write_atomic(&p, b"one").expect("first");
        write_atomic(&p, b"two").expect("second");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let leftovers = std::fs::read_dir(p.parent().expect("dir")).expect("list").count();
        assert_eq!(leftovers, 1);
    }
}
