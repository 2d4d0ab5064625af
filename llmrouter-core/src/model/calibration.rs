//! The calibration a model file may carry: the cost weight `llmrouter calibrate` chose for a
//! [`Budget`], applied whenever a router is built from that file (see
//! [`crate::MetaRouter::apply_calibration`]). Computing it is `eval::calibrate`'s job; this is
//! only the record.

use serde::{Deserialize, Serialize};

use crate::config::CostMix;

/// What a calibrated router may spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Budget {
    /// Mean cost per query, USD.
    MaxCostPerQuery {
        /// The budget.
        usd: f64,
    },
    /// Share of queries (0 to 1) sent to one model.
    MaxShare {
        /// The model.
        model: String,
        /// The largest share.
        share: f64,
    },
}

impl Budget {
    /// The limit.
    pub fn limit(&self) -> f64 {
        match self {
            Budget::MaxCostPerQuery { usd } => *usd,
            Budget::MaxShare { share, .. } => *share,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::MaxCostPerQuery { usd } => write!(f, "mean cost <= {usd:.4e} USD per query"),
            Budget::MaxShare { model, share } => write!(f, "share of queries sent to {model} <= {:.1}%", share * 100.0),
        }
    }
}

/// The outcome of a calibration, stored in the model file under `calibration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The chosen `metric.weights.cost`.
    pub cost_weight: f64,
    /// The second cost weight and the share of queries (by a hash of the text) it decides, when
    /// the budget lies between what two neighbouring weights spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<CostMix>,
    /// The `metric.weights.performance` it was chosen with.
    pub performance_weight: f64,
    /// The budget.
    pub budget: Budget,
    /// Validation queries it was chosen on.
    pub validation_queries: usize,
    /// Mean score of the picks on them.
    pub validation_mean_score: f64,
    /// Mean cost per query (USD) of the picks on them.
    pub validation_mean_cost: f64,
    /// The budgeted quantity on them (mean cost, or the model's share).
    pub validation_value: f64,
}
