//! The saved-model format: one envelope type, [`ModelFile`], read once per command, and atomic
//! file writing.
//!
//! A model file is one JSON document:
//!
//! ```json
//! {"format": "llmrouter-model", "format_version": 1, "router": "thresholdrouter",
//!  "candidates": ["model-a", "model-b"], "created_by": "llmrouter 0.1.0",
//!  "training_hash": "3f2a...", "calibration": {...}, "model": { ... }}
//! ```
//!
//! - `training_hash` fingerprints the config's `hparam` and `embedding` sections at training time
//!   ([`crate::Config::training_hash`]); the CLI warns when a model is used with a config whose
//!   training settings changed since.
//! - `calibration` (optional, [`Calibration`]) is the cost weight `llmrouter calibrate` chose.
//! - `model` is the router's own payload and carries everything inference needs (weights, label
//!   maps, featurizer state).
//!
//! [`ModelFile::read`] checks the format and version and keeps the payload as parsed JSON;
//! [`ModelFile::payload`] checks the router and the candidate list (a model trained for other
//! candidates is refused instead of silently mis-routing) and deserialises the payload.

pub mod calibration;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use calibration::{Budget, Calibration};

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

/// Writes `model` for `router`, trained for `candidates`, to `path` atomically, with the
/// training fingerprint when there is one.
pub fn save<T: Serialize>(
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

/// A model file as read from disk: the envelope's fields, and the payload still as JSON.
#[derive(Debug, Clone)]
pub struct ModelFile {
    path: PathBuf,
    /// The router that wrote it.
    pub router: String,
    /// The candidates it was trained for, in order.
    pub candidates: Vec<String>,
    /// `created_by`, when present.
    pub created_by: Option<String>,
    /// The training fingerprint, when the trainer recorded one.
    pub training_hash: Option<String>,
    /// The stored calibration, when `llmrouter calibrate` wrote one.
    pub calibration: Option<Calibration>,
    /// Every top-level field, the payload (`model`) included, for rewriting.
    document: serde_json::Map<String, serde_json::Value>,
}

impl ModelFile {
    /// Reads and checks the envelope of the model file at `path` (format, version, fields).
    pub fn read(path: &Path) -> Result<ModelFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read model file", path, e))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::model(
                path,
                format!("not a readable model file (corrupted or truncated?): {e}; retrain it with `llmrouter train`"),
            )
        })?;
        let serde_json::Value::Object(document) = value else {
            return Err(Error::model(path, format!("not an llmrouter model file (no `\"format\": \"{FORMAT}\"`)")));
        };
        let field = |k: &str| document.get(k);
        if field("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::model(path, format!("not an llmrouter model file (no `\"format\": \"{FORMAT}\"`)")));
        }
        let version = field("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(Error::model(
                path,
                format!(
                    "format_version {version:?} is not supported (this build reads version {FORMAT_VERSION}); retrain it"
                ),
            ));
        }
        let router = field("router").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let candidates: Vec<String> = field("candidates")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or_else(|| Error::model(path, "missing or malformed `candidates` list"))?;
        let text = |k: &str| field(k).and_then(|v| v.as_str()).map(str::to_owned);
        let calibration = match field("calibration") {
            None | Some(serde_json::Value::Null) => None,
            Some(c) => Some(
                serde_json::from_value(c.clone())
                    .map_err(|e| Error::model(path, format!("malformed `calibration`: {e}")))?,
            ),
        };
        Ok(ModelFile {
            path: path.to_path_buf(),
            router,
            candidates,
            created_by: text("created_by"),
            training_hash: text("training_hash"),
            calibration,
            document,
        })
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the file was written by `router` for exactly `candidates`.
    pub fn check(&self, router: &str, candidates: &[&str]) -> Result<()> {
        let path = &self.path;
        if self.router != router {
            return Err(Error::model(
                path,
                format!("this model was trained by router `{}`, not `{router}`", self.router),
            ));
        }
        if self.candidates.iter().map(String::as_str).ne(candidates.iter().copied()) {
            let missing: Vec<&str> =
                candidates.iter().copied().filter(|c| !self.candidates.iter().any(|s| s == c)).collect();
            let extra: Vec<&str> =
                self.candidates.iter().map(String::as_str).filter(|s| !candidates.contains(s)).collect();
            return Err(Error::model(
                path,
                format!(
                    "trained for other candidate models (not in the model: [{}]; only in the model: [{}]); \
                     retrain with the current llm_data",
                    crate::names::list_capped(&missing, 12),
                    crate::names::list_capped(&extra, 12)
                ),
            ));
        }
        Ok(())
    }

    /// The router's payload, after [`ModelFile::check`] of `router` and `candidates`.
    pub fn payload<T: DeserializeOwned>(&self, router: &str, candidates: &[&str]) -> Result<T> {
        self.check(router, candidates)?;
        let model = self.document.get("model").ok_or_else(|| Error::model(&self.path, "missing `model`"))?;
        T::deserialize(model)
            .map_err(|e| Error::model(&self.path, format!("model payload does not match router `{router}`: {e}")))
    }

    /// Stores `calibration` in the file (atomically), replacing any earlier one.
    pub fn write_calibration(&mut self, calibration: &Calibration) -> Result<()> {
        let value = serde_json::to_value(calibration).map_err(|e| Error::model(&self.path, e.to_string()))?;
        self.document.insert("calibration".to_owned(), value);
        self.calibration = Some(calibration.clone());
        let out = serde_json::to_vec(&self.document)
            .map_err(|e| Error::model(&self.path, format!("cannot serialise: {e}")))?;
        write_atomic(&self.path, &out)
    }
}

