//! The candidate models of `data_path.llm_data`: LLMRouter's `default_llm.json` (an object keyed
//! by model name) or the `../shared/data` `*_models.json` wrapper, loaded into [`Candidates`],
//! sorted by name.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// One candidate model, from `llm_data`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// The key in `llm_data`; what routers return as `model_name`.
    pub name: String,
    /// The API model id (`model`, or `api_model`); defaults to `name`.
    pub model: String,
    /// The size as written (`"7B"`, `"8x7B"`), if given.
    pub size: Option<String>,
    /// The size in billions of parameters, parsed from `size`.
    pub size_billions: Option<f64>,
    /// USD per 1M input tokens (0 when unknown).
    pub input_price: f64,
    /// USD per 1M output tokens (0 when unknown).
    pub output_price: f64,
    /// The provider name used to pick an API key from `API_KEYS`.
    pub service: Option<String>,
    /// The candidate's own OpenAI-compatible base URL.
    pub api_endpoint: Option<String>,
    /// The environment variable holding this candidate's API key.
    pub api_key_env: Option<String>,
    /// Free-text description of the model.
    pub feature: Option<String>,
}

impl Candidate {
    /// Input plus output price per 1M tokens: the ordering key for "cheapest" and "most expensive".
    pub fn price(&self) -> f64 {
        self.input_price + self.output_price
    }
}

#[derive(Debug, Deserialize)]
struct RawCandidate {
    #[serde(default, alias = "api_model")]
    model: Option<String>,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default, alias = "input_price_per_mtok")]
    input_price: Option<f64>,
    #[serde(default, alias = "output_price_per_mtok")]
    output_price: Option<f64>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    api_endpoint: Option<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    feature: Option<String>,
}

/// The candidate models, sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    list: Vec<Candidate>,
    source: PathBuf,
}

impl Candidates {
    /// Loads `llm_data`: a JSON object keyed by model name (LLMRouter's `default_llm.json`), or
    /// the `{"models": {...}}` files of `../shared/data` (`input_price_per_mtok`, `api_model`).
    pub fn load(path: &Path) -> Result<Candidates> {
        let text = Error::read_text("read llm_data file", path)?;
        Candidates::from_json_str(&text, path)
    }

    /// Parses `llm_data` text as if read from `path`.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Candidates> {
        let data_err = |message: String| Error::Data { path: path.to_owned(), message };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::DataLine {
            path: path.to_owned(),
            line: e.line(),
            message: format!("invalid JSON: {e}"),
        })?;
        let serde_json::Value::Object(mut top) = value else {
            return Err(data_err("expected a JSON object keyed by model name".into()));
        };
        // serde_json keeps the last of two equal keys; a candidate given twice is a mistake to show.
        serde_json::from_str::<UniqueKeys>(text).map_err(|e| Error::DataLine {
            path: path.to_owned(),
            line: e.line(),
            message: e.to_string(),
        })?;
        // The wrapper format: {"source": "...", "models": {name: {...}}}.
        let wrapped = matches!(top.get("models"), Some(serde_json::Value::Object(_)))
            && top.iter().all(|(k, v)| k == "models" || !v.is_object());
        if wrapped {
            if let Some(serde_json::Value::Object(models)) = top.remove("models") {
                top = models;
            }
        }
        if top.is_empty() {
            return Err(data_err("no candidate models: the object is empty".into()));
        }
        let mut list = Vec::with_capacity(top.len());
        for (name, entry) in top {
            let raw: RawCandidate =
                serde_json::from_value(entry).map_err(|e| data_err(format!("model `{name}`: {e}")))?;
            let size = match raw.size {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(format!("{n}B")),
                Some(other) => {
                    return Err(data_err(format!(
                        "model `{name}`: `size` must be a string like \"7B\", found {other}"
                    )));
                }
            };
            let size_billions = match &size {
                None => None,
                Some(s) => Some(parse_size_billions(s).ok_or_else(|| {
                    data_err(format!(
                        "model `{name}`: cannot parse size {s:?} (expected e.g. \"7B\", \"8x7B\", \"350M\", \"1.5T\")"
                    ))
                })?),
            };
            let input_price = raw.input_price.or(raw.cost).unwrap_or(0.0);
            let output_price = raw.output_price.or(raw.cost).unwrap_or(0.0);
            for (key, v) in [("input_price", input_price), ("output_price", output_price)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(data_err(format!("model `{name}`: `{key}` must be a non-negative number, found {v}")));
                }
            }
            list.push(Candidate {
                model: raw.model.filter(|m| !m.is_empty()).unwrap_or_else(|| name.clone()),
                name,
                size,
                size_billions,
                input_price,
                output_price,
                service: raw.service,
                api_endpoint: raw.api_endpoint.filter(|e| !e.is_empty()),
                api_key_env: raw.api_key_env,
                feature: raw.feature,
            });
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Candidates { list, source: path.to_owned() })
    }

    /// All candidates, sorted by name.
    pub fn all(&self) -> &[Candidate] {
        &self.list
    }

    /// Candidate names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|c| c.name.as_str()).collect()
    }

    /// Number of candidates (never zero).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always false: loading rejects an empty candidate list.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Index of the candidate called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.list.binary_search_by(|c| c.name.as_str().cmp(name)).ok()
    }

    /// The candidate called `name`.
    pub fn get(&self, name: &str) -> Option<&Candidate> {
        self.index_of(name).map(|i| &self.list[i])
    }

    /// Candidate indices from smallest to largest: by parsed `size` when every candidate has
    /// one, otherwise by price (input plus output per 1M tokens); ties by price, then name.
    pub fn by_size(&self) -> Vec<usize> {
        let all_sized = self.list.iter().all(|c| c.size_billions.is_some());
        let mut order: Vec<usize> = (0..self.list.len()).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (&self.list[a], &self.list[b]);
            let size = if all_sized {
                ca.size_billions.unwrap_or(0.0).total_cmp(&cb.size_billions.unwrap_or(0.0))
            } else {
                std::cmp::Ordering::Equal
            };
            size.then(ca.price().total_cmp(&cb.price())).then(ca.name.cmp(&cb.name))
        });
        order
    }

    /// Candidate indices from cheapest to most expensive (input plus output price); ties by size
    /// when known, then name.
    pub fn by_price(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.list.len()).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (&self.list[a], &self.list[b]);
            let size = |c: &Candidate| c.size_billions.unwrap_or(0.0);
            ca.price().total_cmp(&cb.price()).then(size(ca).total_cmp(&size(cb))).then(ca.name.cmp(&cb.name))
        });
        order
    }

    /// The file the candidates came from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// Parses `"7B"`, `"8x7B"`, `"350M"`, `"1.5T"`, `"70"` into billions of parameters.
