//! Budget calibration: the cost weight that maximises score within a budget.
//!
//! A router that predicts per-model scores decides by `w_perf * score - w_cost * normalised cost`;
//! `w_cost` sets how much it spends, but not in a unit anyone budgets in. [`choose`] finds, on
//! labelled validation data, the least `w_cost` whose picks stay within a [`Budget`] (a mean cost
//! per query, or a largest share of queries sent to one model, RouteLLM's "strong model
//! percentage"), mixing in a neighbouring weight for a share of queries where the spend jumps.
//! The result is stored in the model file ([`write()`]) and applied whenever a router is built
//! from that file ([`apply()`]), so `infer` and `eval` honour it; an explicit cost weight
//! (`eval --cost-weight`) still wins, and retraining drops it.

use std::path::PathBuf;

use crate::config::{CostMix, MetricWeights};
use crate::decision::Predictions;
use crate::error::{Error, Result};
use crate::eval::curve::{cost_weight_grid, measure, picks};
use crate::eval::figures::predict_set;
use crate::meta::MetaRouter;
use crate::model::ModelFile;
pub use crate::model::{Budget, Calibration};
use crate::progress::Progress;
use crate::registry::{self, RouterRegistration};
use crate::router::{Device, Router, TrainingSet};

/// The budgeted quantity of `chosen` (indices of `set.models`): the mean cost, or the share of
/// queries sent to the budget's model.
pub fn budget_value(budget: &Budget, set: &TrainingSet, chosen: &[usize]) -> Result<f64> {
    match budget {
        Budget::MaxCostPerQuery { .. } => Ok(measure(set, chosen).1),
        Budget::MaxShare { model, .. } => {
            let m = set.model_index(model).ok_or_else(|| {
                Error::Invalid(format!(
                    "--max-share names `{model}`, which is not a model of the routing data ({})",
                    crate::names::list_capped(&set.models.iter().map(String::as_str).collect::<Vec<_>>(), 12)
                ))
            })?;
            Ok(chosen.iter().filter(|&&c| c == m).count() as f64 / chosen.len().max(1) as f64)
        }
    }
}

/// One evaluated decision rule: a cost weight, possibly mixed with a second one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The cost weight.
    pub cost_weight: f64,
    /// The second cost weight and the share of queries it decides, if mixed.
    pub mix: Option<CostMix>,
    /// Mean measured score.
    pub mean_score: f64,
    /// Mean measured cost per query.
    pub mean_cost: f64,
    /// The budgeted quantity.
    pub value: f64,
}

/// What the picks under `weights` (its cost weight and cost mix) score, cost and spend of the
/// budget.
pub fn outcome(pred: &Predictions, set: &TrainingSet, weights: MetricWeights, budget: &Budget) -> Result<Outcome> {
    let chosen = picks(pred, set, weights)?;
    let (mean_score, mean_cost) = measure(set, &chosen);
    Ok(Outcome {
        cost_weight: weights.cost,
        mix: weights.cost_mix,
        mean_score,
        mean_cost,
        value: budget_value(budget, set, &chosen)?,
    })
}

/// The least cost weight whose picks on `set` stay within `budget`: the first of
/// [`cost_weight_grid`] within it, refined by bisection between it and the weight before it. By
/// the router's own predictions more spend buys more score (each weight maximises
/// `w_perf * predicted score - w_cost * cost`), so this is the weight that maximises predicted
/// score within the budget; picking by the measured validation score instead would chase noise
/// between neighbouring weights.
///
/// Where the spend jumps past the budget between two neighbouring weights (many queries switch
/// model together, as with a query-independent router), the slightly smaller weight is mixed in
/// for the largest share of queries that keeps the budget ([`CostMix`]), so the spend meets the
/// budget instead of falling short of it. An error when even the largest weight is over budget.
pub fn choose(pred: &Predictions, set: &TrainingSet, weights: MetricWeights, budget: &Budget) -> Result<Outcome> {
    let limit = budget.limit();
    let at =
        |cost: f64, mix: Option<CostMix>| outcome(pred, set, MetricWeights { cost, cost_mix: mix, ..weights }, budget);
    let mut previous: Option<f64> = None;
    let mut most_frugal = f64::INFINITY;
    for w in cost_weight_grid() {
        let o = at(w, None)?;
        if o.value > limit {
            previous = Some(w);
            most_frugal = most_frugal.min(o.value);
            continue;
        }
        let Some(mut lo) = previous else { return Ok(o) };
        let (mut hi, mut chosen) = (w, o);
        for _ in 0..40 {
            let mid = if lo > 0.0 { (lo * hi).sqrt() } else { hi / 2.0 };
            let o = at(mid, None)?;
            if o.value <= limit {
                (hi, chosen) = (mid, o);
            } else {
                lo = mid;
            }
        }
        // Mix in `lo` for the largest share of queries that stays within the budget.
        let (mut within, mut over) = (0.0, 1.0);
        for _ in 0..30 {
            let share = (within + over) / 2.0;
            let o = at(hi, Some(CostMix { cost_weight: lo, share }))?;
            if o.value <= limit {
                within = share;
                if o.value >= chosen.value {
                    chosen = o;
                }
            } else {
                over = share;
            }
        }
        return Ok(chosen);
    }
    Err(Error::Invalid(format!(
        "no cost weight meets the budget ({budget}): at its most frugal the router reaches {most_frugal:.4e} \
         on the {} validation queries; raise the budget to at least that",
        set.len()
    )))
}

