//! The bad-input catalogue: every folder of `tests/bad_inputs/` is one wrong input that once went
//! through silently (or with a misleading message), run through the real binary.
//!
//! A case folder holds `case.json` and the files the command reads. The folder is copied to a
//! fresh temporary directory and the command runs there, so relative paths in its configs and
//! arguments name the copied files (and `{repo}` in an argument is the repository root). Fields
//! of `case.json`:
//!
//! - `class`: the class of wrong data, `why`: what used to happen;
//! - `setup`: commands (arguments after `llmrouter`) run first, each of which must succeed;
//! - `edit`: then JSON edits of a file the setup wrote (`{"file", "pointer", "value"}`: the value
//!   at that JSON pointer is replaced), as a hand edit or a damaged copy would change it;
//! - `args`: the arguments after `llmrouter`; `env`: extra environment variables;
//! - `exit`: the expected exit code; `stderr` / `stdout`: words each must contain;
//! - `stderr_lacks`: words that must not appear (a secret, a wrong cause);
//! - `unchanged`: files the command must leave byte for byte as they were.
//!
//! Every case also checks that nothing panicked. Add a case for every bug found.
//!
//! `LLMROUTER_BAD_INPUTS_BIN=/path/to/an/older/llmrouter cargo test -p llmrouter-cli --test
//! bad_inputs` runs the catalogue through another binary (setup included), to see which cases an
//! older build fails: each new case must fail on the build before its fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    class: String,
    why: String,
    #[serde(default)]
    setup: Vec<Vec<String>>,
    #[serde(default)]
    edit: Vec<Edit>,
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    exit: i32,
    #[serde(default)]
    stderr: Vec<String>,
    #[serde(default)]
    stdout: Vec<String>,
    #[serde(default)]
    stderr_lacks: Vec<String>,
    #[serde(default)]
    unchanged: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    file: String,
    pointer: String,
    value: serde_json::Value,
}

impl Edit {
    fn apply(&self, work: &Path) -> Result<(), String> {
        let path = work.join(&self.file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("edit {}: {e}", self.file))?;
        let mut doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("edit {}: {e}", self.file))?;
        let slot = doc.pointer_mut(&self.pointer).ok_or_else(|| format!("edit {}: no {}", self.file, self.pointer))?;
        *slot = self.value.clone();
        std::fs::write(&path, doc.to_string()).map_err(|e| format!("edit {}: {e}", self.file))
    }
}

/// The binary under test: this build's, or `LLMROUTER_BAD_INPUTS_BIN`.
fn binary() -> PathBuf {
    std::env::var_os("LLMROUTER_BAD_INPUTS_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_llmrouter")), PathBuf::from)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the case directory");
    for entry in std::fs::read_dir(from).expect("read the case folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a case file");
        }
    }
}

/// Runs one case; returns what went wrong, if anything.
fn run_case(name: &str, folder: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(folder.join("case.json")).map_err(|e| format!("case.json: {e}"))?;
    let case: Case = serde_json::from_str(&text).map_err(|e| format!("case.json: {e}"))?;
    let work = std::env::temp_dir().join(format!("llmrouter-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    copy_dir(folder, &work);
    for step in &case.setup {
        let out =
            Command::new(binary()).args(step).current_dir(&work).output().map_err(|e| format!("running setup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "setup `llmrouter {}` failed:\n{}",
                step.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    for edit in &case.edit {
        edit.apply(&work)?;
    }
    let before: Vec<(String, Vec<u8>)> =
        case.unchanged.iter().map(|f| (f.clone(), std::fs::read(work.join(f)).unwrap_or_default())).collect();
    let root = repo_root();
    let args: Vec<String> = case.args.iter().map(|a| a.replace("{repo}", &root.display().to_string())).collect();
    let out = Command::new(binary())
        .args(&args)
        .current_dir(&work)
        .envs(&case.env)
        .env_remove("API_KEYS")
        .output()
        .map_err(|e| format!("running llmrouter: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(case.exit) {
        problems.push(format!("exit {:?}, expected {}", out.status.code(), case.exit));
    }
    for word in &case.stderr {
        if !stderr.contains(word.as_str()) {
            problems.push(format!("stderr lacks {word:?}"));
        }
    }
    for word in &case.stdout {
        if !stdout.contains(word.as_str()) {
            problems.push(format!("stdout lacks {word:?}"));
        }
    }
    for word in &case.stderr_lacks {
        if stderr.contains(word.as_str()) || stdout.contains(word.as_str()) {
            problems.push(format!("the output shows {word:?}"));
        }
    }
    if stderr.contains("panicked") {
        problems.push("it panicked".to_owned());
    }
    for (file, bytes) in before {
        if std::fs::read(work.join(&file)).unwrap_or_default() != bytes {
            problems.push(format!("{file} was changed"));
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "[{}] {}\n  llmrouter {}\n  {}\n  --- stdout:\n{stdout}\n  --- stderr:\n{stderr}",
            case.class,
            case.why,
            args.join(" "),
            problems.join("\n  ")
        ))
    }
}

#[test]
fn every_bad_input_of_the_catalogue_is_refused_or_flagged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/bad_inputs")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases in {}", dir.display());
    let failures: Vec<String> =
        names.iter().filter_map(|name| run_case(name, &dir.join(name)).err().map(|e| format!("{name}: {e}"))).collect();
    let failed: Vec<&str> = failures.iter().filter_map(|f| f.split(':').next()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed ({}):\n\n{}",
        failures.len(),
        names.len(),
        failed.join(", "),
        failures.join("\n\n")
    );
    eprintln!("{} bad-input cases held", names.len());
}