/// Whether every value is a finite number (model checks: a hand-edited or damaged file can hold
/// NaN or infinity where training never writes one).
pub fn all_finite<'a>(values: impl IntoIterator<Item = &'a f32>) -> bool {
    values.into_iter().all(|v| v.is_finite())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and synced,
/// then renamed over `path`. Creates missing parent folders. On failure `path` is untouched.
///
/// The temporary file is `.NAME.PID.tmp`. A run killed mid-write leaves one behind; the next write
/// of the same target removes those of processes that are gone ([`remove_stale_temporaries`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    remove_stale_temporaries(dir, &file_name);
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

/// Removes the temporary files `.{file_name}.PID.tmp` in `dir` that [`write_atomic`] left when
/// killed: those whose process is gone (on Linux, no `/proc/PID`; elsewhere, untouched for an
/// hour). A live writer's file, and every other file, is left alone. Best effort: errors are
/// ignored, as the write itself does not depend on it.
pub fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{file_name}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let gone = if Path::new("/proc/self").exists() {
            !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600))
        };
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("llmrouter-core-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        dir.join(name)
    }

    fn load<T: DeserializeOwned>(p: &Path, router: &str, candidates: &[&str]) -> Result<T> {
        ModelFile::read(p)?.payload(router, candidates)
    }

    #[test]
    fn round_trip_and_refusals() {
        let p = tmp("m.json");
        save(&p, "r", &["a", "b"], None, &vec![1.5f32, 2.0]).expect("save");
        let back: Vec<f32> = load(&p, "r", &["a", "b"]).expect("load");
        assert_eq!(back, vec![1.5, 2.0]);
        assert_eq!(ModelFile::read(&p).expect("envelope").training_hash, None, "written without a config");
        let err = load::<Vec<f32>>(&p, "other", &["a", "b"]).expect_err("router");
        assert!(err.to_string().contains("trained by router `r`"), "{err}");
        let err = load::<Vec<f32>>(&p, "r", &["a", "c"]).expect_err("candidates");
        assert!(err.to_string().contains("[`c`]") && err.to_string().contains("[`b`]"), "{err}");
        let err = load::<String>(&p, "r", &["a", "b"]).expect_err("payload");
        assert!(err.to_string().contains("payload"), "{err}");
        std::fs::write(&p, b"{\"format\": \"llmrouter-mo").expect("write");
        let err = load::<Vec<f32>>(&p, "r", &["a", "b"]).expect_err("corrupt");
        assert!(err.to_string().contains("corrupted"), "{err}");
        std::fs::write(&p, b"[1, 2]").expect("write");
        let err = load::<Vec<f32>>(&p, "r", &["a", "b"]).expect_err("not an object");
        assert!(err.to_string().contains("not an llmrouter model file"), "{err}");
    }

    #[test]
    fn calibration_is_stored_and_read_back() {
        let p = tmp("calibrated.json");
        save(&p, "r", &["a"], Some("h".into()), &1u32).expect("save");
        let mut file = ModelFile::read(&p).expect("read");
        let c = Calibration {
            cost_weight: 0.25,
            mix: None,
            performance_weight: 1.0,
            budget: Budget::MaxCostPerQuery { usd: 1e-5 },
            validation_queries: 10,
            validation_mean_score: 0.5,
            validation_mean_cost: 9e-6,
            validation_value: 9e-6,
        };
        file.write_calibration(&c).expect("write");
        let back = ModelFile::read(&p).expect("reread");
        assert_eq!(back.calibration, Some(c));
        assert_eq!(back.training_hash.as_deref(), Some("h"));
        assert_eq!(back.payload::<u32>("r", &["a"]).expect("payload"), 1);
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

    #[cfg(unix)]
    #[test]
    fn a_killed_writers_temporary_file_is_removed_by_the_next_write() {
        let p = tmp("stale/model.json");
        let dir = p.parent().expect("dir").to_path_buf();
        std::fs::create_dir_all(&dir).expect("dir");
        // A process id that is not running: a child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let dead = child.id();
        child.wait().expect("wait");
        let stale = dir.join(format!(".model.json.{dead}.tmp"));
        std::fs::write(&stale, b"half a model").expect("stale");
        // A live writer's file (this test's parent, which runs), another target's, and a user's file stay.
        let live = dir.join(format!(".model.json.{}.tmp", std::os::unix::process::parent_id()));
        std::fs::write(&live, b"being written").expect("live");
        let other = dir.join(format!(".other.json.{dead}.tmp"));
        std::fs::write(&other, b"another target").expect("other");
        let users = dir.join(".model.json.notes.tmp");
        std::fs::write(&users, b"mine").expect("users");
        write_atomic(&p, b"model").expect("write");
        assert!(!stale.exists(), "the dead writer's temporary file is removed");
        for kept in [&live, &other, &users] {
            assert!(kept.exists(), "{} is kept", kept.display());
        }
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