/// A router retrained without its validation share, with its predictions on that share: what
/// [`Prepared::calibrate`] chooses a cost weight from.
pub struct Prepared {
    /// The router's config, pointing at the model just written.
    pub meta: MetaRouter,
    /// The model file written: a temporary file beside the configured one, removed when this is
    /// dropped unless [`Prepared::finish`] moved it into place.
    pub model_path: PathBuf,
    /// Where [`Prepared::finish`] puts it: the config's `model_path.save_model_path`.
    pub final_path: PathBuf,
    /// The router built from it.
    pub router: Box<dyn Router>,
    /// The held-out validation rows.
    pub validation: TrainingSet,
    /// The router's predictions on them.
    pub predictions: Predictions,
    /// Set when validation rows were left out for lacking a score (see
    /// [`TrainingSet::for_evaluation`]), to be shown.
    pub warning: Option<String>,
    temporary: Temporary,
}

/// A file removed on drop unless kept.
struct Temporary {
    path: PathBuf,
    keep: bool,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Trains router `reg` on `meta`'s training split minus its holdout ([`MetaRouter::with_holdout`])
/// and predicts the held-out rows. Errors for a router without a trainer or without per-model
/// predictions.
pub fn prepare(reg: &RouterRegistration, meta: MetaRouter, progress: &dyn Progress) -> Result<Prepared> {
    let Some(build_trainer) = reg.train else {
        return Err(Error::NotTrainable { router: reg.name.to_owned() });
    };
    if meta.holdout().is_none() {
        return Err(meta.error("calibration needs a validation share held out of the training data"));
    }
    // Train into a temporary file beside the configured one, so that a failed calibration leaves
    // the model the user had in place; route with exactly that model, whatever `load_model_path`
    // says, and without any calibration the old one carried.
    let final_path = meta.save_model_path()?;
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = Temporary {
        path: final_path.with_file_name(format!(".{name}.calibrating-{}", std::process::id())),
        keep: false,
    };
    let mut meta = meta;
    meta.set_model_path(&temporary.path);
    let report = build_trainer(meta.clone(), Device::Cpu)?.train(progress)?;
    let model_path = report.model_path;
    let cost = meta.config.metric.cost;
    meta.pin_cost_weight(cost);
    let router = (reg.build)(meta.clone())?;
    let (validation, warning) =
        TrainingSet::for_evaluation(&meta, &meta.load_routing_validation()?, "the validation share")?;
    if validation.is_empty() {
        return Err(meta.error("the validation share of the training data is empty"));
    }
    let Some(predictions) = predict_set(router.as_ref(), &validation, progress)? else {
        return Err(meta.error(format!(
            "does not predict per-model scores, so no cost weight steers it; calibration works with routers \
             that do ({})",
            registry::score_predictors()?.join(", ")
        )));
    };
    Ok(Prepared { meta, model_path, final_path, router, validation, predictions, warning, temporary })
}

impl Prepared {
    /// Moves the calibrated model over the configured model file (an atomic rename) and returns
    /// its path.
    pub fn finish(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.model_path, &self.final_path).map_err(|e| Error::io("write", &self.final_path, e))?;
        self.temporary.keep = true;
        Ok(self.final_path.clone())
    }

