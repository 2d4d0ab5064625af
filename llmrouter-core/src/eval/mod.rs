//! Evaluation machinery: the figures of a router's picks on labelled data and the reference
//! points ([`figures`]), the cost-weight sweep and its summaries AIQ / APGR / CPT ([`curve`]),
//! and the budgeted choice of a cost weight ([`calibrate`]).
//!
//! The top of the core's layers: it routes through the [`crate::Router`] trait and retrains
//! through the registry, and nothing in core depends on it.

pub mod calibrate;
pub mod curve;
pub mod figures;

pub use figures::{Pick, Summary, TaskFigures, baselines, model_figures, one_hot, predict_set, route_set, summarize};
