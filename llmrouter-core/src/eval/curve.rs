//! Cost-quality curves and the figures that summarise them: AIQ, APGR and CPT.
//!
//! A router that predicts every model's score ([`crate::Router::predict`]) decides by
//! `argmax w_perf * predicted score - w_cost * normalised cost`. Sweeping the cost weight `w_cost`
//! from 0 (best predicted quality) upwards (cheapest) traces its operating points: the mean
//! measured cost and mean measured score of its picks on labelled data ([`sweep`]).
//!
//! Any two operating points can be mixed (send a share of traffic under each), so what a router
//! can reach at a spend of `c` per query is the **non-decreasing upper convex hull** `R(c)` of its
//! points ([`Hull`]). The hull also contains the cheapest single model's point, because any
//! deployment can send a share of its traffic straight to that model; it is flat beyond its most
//! expensive point (spending more is allowed, it buys nothing) and, left of its cheapest point,
//! held at that point's score (only reached when the router is cheaper than the cheapest model).
//!
//! With `c_min` / `s_min` the cheapest single model's mean cost and score, `c_best` / `s_best` the
//! best single model's (highest mean score), and `c_max` the most expensive single model's cost:
//!
//! - **AIQ** (average improvement in quality, after RouterBench):
//!   `AIQ = 1 / (c_max - c_min) * integral from c_min to c_max of R(c) dc`: the mean score the
//!   router reaches over the whole price range of the single models (`R(c_min)` when all cost the
//!   same).
//! - **PGR** (performance gap recovered, after RouteLLM): `PGR(c) = (R(c) - s_min) / (s_best - s_min)`.
//!   **APGR** `= 1 / (c_best - c_min) * integral from c_min to c_best of PGR(c) dc`: its mean as spend
//!   rises from the cheapest to the best single model's cost. With two models this is RouteLLM's
//!   APGR (the share of calls to the strong model maps linearly to cost). Mixing the cheapest and
//!   the best model at random gives 0.5; a router equal to the cheapest model 0; values above 1 are
//!   possible (the oracle's usually are). Undefined when the cheapest model is also the best.
//! - **CPT(x)** (cost to performance threshold): the least spend per query `c` with `PGR(c) >= x`,
//!   reported for x = 50% and 80%, in USD and as a share of the best single model's cost;
//!   undefined when the router never recovers that much of the gap.

use serde::Serialize;

use crate::config::MetricWeights;
use crate::decision::{Predictions, ranking};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::router::TrainingSet;

/// One operating point of a router.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// The cost weight `w_cost` of the decisions.
    pub cost_weight: f64,
    /// Mean measured cost per query (USD) of the picks.
    pub mean_cost: f64,
    /// Mean measured score of the picks.
    pub mean_score: f64,
}

/// The cost weights [`sweep`] visits: 0, then 97 values spaced evenly in log scale from 1e-3 to
/// 1e3 (normalised costs and scores both lie in [0, 1], so beyond this range nothing changes).
pub fn cost_weight_grid() -> Vec<f64> {
    std::iter::once(0.0).chain((0..=96).map(|k| 10f64.powf(-3.0 + 6.0 * f64::from(k) / 96.0))).collect()
}

/// The model each query of `set` is sent to when deciding by `pred` under `weights` (its cost mix
/// included), as indices of `set.models`. `pred` must cover `set`'s queries in order.
pub fn picks(pred: &Predictions, set: &TrainingSet, weights: MetricWeights) -> Result<Vec<usize>> {
    let columns = columns(pred, set)?;
    Ok((0..set.len())
        .map(|i| columns[ranking(&pred.scores[i], &pred.costs[i], weights.for_query(&set.queries[i]))[0]])
        .collect())
}

fn columns(pred: &Predictions, set: &TrainingSet) -> Result<Vec<usize>> {
    if pred.scores.len() != set.len() || pred.costs.len() != set.len() {
        return Err(Error::Invalid(format!(
            "predictions cover {} queries, the evaluation data has {}",
            pred.scores.len(),
            set.len()
        )));
    }
    pred.models
        .iter()
        .map(|m| {
            set.model_index(m).ok_or_else(|| {
                Error::Invalid(format!("the router predicts model `{m}`, which has no scores in the evaluation data"))
            })
        })
        .collect()
}

