//! Router configuration: LLMRouter's YAML keys, parsed strictly, with paths resolved on demand.
//!
//! The raw serde types here mirror the file; [`Config`] is the validated view routers use. Every
//! router owns a typed `hparam` struct and reads it with [`Config::hparams`], so an unknown or
//! mistyped hyper-parameter is an error that names the file, line and key.
//!
//! Relative paths resolve against the working directory first, then against the folder of the
//! config file; when neither exists the error lists both.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    data_path: RawDataPath,
    /// Parsed per router by [`Config::hparams`]; kept here so that the key is known.
    #[serde(default)]
    #[allow(dead_code)]
    hparam: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    model_path: RawModelPath,
    #[serde(default)]
    metric: RawMetric,
    #[serde(default)]
    api_endpoint: Option<String>,
    #[serde(default)]
    embedding: Option<serde_yaml_ng::Value>,
    /// `llmrouter serve`'s settings, read by the CLI with [`Config::section`]; kept here so that
    /// the key is known.
    #[serde(default)]
    #[allow(dead_code)]
    serve: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataPath {
    llm_data: Option<String>,
    query_data_train: Option<String>,
    query_data_test: Option<String>,
    routing_data_train: Option<String>,
    routing_data_test: Option<String>,
    /// LLMRouter's precomputed Longformer embeddings: accepted so that its configs load, not used
    /// (routers here compute their own query features).
    query_embedding_data: Option<String>,
    /// LLMRouter's precomputed model-description embeddings: accepted, not used.
    llm_embedding_data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelPath {
    save_model_path: Option<String>,
    load_model_path: Option<String>,
    /// LLMRouter's warm-start path: accepted, not used.
    ini_model_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    #[serde(default)]
    weights: MetricWeights,
    /// Output tokens assumed per answer when estimating a query's cost from list prices.
    #[serde(default)]
    expected_output_tokens: Option<f64>,
}

/// `metric.weights`: how a decision trades quality against cost.
///
/// Unlike Python LLMRouter, these are used: routers that predict per-model quality pick the model
/// maximising `performance * score - cost * normalised_cost`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricWeights {
    /// Weight of predicted quality (default 1).
    pub performance: f64,
    /// Weight of normalised cost (default 0: quality only).
    pub cost: f64,
    /// Weight of an LLM-judge score (default 0; reserved, as in LLMRouter).
    pub llm_judge: f64,
    /// A second cost weight for a fixed share of queries; set by a calibration, never by a config.
    #[serde(skip)]
    pub cost_mix: Option<CostMix>,
}

impl Default for MetricWeights {
    fn default() -> Self {
        MetricWeights { performance: 1.0, cost: 0.0, llm_judge: 0.0, cost_mix: None }
    }
}

/// A second cost weight applied to a fixed share of queries, chosen by a hash of the query text
/// (the same text always gets the same weight): how a calibrated router meets a budget that lies
/// between what two neighbouring cost weights spend (see `llmrouter_core::eval::calibrate`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
pub struct CostMix {
    /// The other cost weight.
    pub cost_weight: f64,
    /// Share of queries (0 to 1) decided with it.
    pub share: f64,
}

impl MetricWeights {
    /// The weights that decide `query`: `cost_mix`'s cost weight for its share of queries, else
    /// `cost`; the result has no mix.
    pub fn for_query(self, query: &str) -> MetricWeights {
        let plain = MetricWeights { cost_mix: None, ..self };
        match self.cost_mix {
            Some(mix) if unit_hash(query) < mix.share => MetricWeights { cost: mix.cost_weight, ..plain },
            _ => plain,
        }
    }
}

/// A number in [0, 1) fixed by `text`, the same on every platform: FNV-1a, then the 64-bit
/// finaliser of MurmurHash3 so that texts differing only near their end (prompt templates) still
/// spread evenly.
pub fn unit_hash(text: &str) -> f64 {
    let mut z = crate::rng::fnv1a64(text.as_bytes());
    z ^= z >> 33;
    z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    z = z.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^= z >> 33;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The data files a config can name, by their `data_path.*` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKey {
    /// `data_path.llm_data`: the candidate models.
    LlmData,
    /// `data_path.query_data_train`.
    QueryDataTrain,
    /// `data_path.query_data_test`.
    QueryDataTest,
    /// `data_path.routing_data_train`.
    RoutingDataTrain,
    /// `data_path.routing_data_test`.
    RoutingDataTest,
}

impl DataKey {
    /// The dotted key as written in the YAML file.
    pub fn key(self) -> &'static str {
        match self {
            DataKey::LlmData => "data_path.llm_data",
            DataKey::QueryDataTrain => "data_path.query_data_train",
            DataKey::QueryDataTest => "data_path.query_data_test",
            DataKey::RoutingDataTrain => "data_path.routing_data_train",
            DataKey::RoutingDataTest => "data_path.routing_data_test",
        }
    }
}