    /// Chooses the cost weight for `budget` ([`choose`]) and stores it in the model file.
    pub fn calibrate(&self, budget: &Budget) -> Result<Calibration> {
        let weights = self.meta.config.metric;
        let chosen = choose(&self.predictions, &self.validation, weights, budget)?;
        let calibration = Calibration {
            cost_weight: chosen.cost_weight,
            mix: chosen.mix,
            performance_weight: weights.performance,
            budget: budget.clone(),
            validation_queries: self.validation.len(),
            validation_mean_score: chosen.mean_score,
            validation_mean_cost: chosen.mean_cost,
            validation_value: chosen.value,
        };
        ModelFile::read(&self.model_path)?.write_calibration(&calibration)?;
        Ok(calibration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four models costing 1, 2, 4, 8 per query; predictions equal to the measured scores.
    fn data() -> (Predictions, TrainingSet) {
        let n = 40;
        let scores: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let hard = (i % 10) as f32 / 10.0;
                vec![(0.9 - hard).max(0.0), (1.0 - hard * 0.8).max(0.0), 1.0 - hard * 0.5, 1.0 - hard * 0.3]
            })
            .collect();
        let costs = vec![vec![1.0, 2.0, 4.0, 8.0]; n];
        let models: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let set = TrainingSet {
            models: models.clone(),
            queries: (0..n).map(|i| format!("q{i}")).collect(),
            tasks: vec![None; n],
            scores: scores.clone(),
            costs: costs.clone(),
        };
        (Predictions { models, scores, costs }, set)
    }

    #[test]
    fn chosen_weight_spends_within_the_budget_and_close_to_it() {
        let (pred, set) = data();
        for usd in [1.5, 3.0, 5.0] {
            let budget = Budget::MaxCostPerQuery { usd };
            let o = choose(&pred, &set, MetricWeights::default(), &budget).expect("feasible");
            assert!(o.mean_cost <= usd, "{usd}: {o:?}");
            // Every grid weight below the chosen one spends more than the budget: none that stays
            // within it was passed over.
            for w in cost_weight_grid().into_iter().filter(|&w| w < o.cost_weight) {
                let at = outcome(&pred, &set, MetricWeights { cost: w, ..MetricWeights::default() }, &budget)
                    .expect("outcome");
                assert!(at.mean_cost > usd, "{usd}: weight {w} is within the budget ({at:?}) but {o:?} was chosen");
            }
            let loosest = outcome(&pred, &set, MetricWeights::default(), &budget).expect("w=0");
            assert!(loosest.mean_cost > usd, "the budget binds in this test");
            assert!(o.mean_cost > usd * 0.75, "{usd}: spends {} of it", o.mean_cost);
        }
    }

    #[test]
    fn a_query_independent_router_meets_the_budget_by_mixing() {
        // Every query predicts the same scores: any pure cost weight sends all queries to one
        // model, spending 1, 2, 4 or 8. A budget of 3 needs a mix of two weights.
        let (mut pred, set) = data();
        pred.scores = vec![vec![0.5, 0.6, 0.7, 0.8]; set.len()];
        let budget = Budget::MaxCostPerQuery { usd: 3.0 };
        let o = choose(&pred, &set, MetricWeights::default(), &budget).expect("feasible");
        let mix = o.mix.expect("mixed");
        assert!(mix.cost_weight < o.cost_weight && mix.share > 0.0 && mix.share < 1.0, "{o:?}");
        assert!(o.mean_cost <= 3.0 && o.mean_cost >= 2.5, "{o:?}");
        // The mix is a property of each query's text: the same outcome again.
        let again =
            outcome(&pred, &set, MetricWeights { cost: o.cost_weight, cost_mix: o.mix, ..Default::default() }, &budget);
        assert_eq!(again.expect("outcome"), o);
    }

    #[test]
    fn share_budget_limits_the_named_model() {
        let (pred, set) = data();
        let budget = Budget::MaxShare { model: "d".into(), share: 0.2 };
        let o = choose(&pred, &set, MetricWeights::default(), &budget).expect("feasible");
        assert!(o.value <= 0.2 && o.value > 0.0, "{o:?}");
        let err = choose(&pred, &set, MetricWeights::default(), &Budget::MaxShare { model: "zz".into(), share: 0.2 })
            .expect_err("unknown model");
        assert!(err.to_string().contains("`zz`"), "{err}");
    }

    #[test]
    fn a_budget_below_the_cheapest_model_is_refused() {
        let (pred, set) = data();
        let err = choose(&pred, &set, MetricWeights::default(), &Budget::MaxCostPerQuery { usd: 0.5 })
            .expect_err("infeasible");
        assert!(err.to_string().contains("reaches 1.0000e0"), "{err}");
    }
}
