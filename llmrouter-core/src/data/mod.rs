//! Data files: candidate models (`llm_data`), query files, and routing data.
//!
//! Routing data comes in three layouts, detected per line and loaded into one [`RoutingTable`]:
//!
//! - **wide** (the layout of `../shared/data`): one row per query with `scores` (and optionally
//!   `cost_est`) keyed by model;
//! - **long** (Python LLMRouter's): one row per (query, model) with `model_name`, `performance` and
//!   optionally `cost`, `input_tokens`, `output_tokens`; rows of one query are grouped by `id`, or
//!   by (`task_name`, `query`) when there is no id; repeated (query, model) rows are averaged;
//! - **best** : one row per query with `best_llm` and optionally its `performance` and `cost`.
//!
//! One file uses one layout; mixing them is an error naming the line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::query::QueryInput;

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
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read llm_data file", path, e))?;
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

/// One measured (query, model) result.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Quality of the model's answer (usually in [0, 1]).
    pub score: f64,
    /// USD spent on this query, when the data records it.
    pub cost: Option<f64>,
    /// Input tokens, when recorded.
    pub input_tokens: Option<f64>,
    /// Output tokens, when recorded.
    pub output_tokens: Option<f64>,
}

/// One query of a routing table.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingRow {
    /// The query's id, when the data has one.
    pub id: Option<String>,
    /// The query text.
    pub query: String,
    /// The task (`task` or `task_name`), when given.
    pub task: Option<String>,
    /// One entry per model of [`RoutingTable::models`]; `None` where nothing was measured.
    pub cells: Vec<Option<Cell>>,
    /// Index of the best model: the highest score (first in model order on ties), or `best_llm`.
    pub best: Option<usize>,
}

impl RoutingRow {
    /// Score of model `m`, if measured.
    pub fn score(&self, m: usize) -> Option<f64> {
        self.cells.get(m).and_then(|c| c.as_ref()).map(|c| c.score)
    }
}

/// Routing data of any layout: queries by models, with scores and costs.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingTable {
    /// Model names, sorted.
    pub models: Vec<String>,
    /// One row per query, in file order.
    pub rows: Vec<RoutingRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Wide,
    Long,
    Best,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Wide => "wide (`scores`)",
            Layout::Long => "long (`model_name` + `performance`)",
            Layout::Best => "best (`best_llm`)",
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Int(i64),
}