/// Mean measured (score, cost) of `picks` on `set` (a missing score counts as 0).
pub fn measure(set: &TrainingSet, picks: &[usize]) -> (f64, f64) {
    let n = picks.len().max(1) as f64;
    let (s, c) = picks.iter().enumerate().fold((0.0, 0.0), |(s, c), (i, &m)| {
        let score = set.scores[i][m];
        (s + if score.is_nan() { 0.0 } else { f64::from(score) }, c + set.costs[i][m])
    });
    (s / n, c / n)
}

/// The operating points of `pred` on `set` at each cost weight of `grid` (with `weights`'
/// performance weight), in grid order.
pub fn sweep(
    pred: &Predictions,
    set: &TrainingSet,
    weights: MetricWeights,
    grid: &[f64],
    progress: &dyn Progress,
) -> Result<Vec<CurvePoint>> {
    columns(pred, set)?;
    progress.begin(grid.len() as u64, "sweeping cost weights");
    let mut points = Vec::with_capacity(grid.len());
    for &w in grid {
        let chosen = picks(pred, set, MetricWeights { cost: w, cost_mix: None, ..weights })?;
        let (mean_score, mean_cost) = measure(set, &chosen);
        points.push(CurvePoint { cost_weight: w, mean_cost, mean_score });
        progress.advance(1);
    }
    progress.finish();
    Ok(points)
}

/// A non-decreasing, concave, piecewise-linear curve through (cost, score) points: the best score
/// reachable by mixing the given operating points at a given mean cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hull {
    /// Vertices, increasing in both cost and score.
    pub vertices: Vec<(f64, f64)>,
}

impl Hull {
    /// The hull of `points` (cost, score); at least one point.
    pub fn new(points: &[(f64, f64)]) -> Hull {
        let mut sorted: Vec<(f64, f64)> =
            points.iter().copied().filter(|(c, s)| c.is_finite() && s.is_finite()).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        // Pareto frontier: each kept point scores strictly more than every cheaper one.
        let mut frontier: Vec<(f64, f64)> = Vec::new();
        for p in sorted {
            if frontier.last().is_none_or(|last| p.1 > last.1) {
                frontier.push(p);
            }
        }
        // Upper hull: drop a vertex on or below the segment joining its neighbours.
        let mut vertices: Vec<(f64, f64)> = Vec::new();
        for p in frontier {
            while vertices.len() >= 2 {
                let (a, b) = (vertices[vertices.len() - 2], vertices[vertices.len() - 1]);
                let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
                if cross >= 0.0 {
                    vertices.pop();
                } else {
                    break;
                }
            }
            vertices.push(p);
        }
        Hull { vertices }
    }

    /// The score reachable at mean cost `c`.
    pub fn at(&self, c: f64) -> f64 {
        let v = &self.vertices;
        let Some(&first) = v.first() else { return f64::NAN };
        if c <= first.0 {
            return first.1;
        }
        for w in v.windows(2) {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            if c <= c1 {
                return s0 + (s1 - s0) * (c - c0) / (c1 - c0);
            }
        }
        v[v.len() - 1].1
    }

    /// The integral of [`Hull::at`] from `a` to `b` (`a <= b`), exact.
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        let mut knots: Vec<f64> = vec![a];
        knots.extend(self.vertices.iter().map(|v| v.0).filter(|&c| c > a && c < b));
        knots.push(b);
        knots.windows(2).map(|w| (w[1] - w[0]) * (self.at(w[0]) + self.at(w[1])) / 2.0).sum()
    }

    /// The least mean cost at which the hull reaches `score`; `None` if it never does.
    pub fn cost_to_reach(&self, score: f64) -> Option<f64> {
        let v = &self.vertices;
        let &first = v.first()?;
        if first.1 >= score {
            return Some(first.0);
        }
        v.windows(2).find(|w| w[1].1 >= score).map(|w| {
            let ((c0, s0), (c1, s1)) = (w[0], w[1]);
            c0 + (c1 - c0) * (score - s0) / (s1 - s0)
        })
    }
}

/// The single-model reference points the curve figures are measured against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anchors {
    /// The cheapest model (lowest mean cost): name, mean cost, mean score.
    pub cheapest: (String, f64, f64),
    /// The best model (highest mean score): name, mean cost, mean score.
    pub best: (String, f64, f64),
    /// The most expensive model's mean cost.
    pub max_cost: f64,
}

