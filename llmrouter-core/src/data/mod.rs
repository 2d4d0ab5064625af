//! Data files: candidate models (`llm_data`, [`candidates`]), query files ([`queries`]), and
//! routing data ([`routing`]).
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

pub mod candidates;
pub mod queries;
pub mod routing;

pub use candidates::{Candidate, Candidates, parse_size_billions};
pub use queries::{queries_from_str, read_queries};
pub use routing::{Cell, RoutingRow, RoutingTable};