pub fn parse_size_billions(size: &str) -> Option<f64> {
    let s = size.trim().to_ascii_lowercase();
    let (count, rest) = match s.split_once('x') {
        Some((n, rest)) => (n.trim().parse::<f64>().ok()?, rest.trim().to_owned()),
        None => (1.0, s.clone()),
    };
    let (number, scale) = if let Some(n) = rest.strip_suffix('t') {
        (n, 1000.0)
    } else if let Some(n) = rest.strip_suffix('b') {
        (n, 1.0)
    } else if let Some(n) = rest.strip_suffix('m') {
        (n, 1e-3)
    } else {
        (rest.as_str(), 1.0)
    };
    let v = number.trim().parse::<f64>().ok()? * count * scale;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Deserialising this from a JSON document fails on an object, at any depth, that holds a key
/// twice, naming the key (serde_json's error adds the line).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "`{key}` is given twice in one object (JSON keeps only the last); keep one"
                )));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size_billions("7B"), Some(7.0));
        assert_eq!(parse_size_billions("8x7B"), Some(56.0));
        assert!(parse_size_billions("350M").is_some_and(|v| (v - 0.35).abs() < 1e-12));
        assert_eq!(parse_size_billions("1.5T"), Some(1500.0));
        assert_eq!(parse_size_billions("big"), None);
    }

    #[test]
    fn candidates_accept_both_formats() {
        let a = Candidates::from_json_str(
            r#"{"b": {"size": "7B", "input_price": 0.2, "output_price": 0.4, "model": "org/b"}, "a": {"cost": 1.0}}"#,
            Path::new("llm.json"),
        )
        .expect("llmrouter format");
        assert_eq!(a.names(), vec!["a", "b"]);
        assert_eq!(a.get("a").map(|c| (c.input_price, c.output_price, c.model.as_str())), Some((1.0, 1.0, "a")));
        let b = Candidates::from_json_str(
            r#"{"source": "x", "models": {"b": {"input_price_per_mtok": 0.2, "output_price_per_mtok": 0.4, "size": "7B", "api_model": "org/b"}}}"#,
            Path::new("m.json"),
        )
        .expect("wrapped format");
        assert_eq!(b.get("b"), a.get("b"));
    }

    #[test]
    fn a_candidate_given_twice_is_refused_naming_it_and_its_line() {
        let text = "{\n  \"a\": {\"cost\": 1},\n  \"b\": {\"cost\": 2},\n  \"a\": {\"cost\": 3}\n}\n";
        let err = Candidates::from_json_str(text, Path::new("llm.json")).expect_err("twice").to_string();
        assert!(err.starts_with("llm.json:4:") && err.contains("`a` is given twice"), "{err}");
        let wrapped = r#"{"models": {"a": {"cost": 1}, "a": {"cost": 1}}}"#;
        let err = Candidates::from_json_str(wrapped, Path::new("m.json")).expect_err("twice").to_string();
        assert!(err.contains("`a` is given twice"), "{err}");
    }

    #[test]
    fn size_and_price_orders() {
        let c = Candidates::from_json_str(
            r#"{"big": {"size": "70B", "cost": 0.9}, "mid": {"size": "8x7B", "cost": 0.6}, "small": {"size": "7B", "cost": 0.6}}"#,
            Path::new("llm.json"),
        )
        .expect("valid");
        assert_eq!(c.by_size(), vec![2, 1, 0]);
        assert_eq!(c.by_price(), vec![2, 1, 0]);
        let unsized_ =
            Candidates::from_json_str(r#"{"a": {"cost": 2}, "b": {"size": "1B", "cost": 1}}"#, Path::new("l.json"))
                .expect("valid");
        assert_eq!(unsized_.by_size(), vec![1, 0], "falls back to price when a size is missing");
    }

    #[test]
    fn bad_candidate_names_model_and_key() {
        let err =
            Candidates::from_json_str(r#"{"m": {"input_price": "cheap"}}"#, Path::new("llm.json")).expect_err("bad");
        assert!(err.to_string().starts_with("llm.json: model `m`:"), "{err}");
        let err = Candidates::from_json_str(r#"{"m": {"size": "huge"}}"#, Path::new("llm.json")).expect_err("bad size");
        assert!(err.to_string().contains("huge"), "{err}");
    }
}