impl IdValue {
    fn into_string(self) -> String {
        match self {
            IdValue::Text(s) => s,
            IdValue::Int(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct WideLine {
    id: Option<IdValue>,
    query: String,
    #[serde(alias = "task_name")]
    task: Option<String>,
    scores: BTreeMap<String, f64>,
    #[serde(default, alias = "costs")]
    cost_est: Option<BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
struct LongLine {
    id: Option<IdValue>,
    query: String,
    #[serde(alias = "task")]
    task_name: Option<String>,
    model_name: String,
    performance: f64,
    cost: Option<f64>,
    input_tokens: Option<f64>,
    output_tokens: Option<f64>,
}

#[derive(Deserialize)]
struct BestLine {
    id: Option<IdValue>,
    query: String,
    #[serde(alias = "task_name")]
    task: Option<String>,
    best_llm: String,
    performance: Option<f64>,
    cost: Option<f64>,
}

/// A row being assembled: cells keyed by model name.
struct PendingRow {
    id: Option<String>,
    query: String,
    task: Option<String>,
    cells: BTreeMap<String, (Cell, u32)>,
    best: Option<String>,
}

impl RoutingTable {
    /// Loads a routing JSONL file in any of the three layouts.
    pub fn load(path: &Path) -> Result<RoutingTable> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read routing data file", path, e))?;
        RoutingTable::from_jsonl_str(&text, path)
    }

    /// Parses routing JSONL text as if read from `path`.
    pub fn from_jsonl_str(text: &str, path: &Path) -> Result<RoutingTable> {
        let mut layout: Option<(Layout, usize)> = None;
        let mut pending: Vec<PendingRow> = Vec::new();
        let mut long_index: HashMap<(Option<String>, Option<String>, String), usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let line_err = |message: String| Error::DataLine { path: path.to_owned(), line: lineno, message };
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| line_err(format!("invalid JSON: {e}")))?;
            let Some(obj) = value.as_object() else {
                return Err(line_err("expected a JSON object".into()));
            };
            let this = if obj.contains_key("scores") {
                Layout::Wide
            } else if obj.contains_key("model_name") {
                Layout::Long
            } else if obj.contains_key("best_llm") {
                Layout::Best
            } else {
                return Err(line_err(
                    "not a routing row: expected `scores` (wide layout), `model_name` + `performance` \
                     (long layout) or `best_llm` (best layout)"
                        .into(),
                ));
            };
            match layout {
                None => layout = Some((this, lineno)),
                Some((first, first_line)) if first != this => {
                    return Err(line_err(format!(
                        "this row is in the {} layout but line {first_line} is in the {} layout; one file holds one layout",
                        this.name(),
                        first.name()
                    )));
                }
                Some(_) => {}
            }
            let field_err = |e: serde_json::Error| line_err(format!("{} layout: {e}", this.name()));
            match this {
                Layout::Wide => {
                    let row: WideLine = serde_json::from_value(value).map_err(field_err)?;
                    let mut cells = BTreeMap::new();
                    for (model, score) in row.scores {
                        check_finite(score, &format!("scores.{model}")).map_err(&line_err)?;
                        let cost = row.cost_est.as_ref().and_then(|c| c.get(&model).copied());
                        if let Some(c) = cost {
                            check_finite(c, &format!("cost_est.{model}")).map_err(&line_err)?;
                        }
                        cells.insert(model, (Cell { score, cost, input_tokens: None, output_tokens: None }, 1));
                    }
                    if let Some(costs) = &row.cost_est {
                        if let Some(extra) = costs.keys().find(|m| !cells.contains_key(*m)) {
                            return Err(line_err(format!(
                                "`cost_est` names model `{extra}` that has no entry in `scores`"
                            )));
                        }
                    }
                    pending.push(PendingRow {
                        id: row.id.map(IdValue::into_string),
                        query: row.query,
                        task: row.task,
                        cells,
                        best: None,
                    });
                }
                Layout::Long => {
                    let row: LongLine = serde_json::from_value(value).map_err(field_err)?;
                    check_finite(row.performance, "performance").map_err(&line_err)?;
                    let id = row.id.map(IdValue::into_string);
                    let key = match &id {
                        Some(id) => (Some(id.clone()), None, String::new()),
                        None => (None, row.task_name.clone(), row.query.clone()),
                    };
                    let index = *long_index.entry(key).or_insert_with(|| {
                        pending.push(PendingRow {
                            id: id.clone(),
                            query: row.query.clone(),
                            task: row.task_name.clone(),
                            cells: BTreeMap::new(),
                            best: None,
                        });
                        pending.len() - 1
                    });
                    let cell = Cell {
                        score: row.performance,
                        cost: row.cost,
                        input_tokens: row.input_tokens,
                        output_tokens: row.output_tokens,
                    };
                    let entry = pending[index].cells.entry(row.model_name).or_insert((cell.clone(), 0));
                    if entry.1 > 0 {
                        // A repeated measurement: keep the running mean.
                        let n = f64::from(entry.1);
                        let mean = |old: f64, new: f64| (old * n + new) / (n + 1.0);
                        entry.0.score = mean(entry.0.score, cell.score);
                        entry.0.cost = entry.0.cost.zip(cell.cost).map(|(a, b)| mean(a, b));
                        entry.0.input_tokens = entry.0.input_tokens.zip(cell.input_tokens).map(|(a, b)| mean(a, b));
                        entry.0.output_tokens = entry.0.output_tokens.zip(cell.output_tokens).map(|(a, b)| mean(a, b));
                    }
                    entry.1 += 1;
                }
                Layout::Best => {
                    let row: BestLine = serde_json::from_value(value).map_err(field_err)?;
                    let mut cells = BTreeMap::new();
                    if let Some(score) = row.performance {
                        check_finite(score, "performance").map_err(&line_err)?;
                        cells.insert(
                            row.best_llm.clone(),
                            (Cell { score, cost: row.cost, input_tokens: None, output_tokens: None }, 1),
                        );
                    }
                    pending.push(PendingRow {
                        id: row.id.map(IdValue::into_string),
                        query: row.query,
                        task: row.task,
                        cells,
                        best: Some(row.best_llm),
                    });
                }
            }
        }
        if pending.is_empty() {
            return Err(Error::Data { path: path.to_owned(), message: "no routing rows: the file is empty".into() });
        }
        let mut models: BTreeSet<String> = BTreeSet::new();
        for row in &pending {
            models.extend(row.cells.keys().cloned());
            models.extend(row.best.iter().cloned());
        }
        let models: Vec<String> = models.into_iter().collect();
        let rows = pending
            .into_iter()
            .map(|p| {
                let cells: Vec<Option<Cell>> = models.iter().map(|m| p.cells.get(m).map(|(c, _)| c.clone())).collect();
                let best = match &p.best {
                    Some(name) => models.iter().position(|m| m == name),
                    None => argmax_first(&cells),
                };
                RoutingRow { id: p.id, query: p.query, task: p.task, cells, best }
            })
            .collect();
        Ok(RoutingTable { models, rows })
    }

    /// Index of `model` among [`RoutingTable::models`].
    pub fn model_index(&self, model: &str) -> Option<usize> {
        self.models.iter().position(|m| m == model)
    }

    /// The same table in the best layout's terms: per row only the best model's cell is kept.
    /// Loading a file converted to the best layout gives exactly this table.
    pub fn best_only(&self) -> RoutingTable {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let cells =
                    r.cells.iter().enumerate().map(|(i, c)| if Some(i) == r.best { c.clone() } else { None }).collect();
                RoutingRow { cells, ..r.clone() }
            })
            .collect();
        // Models that are never best disappear from a best-layout file.
        let keep: Vec<usize> =
            (0..self.models.len()).filter(|&m| self.rows.iter().any(|r| r.best == Some(m))).collect();
        let table = RoutingTable { models: self.models.clone(), rows };
        table.select_models(&keep)
    }

