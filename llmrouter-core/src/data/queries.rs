//! Query files for `infer --input`: `.txt`, `.json` and `.jsonl`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::query::QueryInput;

/// Reads queries from a file by extension: `.txt` (one query a line, blank lines skipped),
/// `.json` (a list of strings or of objects with `query`), `.jsonl` (one object with `query`, or
/// one JSON string, a line). Objects keep their other fields (`id`, `embedding`, `task_name`, ...).
pub fn read_queries(path: &Path) -> Result<Vec<QueryInput>> {
    let text = Error::read_text("read query file", path)?;
    queries_from_str(&text, path)
}

/// Parses the text of a query file as [`read_queries`] does; `path` gives the format (by its
/// extension) and names the file in errors.
pub fn queries_from_str(text: &str, path: &Path) -> Result<Vec<QueryInput>> {
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
                serde_json::from_str(text).map_err(|e| line_err(e.line(), format!("invalid JSON: {e}")))?;
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
    // An empty query is named here, by line or item, not later by the router.
    if ext == "jsonl" || ext == "ndjson" {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1);
        for q in &queries {
            let line = lines.next().unwrap_or(0);
            if q.query.trim().is_empty() {
                return Err(line_err(line, "empty `query`: nothing to route".into()));
            }
        }
    } else if let Some(i) = queries.iter().position(|q| q.query.trim().is_empty()) {
        return Err(Error::Data {
            path: path.to_owned(),
            message: format!("item {i}: empty `query`: nothing to route"),
        });
    }
    Ok(queries)
}