impl Anchors {
    /// The anchors of `set`, from each model's mean measured score and cost.
    pub fn of(set: &TrainingSet) -> Anchors {
        let figures = crate::eval::figures::model_figures(set);
        let idx = |better: &dyn Fn(usize, usize) -> std::cmp::Ordering| {
            (0..figures.len()).max_by(|&a, &b| better(a, b).then(b.cmp(&a))).unwrap_or(0)
        };
        let best = idx(&|a, b| figures[a].0.total_cmp(&figures[b].0));
        let cheapest = idx(&|a, b| figures[b].1.total_cmp(&figures[a].1));
        let max_cost = figures.iter().map(|f| f.1).fold(0.0, f64::max);
        let named = |m: usize| (set.models.get(m).cloned().unwrap_or_default(), figures[m].1, figures[m].0);
        Anchors { cheapest: named(cheapest), best: named(best), max_cost }
    }
}

/// AIQ, APGR and CPT of one router (see the module docs for the definitions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurveMetrics {
    /// Average improvement in quality over the single models' price range.
    pub aiq: f64,
    /// Average performance gap recovered (`None` when the cheapest model is also the best).
    pub apgr: Option<f64>,
    /// Least spend per query (USD) recovering 50% of the gap.
    pub cpt50: Option<f64>,
    /// Least spend per query (USD) recovering 80% of the gap.
    pub cpt80: Option<f64>,
    /// The hull the figures were computed on (the cheapest model's point included).
    pub hull: Hull,
}