/// A loaded, validated router config.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    text: String,
    data_path: RawDataPathValues,
    save_model_path: Option<String>,
    load_model_path: Option<String>,
    /// `metric.weights`.
    pub metric: MetricWeights,
    /// `metric.expected_output_tokens`: output tokens assumed per answer when a query's cost is
    /// estimated from list prices (default 256).
    pub expected_output_tokens: f64,
    /// `api_endpoint`: the default OpenAI-compatible base URL for candidates without their own.
    pub api_endpoint: Option<String>,
    /// `embedding`: the embedder section (interpreted by routers that embed queries).
    pub embedding: Option<serde_yaml_ng::Value>,
    /// Keys that were accepted for compatibility with Python LLMRouter but have no effect here.
    pub ignored_keys: Vec<&'static str>,
}

#[derive(Debug, Clone, Default)]
struct RawDataPathValues {
    llm_data: Option<String>,
    query_data_train: Option<String>,
    query_data_test: Option<String>,
    routing_data_train: Option<String>,
    routing_data_test: Option<String>,
}

/// Empty strings (LLMRouter writes `api_endpoint: ''`) mean "not set".
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads and validates the YAML file at `path` (relative to the working directory).
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let given = path.as_ref();
        let abs = absolutize(given);
        if abs.is_dir() {
            return Err(Error::Config {
                path: abs,
                line: None,
                column: None,
                message: "is a directory, not a YAML config file".into(),
            });
        }
        if !abs.is_file() {
            return Err(Error::ConfigNotFound { given: given.display().to_string(), tried: abs });
        }
        let text = Error::read_text("read config file", &abs)?;
        Config::from_yaml_str(&text, abs)
    }

    /// Parses config text as if it had been read from `path` (used for error messages and for
    /// resolving relative paths).
    pub fn from_yaml_str(text: &str, path: impl Into<PathBuf>) -> Result<Config> {
        let path = path.into();
        let raw: RawConfig = if text.trim().is_empty() { RawConfig::default() } else { parse_yaml(text, &path)? };
        let metric = raw.metric.weights;
        for (key, value) in [
            ("metric.weights.performance", metric.performance),
            ("metric.weights.cost", metric.cost),
            ("metric.weights.llm_judge", metric.llm_judge),
        ] {
            // Beyond a million, a weight times a normalised cost can no longer be told from
            // infinity in the utilities' sums.
            if !value.is_finite() || !(0.0..=1e6).contains(&value) {
                return Err(Error::Config {
                    path,
                    line: None,
                    column: None,
                    message: format!("key `{key}`: expected a number from 0 to 1000000, found {value}"),
                });
            }
        }
        let expected_output_tokens = raw.metric.expected_output_tokens.unwrap_or(256.0);
        if !expected_output_tokens.is_finite() || expected_output_tokens < 0.0 {
            return Err(Error::Config {
                path,
                line: None,
                column: None,
                message: format!(
                    "key `metric.expected_output_tokens`: expected a non-negative number, found {expected_output_tokens}"
                ),
            });
        }
        let mut ignored_keys = Vec::new();
        if non_empty(raw.data_path.query_embedding_data.clone()).is_some() {
            ignored_keys.push("data_path.query_embedding_data");
        }
        if non_empty(raw.data_path.llm_embedding_data.clone()).is_some() {
            ignored_keys.push("data_path.llm_embedding_data");
        }
        if non_empty(raw.model_path.ini_model_path.clone()).is_some() {
            ignored_keys.push("model_path.ini_model_path");
        }
        let d = raw.data_path;
        Ok(Config {
            path,
            text: text.to_owned(),
            data_path: RawDataPathValues {
                llm_data: non_empty(d.llm_data),
                query_data_train: non_empty(d.query_data_train),
                query_data_test: non_empty(d.query_data_test),
                routing_data_train: non_empty(d.routing_data_train),
                routing_data_test: non_empty(d.routing_data_test),
            },
            save_model_path: non_empty(raw.model_path.save_model_path),
            load_model_path: non_empty(raw.model_path.load_model_path),
            metric,
            expected_output_tokens,
            api_endpoint: non_empty(raw.api_endpoint),
            embedding: raw.embedding,
            ignored_keys,
        })
    }

    /// The same config with `model_path.save_model_path` and `load_model_path` set to `path`
    /// (for tests and evaluations that must not touch the configured model files).
    pub fn with_model_path(mut self, path: &Path) -> Config {
        let p = path.display().to_string();
        self.save_model_path = Some(p.clone());
        self.load_model_path = Some(p);
        self
    }

    /// The absolute path of the config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder holding the config file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    /// Deserializes the `hparam` section into a router's typed struct. Absent or null `hparam`
    /// gives `T::default()`. Errors name the file, line and key (`hparam.threshold`).
    pub fn hparams<T: DeserializeOwned + Default>(&self) -> Result<T> {
        self.section("hparam")
    }

    /// Deserializes the top-level section `key` (`hparam`, `embedding`, ...) into `T`, with the
    /// same error reporting as [`Config::hparams`]; absent or null gives `T::default()`.
    pub fn section<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T> {
        if self.text.trim().is_empty() {
            return Ok(T::default());
        }
        let de = serde_yaml_ng::Deserializer::from_str(&self.text);
        let mut track = serde_path_to_error::Track::new();
        let seed = Section::<T> { key, marker: std::marker::PhantomData };
        match serde::de::DeserializeSeed::deserialize(seed, serde_path_to_error::Deserializer::new(de, &mut track)) {
            Ok(value) => Ok(value.unwrap_or_default()),
            Err(inner) => Err(yaml_error(&self.path, serde_path_to_error::Error::new(track.path(), inner))),
        }
    }

    /// A fingerprint of what training depends on: the `hparam` and `embedding` sections (FNV-1a
    /// of their canonical JSON, 16 hex digits). Stored in model files, so that using a model with
    /// a config whose training settings changed since can be reported.
    pub fn training_hash(&self) -> Result<String> {
        let hparam: serde_json::Value = self.section("hparam")?;
        let embedding: serde_json::Value = self.section("embedding")?;
        let canonical = serde_json::json!({ "hparam": hparam, "embedding": embedding }).to_string();
        Ok(format!("{:016x}", crate::rng::fnv1a64(canonical.as_bytes())))
    }

    /// Where to write something named by config `key` (an output folder or file): relative to the
    /// working directory.
    pub fn resolve_output(&self, _key: &str, value: &str) -> PathBuf {
        absolutize(&expand_home(value))
    }

    /// An error about `key` of this config (for router-level validation of `hparam` values).
    pub fn key_error(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::Config {
            path: self.path.clone(),
            line: self.line_of_key(key),
            column: None,
            message: format!("key `{key}`: {message}"),
        }
    }

    /// The raw value of a `data_path.*` key, if set.
    pub fn data_path_value(&self, key: DataKey) -> Option<&str> {
        let d = &self.data_path;
        match key {
            DataKey::LlmData => d.llm_data.as_deref(),
            DataKey::QueryDataTrain => d.query_data_train.as_deref(),
            DataKey::QueryDataTest => d.query_data_test.as_deref(),
            DataKey::RoutingDataTrain => d.routing_data_train.as_deref(),
            DataKey::RoutingDataTest => d.routing_data_test.as_deref(),
        }
    }

    /// Resolves a `data_path.*` file: it must be set and exist.
    pub fn data_file(&self, key: DataKey, why: &str) -> Result<PathBuf> {
        let value = self.data_path_value(key).ok_or_else(|| Error::MissingKey {
            config: self.path.clone(),
            key: key.key().to_owned(),
            why: why.to_owned(),
        })?;
        self.resolve_existing(key.key(), value)
    }

    /// Where `train` writes the model for `router`: `model_path.save_model_path`, relative to
    /// the working directory, with `{router}` replaced by the router name (so one config can
    /// serve several routers). Its folder is created when writing.
    pub fn save_model_path_for(&self, router: &str) -> Result<PathBuf> {
        Ok(PathBuf::from(self.save_model_path()?.to_string_lossy().replace("{router}", router)))
    }

    /// `model_path.save_model_path` as written (relative to the working directory), with any
    /// `{router}` placeholder left in place; see [`Config::save_model_path_for`].
    pub fn save_model_path(&self) -> Result<PathBuf> {
        let value = self.save_model_path.as_deref().ok_or_else(|| Error::MissingKey {
            config: self.path.clone(),
            key: "model_path.save_model_path".to_owned(),
            why: "training needs to know where to write the model".to_owned(),
        })?;
        Ok(absolutize(&expand_home(value)))
    }

    /// Where a trained router loads its model from: `model_path.load_model_path`, or
    /// `model_path.save_model_path` when no load path is given. The file must exist; the error
    /// names every path tried and the command that creates it.
    pub fn load_model_path(&self, router: &str) -> Result<PathBuf> {
        let (key, value) = match (&self.load_model_path, &self.save_model_path) {
            (Some(v), _) => ("model_path.load_model_path", v.replace("{router}", router)),
            (None, Some(v)) => ("model_path.save_model_path", v.replace("{router}", router)),
            (None, None) => {
                return Err(Error::MissingKey {
                    config: self.path.clone(),
                    key: "model_path.load_model_path".to_owned(),
                    why: format!("router `{router}` needs a trained model file"),
                });
            }
        };
        let tried = self.candidates_for(&value);
        if let Some(dir) = tried.iter().find(|p| p.is_dir()) {
            return Err(Error::Model {
                path: dir.clone(),
                message: format!(
                    "is a directory, not a model file (`{key}` in {} must name a file)",
                    self.path.display()
                ),
            });
        }
        match tried.iter().find(|p| p.is_file()) {
            Some(found) => Ok(found.clone()),
            None => Err(Error::Model {
                path: tried[0].clone(),
                message: format!(
                    "no trained model here (`{key}` in {}; tried {}). Train it first: \
                     llmrouter train --router {router} --config {}",
                    self.path.display(),
                    tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", then "),
                    self.path.display()
                ),
            }),
        }
    }

    /// Resolves `value` (from config `key`) to an existing path: as is when absolute, else against
    /// the working directory, then against the config file's folder.
    pub fn resolve_existing(&self, key: &str, value: &str) -> Result<PathBuf> {
        let tried = self.candidates_for(value);
        match tried.iter().find(|p| p.exists()) {
            Some(found) => Ok(found.clone()),
            None => Err(Error::PathNotFound {
                config: self.path.clone(),
                key: key.to_owned(),
                value: value.to_owned(),
                tried,
            }),
        }
    }

    fn candidates_for(&self, value: &str) -> Vec<PathBuf> {
        let p = expand_home(value);
        if p.is_absolute() {
            return vec![p];
        }
        let mut out = vec![absolutize(&p)];
        let beside = self.dir().join(&p);
        if !out.contains(&beside) {
            out.push(beside);
        }
        out
    }

    /// Best-effort 1-based line of a dotted key such as `hparam.small_model`.
    fn line_of_key(&self, key: &str) -> Option<usize> {
        let mut parts = key.split('.').peekable();
        let mut want = parts.next()?;
        let mut min_indent = 0usize;
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.starts_with('#') || indent < min_indent {
                continue;
            }
            let Some(rest) = trimmed.strip_prefix(want) else { continue };
            if rest.trim_start().starts_with(':') {
                match parts.next() {
                    None => return Some(i + 1),
                    Some(next) => {
                        want = next;
                        min_indent = indent + 1;
                    }
                }
            }
        }
        None
    }
}