    /// The table restricted to the models at `indices` (sorted), rows unchanged otherwise.
    pub fn select_models(&self, indices: &[usize]) -> RoutingTable {
        let models = indices.iter().map(|&i| self.models[i].clone()).collect();
        let rows = self
            .rows
            .iter()
            .map(|r| RoutingRow {
                cells: indices.iter().map(|&i| r.cells[i].clone()).collect(),
                best: r.best.and_then(|b| indices.iter().position(|&i| i == b)),
                ..r.clone()
            })
            .collect();
        RoutingTable { models, rows }
    }
}

fn argmax_first(cells: &[Option<Cell>]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in cells.iter().enumerate() {
        if let Some(c) = c {
            if best.is_none_or(|(_, s)| c.score > s) {
                best = Some((i, c.score));
            }
        }
    }
    best.map(|(i, _)| i)
}

fn check_finite(v: f64, key: &str) -> std::result::Result<(), String> {
    if v.is_finite() { Ok(()) } else { Err(format!("`{key}` must be a finite number, found {v}")) }
}

/// Reads queries from a file by extension: `.txt` (one query a line, blank lines skipped),
/// `.json` (a list of strings or of objects with `query`), `.jsonl` (one object with `query`, or
/// one JSON string, a line). Objects keep their other fields (`id`, `embedding`, `task_name`, ...).
pub fn read_queries(path: &Path) -> Result<Vec<QueryInput>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read query file", path, e))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let line_err = |line: usize, message: String| Error::DataLine { path: path.to_owned(), line, message };
    let from_value = |value: serde_json::Value| -> std::result::Result<QueryInput, String> {
        match value {
            serde_json::Value::String(s) => Ok(QueryInput::new(s)),
            obj @ serde_json::Value::Object(_) => {
                serde_json::from_value(obj).map_err(|e| format!("invalid query object: {e}"))
            }
            other => Err(format!("expected a string or an object with `query`, found {other}")),
        }
    };
    let queries = match ext.as_str() {
        "txt" | "" => text.lines().filter(|l| !l.trim().is_empty()).map(|l| QueryInput::new(l.trim_end())).collect(),
        "json" => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| line_err(e.line(), format!("invalid JSON: {e}")))?;
            let serde_json::Value::Array(items) = value else {
                return Err(Error::Data { path: path.to_owned(), message: "expected a JSON list of queries".into() });
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    from_value(v).map_err(|m| Error::Data { path: path.to_owned(), message: format!("item {i}: {m}") })
                })
                .collect::<Result<Vec<_>>>()?
        }
        "jsonl" | "ndjson" => {
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| line_err(i + 1, format!("invalid JSON: {e}")))?;
                out.push(from_value(value).map_err(|m| line_err(i + 1, m))?);
            }
            out
        }
        other => {
            return Err(Error::Data {
                path: path.to_owned(),
                message: format!("unsupported query file extension `.{other}`; use .txt, .json or .jsonl"),
            });
        }
    };
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<RoutingTable> {
        RoutingTable::from_jsonl_str(text, Path::new("r.jsonl"))
    }

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

    #[test]
    fn long_rows_group_by_query_and_average_repeats() {
        let t = table(concat!(
            r#"{"task_name": "t", "query": "q1", "model_name": "b", "performance": 1.0, "cost": 2.0}"#,
            "\n",
            r#"{"task_name": "t", "query": "q1", "model_name": "a", "performance": 0.0}"#,
            "\n",
            r#"{"task_name": "t", "query": "q2", "model_name": "a", "performance": 0.5}"#,
            "\n",
            r#"{"task_name": "t", "query": "q1", "model_name": "b", "performance": 0.0, "cost": 4.0}"#,
            "\n",
        ))
        .expect("long layout");
        assert_eq!(t.models, vec!["a", "b"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].score(1), Some(0.5));
        assert_eq!(t.rows[0].cells[1].as_ref().and_then(|c| c.cost), Some(3.0));
        assert_eq!(t.rows[1].score(1), None);
        assert_eq!(t.rows[0].best, Some(1));
    }

    #[test]
    fn broken_line_is_named() {
        let err = table("{\"query\": \"q\", \"scores\": {\"a\": 1}}\n{\"query\": \"q2\", \"scores\": {\"a\": }\n")
            .expect_err("broken");
        assert!(err.to_string().starts_with("r.jsonl:2: invalid JSON"), "{err}");
        let err = table("{\"query\": \"q\", \"scores\": {\"a\": 1}}\n{\"query\": \"q\", \"best_llm\": \"a\"}\n")
            .expect_err("mixed");
        assert!(err.to_string().starts_with("r.jsonl:2:") && err.to_string().contains("line 1"), "{err}");
        let err = table("{\"query\": \"q\", \"scores\": {\"a\": \"high\"}}\n").expect_err("typed");
        assert!(err.to_string().starts_with("r.jsonl:1: wide"), "{err}");
    }

    #[test]
    fn ties_pick_the_first_model_in_name_order() {
        let t = table("{\"query\": \"q\", \"scores\": {\"b\": 1, \"a\": 1, \"c\": 0}}\n").expect("wide");
        assert_eq!(t.rows[0].best, Some(0));
    }
}