/// The figures of a router whose operating points are `points` (mean cost, mean score).
pub fn metrics(points: &[(f64, f64)], anchors: &Anchors) -> CurveMetrics {
    let (_, c_min, s_min) = anchors.cheapest;
    let (_, c_best, s_best) = anchors.best;
    let mut all = points.to_vec();
    all.push((c_min, s_min));
    let hull = Hull::new(&all);
    let aiq = if anchors.max_cost - c_min > 1e-15 {
        hull.integral(c_min, anchors.max_cost) / (anchors.max_cost - c_min)
    } else {
        hull.at(c_min)
    };
    let gap = s_best - s_min;
    let (apgr, cpt50, cpt80) = if gap > 1e-12 && c_best > c_min {
        let pgr_area = (hull.integral(c_min, c_best) - s_min * (c_best - c_min)) / gap;
        (
            Some(pgr_area / (c_best - c_min)),
            hull.cost_to_reach(s_min + 0.5 * gap),
            hull.cost_to_reach(s_min + 0.8 * gap),
        )
    } else {
        (None, None, None)
    };
    CurveMetrics { aiq, apgr, cpt50, cpt80, hull }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::figures::{baselines, one_hot, summarize};

    /// Three models with costs 1, 2, 4 per query; mean scores a 0.4, b 0.4, c 0.8.
    use crate::eval::figures::tests::tiny;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn single(set: &TrainingSet, m: usize) -> (f64, f64) {
        let (s, c) = measure(set, &vec![m; set.len()]);
        (c, s)
    }

    #[test]
    fn anchors_of_the_tiny_set() {
        let a = Anchors::of(&tiny());
        assert_eq!(a.cheapest, ("a".to_owned(), 1.0, 0.4));
        assert_eq!(a.best, ("c".to_owned(), 4.0, 0.8));
        close(a.max_cost, 4.0);
    }

    #[test]
    fn a_router_equal_to_the_best_model_recovers_half_the_gap() {
        let set = tiny();
        let m = metrics(&[single(&set, 2)], &Anchors::of(&set));
        // Hull: (1, 0.4) -> (4, 0.8); AIQ is its mean over [1, 4].
        close(m.aiq, 0.6);
        close(m.apgr.expect("gap"), 0.5);
        close(m.cpt50.expect("50%"), 2.5); // 0.6 reached at 1 + 3 * 0.5
        close(m.cpt80.expect("80%"), 3.4); // 0.72 reached at 1 + 3 * 0.8
    }

    #[test]
    fn a_router_equal_to_the_cheapest_model_recovers_nothing() {
        let set = tiny();
        let m = metrics(&[single(&set, 0)], &Anchors::of(&set));
        close(m.aiq, 0.4);
        close(m.apgr.expect("gap"), 0.0);
        assert_eq!((m.cpt50, m.cpt80), (None, None));
        // Model b costs more and scores no better: it adds nothing to the hull.
        let m = metrics(&[single(&set, 1)], &Anchors::of(&set));
        assert_eq!(m.hull.vertices, vec![(1.0, 0.4)]);
    }

    #[test]
    fn the_oracle_recovers_the_gap_cheaply() {
        let set = tiny();
        let oracle = &baselines(&set, MetricWeights::default())[3];
        close(oracle.mean_cost, 1.8);
        let m = metrics(&[(oracle.mean_cost, oracle.mean_score)], &Anchors::of(&set));
        // Hull (1, 0.4) -> (1.8, 0.8), flat after: (0.48 + 0.8 * 2.2) / 3.
        close(m.aiq, 2.24 / 3.0);
        // PGR rises 0 -> 1 over [1, 1.8] (area 0.4), then 1 over [1.8, 4] (2.2): 2.6 / 3.
        close(m.apgr.expect("gap"), 2.6 / 3.0);
        close(m.cpt50.expect("50%"), 1.4);
        close(m.cpt80.expect("80%"), 1.64);
    }

    #[test]
    fn no_gap_when_the_cheapest_model_is_the_best() {
        let mut set = tiny();
        set.costs = vec![vec![4.0, 2.0, 1.0]; 5];
        let a = Anchors::of(&set);
        assert_eq!(a.best.0, "c");
        assert_eq!(a.cheapest.0, "c");
        let m = metrics(&[single(&set, 0)], &a);
        assert_eq!((m.apgr, m.cpt50), (None, None));
        close(m.aiq, 0.8); // model a (0.4 at cost 4) is dominated: the hull is c's point
    }

    #[test]
    fn hull_is_non_decreasing_and_concave() {
        let h = Hull::new(&[(1.0, 0.3), (2.0, 0.4), (3.0, 0.7), (4.0, 0.6), (5.0, 0.75), (0.5, 0.1), (2.5, 0.3)]);
        // (2, 0.4) lies below the chord (1, 0.3)-(3, 0.7); (4, 0.6) and (2.5, 0.3) are dominated.
        assert_eq!(h.vertices, vec![(0.5, 0.1), (1.0, 0.3), (3.0, 0.7), (5.0, 0.75)]);
        close(h.at(0.0), 0.1);
        close(h.at(2.0), 0.5);
        close(h.at(9.0), 0.75);
        close(h.integral(3.0, 7.0), (0.7 + 0.75) / 2.0 * 2.0 + 0.75 * 2.0);
        close(h.cost_to_reach(0.5).expect("reached"), 2.0);
        assert_eq!(h.cost_to_reach(0.8), None);
    }

    #[test]
    fn sweep_runs_from_the_predicted_best_to_the_cheapest() {
        let set = tiny();
        // Predictions equal to the measured scores, costs as listed: at weight 0 this is the oracle
        // (cheapest among the best), at the largest weight the cheapest model everywhere.
        let pred = Predictions { models: set.models.clone(), scores: set.scores.clone(), costs: set.costs.clone() };
        let grid = cost_weight_grid();
        assert_eq!(grid.len(), 98);
        let points = sweep(&pred, &set, MetricWeights::default(), &grid, &crate::progress::NoProgress).expect("sweep");
        let refs = baselines(&set, MetricWeights::default());
        close(points[0].mean_score, refs[3].mean_score);
        close(points[0].mean_cost, refs[3].mean_cost);
        let last = points.last().expect("points");
        close(last.mean_cost, 1.0);
        close(last.mean_score, 0.4);
        // Every swept point is what the picks at its cost weight measure, and what their summary says.
        for p in &points {
            let chosen =
                picks(&pred, &set, MetricWeights { cost: p.cost_weight, ..MetricWeights::default() }).expect("picks");
            let (score, cost) = measure(&set, &chosen);
            close(p.mean_score, score);
            close(p.mean_cost, cost);
            let s = summarize("r", &set, &one_hot(&chosen), MetricWeights::default());
            close(s.mean_score, score);
            close(s.mean_cost, cost);
        }
    }

    #[test]
    fn predictions_for_unknown_models_are_refused() {
        let set = tiny();
        let pred = Predictions { models: vec!["zzz".into()], scores: vec![vec![0.5]; 5], costs: vec![vec![1.0]; 5] };
        let err = picks(&pred, &set, MetricWeights::default()).expect_err("unknown model");
        assert!(err.to_string().contains("zzz"), "{err}");
    }
}