/// Picks one top-level key out of a YAML mapping, ignoring the others.
struct Section<'a, T> {
    key: &'a str,
    marker: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for Section<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Section<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a mapping of config keys")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut out = None;
        while let Some(k) = map.next_key::<String>()? {
            if k == self.key {
                out = map.next_value::<Option<T>>()?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

fn parse_yaml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| yaml_error(path, err))
}

fn yaml_error(path: &Path, err: serde_path_to_error::Error<serde_yaml_ng::Error>) -> Error {
    {
        let key = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();
        // serde_yaml appends " at line L column C"; the location is already in the prefix.
        if let Some(pos) = message.rfind(" at line ") {
            message.truncate(pos);
        }
        // serde_path_to_error writes `?` for a key it never reached: a YAML syntax error.
        let message = if key.contains('?') {
            format!("invalid YAML: {message}")
        } else if key == "." || key.is_empty() {
            format!("invalid config: {message}")
        } else {
            format!("key `{key}`: {message}")
        };
        Error::Config {
            path: path.to_owned(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    }
}

/// `~/x` to `$HOME/x`.
fn expand_home(value: &str) -> PathBuf {
    if let Some(rest) = value.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(value)
}

/// Joins a relative path onto the working directory (without touching the file system).
pub fn absolutize(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_hash_follows_hparam_and_embedding_only() {
        let base = "hparam:\n  k: 5\nembedding:\n  dim: 64\nmetric:\n  weights:\n    cost: 0.1\n";
        let h = |text: &str| config(text).expect("config").training_hash().expect("hash");
        assert_eq!(h(base), h(&base.replace("cost: 0.1", "cost: 0.9")), "metric is not a training setting");
        assert_ne!(h(base), h(&base.replace("k: 5", "k: 6")));
        assert_ne!(h(base), h(&base.replace("dim: 64", "dim: 128")));
        assert_eq!(h(base).len(), 16);
    }

    #[test]
    fn cost_mix_splits_templated_queries_evenly() {
        // Prompts that share a template and differ in a few characters still split by share.
        let mix =
            MetricWeights { cost: 1.0, cost_mix: Some(CostMix { cost_weight: 0.5, share: 0.3 }), ..Default::default() };
        let texts: Vec<String> = (0..10_000).map(|i| format!("Question {i}: what is {}?\nAnswer:", i % 97)).collect();
        let mixed = texts.iter().filter(|t| mix.for_query(t).cost == 0.5).count();
        assert!((2_850..=3_150).contains(&mixed), "{mixed} of 10000");
        assert_eq!(mix.for_query("a").cost_mix, None);
        // The split is a function of the text: the same text always gets the same weight, whatever
        // else was asked before.
        let first: Vec<f64> = texts.iter().map(|t| mix.for_query(t).cost).collect();
        let again: Vec<f64> = texts.iter().rev().map(|t| mix.for_query(t).cost).rev().collect();
        assert_eq!(first, again);
    }

    fn config(text: &str) -> Result<Config> {
        Config::from_yaml_str(text, "/nowhere/config.yaml")
    }

    #[test]
    fn llmrouter_keys_load_and_empty_strings_mean_unset() {
        let c = config(
            "data_path:\n  llm_data: a.json\n  query_embedding_data: 'x.pt'\nmodel_path:\n  ini_model_path: ''\n  \
             save_model_path: m.json\nmetric:\n  weights:\n    performance: 1\n    cost: 0.5\n    llm_judge: 0\n\
             api_endpoint: ''\nhparam:\n  k: 3\n",
        )
        .expect("valid config");
        assert_eq!(c.data_path_value(DataKey::LlmData), Some("a.json"));
        assert_eq!(c.api_endpoint, None);
        assert_eq!(c.metric.cost, 0.5);
        assert_eq!(c.ignored_keys, vec!["data_path.query_embedding_data"]);
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let err = config("data_path:\n  llm_data: a.json\n  routing_dat: b.jsonl\n").expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.starts_with("/nowhere/config.yaml:3:"), "{msg}");
        assert!(msg.contains("data_path") && msg.contains("routing_dat"), "{msg}");
    }

    #[test]
    fn mistyped_weight_is_an_error_with_key() {
        let err = config("metric:\n  weights:\n    cost: cheap\n").expect_err("bad type");
        assert!(err.to_string().contains("metric.weights.cost"), "{err}");
        let err = config("metric:\n  weights:\n    cost: -1\n").expect_err("negative");
        assert!(err.to_string().contains("metric.weights.cost"), "{err}");
    }

    #[test]
    fn hparams_are_typed_per_router() {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields, default)]
        struct H {
            seed: u64,
        }
        let c = config("hparam:\n  seed: 9\n").expect("valid");
        assert_eq!(c.hparams::<H>().expect("typed"), H { seed: 9 });
        let c = config("hparam:\n  sed: 9\n").expect("valid at top level");
        let err = c.hparams::<H>().expect_err("unknown hparam");
        assert!(err.to_string().contains("hparam") && err.to_string().contains(":2:"), "{err}");
        assert_eq!(config("").expect("empty").hparams::<H>().expect("default"), H::default());
    }

    #[test]
    fn key_error_finds_the_line() {
        let c = config("hparam:\n  seed: 1\n  small_model: nope\n").expect("valid");
        let msg = c.key_error("hparam.small_model", "not a candidate").to_string();
        assert!(msg.starts_with("/nowhere/config.yaml:3: key `hparam.small_model`"), "{msg}");
    }

    #[test]
    fn missing_data_file_lists_every_path_tried() {
        let c = config("data_path:\n  llm_data: surely/not/here.json\n").expect("valid");
        let msg = c.data_file(DataKey::LlmData, "candidates").expect_err("missing").to_string();
        assert!(msg.contains("data_path.llm_data"), "{msg}");
        assert!(msg.contains("/nowhere/surely/not/here.json"), "{msg}");
        assert!(msg.contains(", then "), "{msg}");
    }
}
