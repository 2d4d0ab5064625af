//! Routing data in three layouts, detected per line and loaded into one [`RoutingTable`] (see the
//! [module docs of `data`](super)).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

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
    /// Estimated USD per model (from list prices).
    #[serde(default, alias = "costs")]
    cost_est: Option<BTreeMap<String, f64>>,
    /// Measured USD per model (RouterBench's `cost`).
    #[serde(default)]
    cost: Option<BTreeMap<String, f64>>,
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
        let text = Error::read_text("read routing data file", path)?;
        RoutingTable::from_jsonl_str(&text, path)
    }

    /// Parses routing JSONL text as if read from `path`.
    pub fn from_jsonl_str(text: &str, path: &Path) -> Result<RoutingTable> {
        let mut layout: Option<(Layout, usize)> = None;
        let mut pending: Vec<PendingRow> = Vec::new();
        let mut long_index: HashMap<(Option<String>, Option<String>, String), usize> = HashMap::new();
        // The line where each pending row of the long layout began.
        let mut long_lines: Vec<usize> = Vec::new();
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
            check_keys(obj, this).map_err(&line_err)?;
            if obj.get("query").and_then(serde_json::Value::as_str).is_some_and(|q| q.trim().is_empty()) {
                return Err(line_err(
                    "`query` is empty: each row needs the text of the query it measures (the routers learn from it)"
                        .into(),
                ));
            }
            let field_err = |e: serde_json::Error| line_err(format!("{} layout: {e}", this.name()));
            match this {
                Layout::Wide => {
                    let row: WideLine = serde_json::from_value(value).map_err(field_err)?;
                    let (cost_key, costs) = match (row.cost, row.cost_est) {
                        (Some(_), Some(_)) => {
                            return Err(line_err(
                                "both `cost` (measured USD) and `cost_est` (estimated USD) are given; keep one".into(),
                            ));
                        }
                        (Some(measured), None) => ("cost", Some(measured)),
                        (None, estimated) => ("cost_est", estimated),
                    };
                    let mut cells = BTreeMap::new();
                    for (model, score) in row.scores {
                        check_score(score, &format!("scores.{model}")).map_err(&line_err)?;
                        let cost = costs.as_ref().and_then(|c| c.get(&model).copied());
                        if let Some(c) = cost {
                            check_cost(c, &format!("{cost_key}.{model}")).map_err(&line_err)?;
                        }
                        cells.insert(model, (Cell { score, cost, input_tokens: None, output_tokens: None }, 1));
                    }
                    if let Some(costs) = &costs {
                        if let Some(extra) = costs.keys().find(|m| !cells.contains_key(*m)) {
                            return Err(line_err(format!(
                                "`{cost_key}` names model `{extra}` that has no entry in `scores`"
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
                    check_score(row.performance, "performance").map_err(&line_err)?;
                    for (key, v) in
                        [("cost", row.cost), ("input_tokens", row.input_tokens), ("output_tokens", row.output_tokens)]
                    {
                        if let Some(v) = v {
                            check_cost(v, key).map_err(&line_err)?;
                        }
                    }
                    let id = row.id.map(IdValue::into_string);
                    let key = match &id {
                        Some(id) => (Some(id.clone()), None, String::new()),
                        None => (None, row.task_name.clone(), row.query.clone()),
                    };
                    if let (Some(id), Some(&index)) = (&id, long_index.get(&key)) {
                        let (first_line, first) = (long_lines[index], &pending[index]);
                        if first.query != row.query {
                            return Err(line_err(format!(
                                "`id` {id:?} is also on line {first_line}, with another query; rows of one \
                                 query share an id, and different queries need different ids"
                            )));
                        }
                    }
                    let index = *long_index.entry(key).or_insert_with(|| {
                        long_lines.push(lineno);
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
                    if let Some(cost) = row.cost {
                        check_cost(cost, "cost").map_err(&line_err)?;
                    }
                    if let Some(score) = row.performance {
                        check_score(score, "performance").map_err(&line_err)?;
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

/// A score is a number in [0, 1].
fn check_score(v: f64, key: &str) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&v) { Ok(()) } else { Err(format!("`{key}` must be a score in [0, 1], found {v}")) }
}

/// A cost or a token count is a finite number, 0 or more.
fn check_cost(v: f64, key: &str) -> std::result::Result<(), String> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(format!("`{key}` must be a number >= 0, found {v}")) }
}

/// The keys each layout reads (`task` and `task_name` are aliases everywhere).
fn known_keys(layout: Layout) -> &'static [&'static str] {
    match layout {
        Layout::Wide => &["id", "query", "task", "task_name", "scores", "cost_est", "costs", "cost"],
        Layout::Long => {
            &["id", "query", "task", "task_name", "model_name", "performance", "cost", "input_tokens", "output_tokens"]
        }
        Layout::Best => &["id", "query", "task", "task_name", "best_llm", "performance", "cost"],
    }
}

/// Other keys pass (a row may carry `meta`, `prompt`, ...), but one that looks like a score or a
/// cost is refused: silently unread, it would leave figures computed from something else (list
/// prices, say) while the user believes their own numbers were used.
fn check_keys(row: &serde_json::Map<String, serde_json::Value>, layout: Layout) -> std::result::Result<(), String> {
    const LOOKS_LIKE: [&str; 9] = ["score", "cost", "price", "perf", "quality", "accuracy", "reward", "usd", "correct"];
    let known = known_keys(layout);
    let unread: Vec<&str> = row
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .filter(|k| {
            let k = k.to_ascii_lowercase();
            LOOKS_LIKE.iter().any(|w| k.contains(w))
        })
        .collect();
    match unread.as_slice() {
        [] => Ok(()),
        keys => Err(format!(
            "{} looks like a score or a cost, but the {} layout does not read it (it reads {}): rename or remove it",
            keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
            layout.name(),
            known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<RoutingTable> {
        RoutingTable::from_jsonl_str(text, Path::new("r.jsonl"))
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

    fn refused(text: &str, words: &[&str]) {
        let err = table(text).expect_err(text).to_string();
        assert!(err.starts_with("r.jsonl:"), "{err}");
        for w in words {
            assert!(err.contains(w), "`{w}` in: {err}");
        }
    }

    #[test]
    fn an_empty_query_is_refused_in_every_layout() {
        // Even with an id: a router learns from the text, and an empty one teaches it nothing.
        refused(r#"{"query": "", "best_llm": "a", "performance": 1}"#, &["r.jsonl:1:", "`query` is empty"]);
        refused(r#"{"id": 3, "query": " \n", "scores": {"a": 1}}"#, &["r.jsonl:1:", "`query` is empty"]);
        refused(r#"{"query": "", "model_name": "a", "performance": 1}"#, &["r.jsonl:1:", "`query` is empty"]);
        table("{\"query\": \"q\", \"best_llm\": \"a\"}\n\n").expect("a blank line is skipped");
    }

    #[test]
    fn scores_outside_0_1_and_negative_costs_are_refused() {
        refused(r#"{"query": "q", "scores": {"a": 1.5}}"#, &["r.jsonl:1:", "`scores.a`", "[0, 1]", "1.5"]);
        refused(r#"{"query": "q", "scores": {"a": -0.1}}"#, &["`scores.a`", "[0, 1]"]);
        refused(r#"{"query": "q", "model_name": "a", "performance": 2}"#, &["`performance`", "[0, 1]"]);
        refused(r#"{"query": "q", "best_llm": "a", "performance": 7}"#, &["`performance`", "[0, 1]"]);
        refused(r#"{"query": "q", "scores": {"a": 1}, "cost_est": {"a": -1}}"#, &["`cost_est.a`", ">= 0"]);
        refused(r#"{"query": "q", "model_name": "a", "performance": 1, "cost": -2}"#, &["`cost`", ">= 0"]);
        // JSON has no NaN: Python's `NaN` is refused as invalid JSON, naming the line.
        refused("{\"query\": \"q\", \"scores\": {\"a\": NaN}}", &["r.jsonl:1: invalid JSON"]);
    }

    #[test]
    fn a_measured_cost_object_is_read_and_unknown_cost_keys_are_refused() {
        let t = table(r#"{"query": "q", "scores": {"a": 1, "b": 0}, "cost": {"a": 0.5, "b": 0.25}}"#).expect("cost");
        assert_eq!(t.rows[0].cells[1].as_ref().and_then(|c| c.cost), Some(0.25));
        refused(r#"{"query": "q", "scores": {"a": 1}, "cost": {"a": 1}, "cost_est": {"a": 1}}"#, &["keep one"]);
        refused(r#"{"query": "q", "scores": {"a": 1}, "cost_estimate": {"a": 1}}"#, &["`cost_estimate`", "`cost_est`"]);
        refused(r#"{"query": "q", "model_name": "a", "performance": 1, "total_cost": 3}"#, &["`total_cost`", "long"]);
        refused(r#"{"query": "q", "best_llm": "a", "Accuracy": 1}"#, &["`Accuracy`"]);
        // Other keys are the user's own business.
        table(r#"{"query": "q", "scores": {"a": 1}, "meta": {"source": "x"}, "prompt": "p"}"#).expect("extra keys");
    }

    #[test]
    fn two_queries_sharing_an_id_in_the_long_layout_are_refused() {
        let text = concat!(
            r#"{"id": 7, "query": "q1", "model_name": "a", "performance": 1}"#,
            "\n",
            r#"{"id": 7, "query": "q1", "model_name": "b", "performance": 0}"#,
            "\n",
            r#"{"id": 7, "query": "q2", "model_name": "a", "performance": 1}"#,
            "\n",
        );
        refused(text, &["r.jsonl:3:", "\"7\"", "line 1", "another query"]);
    }

    #[test]
    fn ties_pick_the_first_model_in_name_order() {
        let t = table("{\"query\": \"q\", \"scores\": {\"b\": 1, \"a\": 1, \"c\": 0}}\n").expect("wide");
        assert_eq!(t.rows[0].best, Some(0));
    }
}
