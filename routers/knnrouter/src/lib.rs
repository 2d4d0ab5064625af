//! `knnrouter`: predicts each candidate's quality on a query as the (shrunk) mean of its scores
//! on the `n_neighbors` most similar training queries (cosine similarity of embeddings), then
//! decides by `metric.weights` (see `llmrouter_core::decision`).
//!
//! Plain neighbour means are noisy: with 0/1 scores and k = 5 each estimate moves in steps of
//! 0.2, and scikit-learn's kNN router loses to the best single model on llmrouter_dc. Here each
//! estimate is shrunk toward a prior `p_m(x)`:
//! `s_m = (sum_i w_i s_im + lambda * p_m(x)) / (sum_i w_i + lambda)`, so with little local
//! evidence the router falls back to the prior. The prior is either the model's overall mean
//! score (`prior: mean`) or, by default (`prior: linear`), a per-model logistic regression on the
//! embedding (`llmrouter_core::learn::linear::fit`, strength `prior_C`): a global model of what each
//! model is good at, corrected by the outcomes of the nearest training queries. `shrinkage: auto`
//! (default) picks lambda by leave-one-out routing on the training set, with each training
//! query's prior taken from a regression fitted without it (5 folds).

use std::path::Path;

use llmrouter_core::embed::EmbedderSpec;
use llmrouter_core::learn::linear::{self, Linear, Loss, sigmoid};
use llmrouter_core::learn::{F32s, U32s, par_chunks};
use llmrouter_core::model::all_finite;
use llmrouter_core::router::prepare;
use llmrouter_core::{Error, Fit, FitTrainer, Fitted, MetaRouter, Progress, Result, ScorePredictor, ScoreRouter};
use serde::{Deserialize, Serialize};

/// Candidate values of lambda for `shrinkage: auto`.
const LAMBDAS: &[f32] = &[0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Folds of the out-of-fold priors used to choose lambda.
const PRIOR_FOLDS: usize = 5;
/// Most L-BFGS iterations of a prior regression.
const PRIOR_MAX_ITER: usize = 300;

/// `hparam` of knnrouter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hparams {
    /// Neighbours per query (default 20).
    pub n_neighbors: usize,
    /// `distance` (default; weight by cosine similarity) or `uniform`.
    pub weights: Weighting,
    /// Prior strength lambda, or `auto` (default): chosen by leave-one-out on the training data.
    pub shrinkage: Shrinkage,
    /// What estimates shrink toward: `linear` (default) or `mean`.
    pub prior: PriorKind,
    /// Inverse L2 strength of the `linear` prior, as scikit-learn's `C` (default 0.2).
    #[serde(rename = "prior_C")]
    pub prior_c: f64,
}

impl Default for Hparams {
    fn default() -> Self {
        Hparams {
            n_neighbors: 20,
            weights: Weighting::Distance,
            shrinkage: Shrinkage::Auto(AutoTag::Auto),
            prior: PriorKind::Linear,
            prior_c: 0.2,
        }
    }
}

/// The prior of the shrunk estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorKind {
    /// Each model's mean score over the training queries.
    Mean,
    /// A per-model logistic regression on the embedding.
    Linear,
}

/// A saved `linear` prior: one logistic regression per model, stored over the embedding columns
/// where some model's weight is not zero (a hashed embedding of a few thousand training queries
/// uses a few thousand of its up to 4,194,304 buckets; the others weigh 0 in every model).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinearPrior {
    /// Row-major, models x `columns` (models x embedding dimension when `columns` is absent, as
    /// in files written before the columns were stored).
    weights: F32s,
    biases: Vec<f32>,
    /// The embedding columns of `weights`, increasing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<u32>>,
}

impl LinearPrior {
    fn new(fits: Vec<Linear>) -> Self {
        let dim = fits.first().map_or(0, |l| l.w.len());
        let columns: Vec<u32> = (0..dim).filter(|&j| fits.iter().any(|l| l.w[j] != 0.0)).map(|j| j as u32).collect();
        LinearPrior {
            biases: fits.iter().map(|l| l.b).collect(),
            weights: F32s(fits.iter().flat_map(|l| columns.iter().map(|&j| l.w[j as usize])).collect()),
            columns: Some(columns),
        }
    }

    /// The width of each model's row of `weights`.
    fn width(&self, dim: usize) -> usize {
        self.columns.as_ref().map_or(dim, Vec::len)
    }

    /// Whether the arrays fit `models` models over an embedding of `dim` columns.
    fn fits(&self, models: usize, dim: usize) -> bool {
        let columns_ok = self
            .columns
            .as_ref()
            .is_none_or(|c| c.windows(2).all(|w| w[0] < w[1]) && c.last().is_none_or(|&j| (j as usize) < dim));
        columns_ok
            && self.biases.len() == models
            && models.checked_mul(self.width(dim)) == Some(self.weights.0.len())
            && all_finite(&self.biases)
            && all_finite(&self.weights.0)
    }

    /// Each model's predicted score for sparse `x`.
    fn predict(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let width = self.weights.0.len() / self.biases.len().max(1);
        // `x` by the position of its columns in `weights` (a column no model weighs adds 0).
        let x: Vec<(usize, f32)> = match &self.columns {
            Some(columns) => x.iter().filter_map(|&(j, v)| columns.binary_search(&j).ok().map(|c| (c, v))).collect(),
            None => x.iter().map(|&(j, v)| (j as usize, v)).collect(),
        };
        self.biases
            .iter()
            .enumerate()
            .map(|(m, b)| {
                let w = &self.weights.0[m * width..(m + 1) * width];
                let z = b + x.iter().map(|&(c, v)| w[c] * v).sum::<f32>();
                sigmoid(f64::from(z)) as f32
            })
            .collect()
    }
}

/// Neighbour weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Every neighbour counts the same.
    Uniform,
    /// Neighbours count by their cosine similarity.
    Distance,
}

/// `shrinkage`: a number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Shrinkage {
    /// A fixed lambda.
    Fixed(f32),
    /// Chosen on the training data.
    Auto(AutoTag),
}

/// The literal `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoTag {
    /// `auto`.
    Auto,
}

/// The most neighbours a query may consult (more is a typo, and slow).
pub const MAX_NEIGHBORS: usize = 100_000;

/// The saved model: training vectors (sparse rows), scores, and the settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    embedder: EmbedderSpec,
    n_neighbors: usize,
    weights: Weighting,
    lambda: f32,
    models: usize,
    /// CSR rows of the training embeddings.
    indptr: U32s,
    indices: U32s,
    values: F32s,
    /// Row-major scores, NaN where not measured.
    scores: F32s,
    means: Vec<f32>,
    /// The `linear` prior; absent for `prior: mean`.
    #[serde(default)]
    prior: Option<LinearPrior>,
}

impl SavedModel {
    /// The prior of every model for embedding `x`.
    fn prior(&self, x: &[(u32, f32)]) -> Vec<f32> {
        self.prior.as_ref().map_or_else(|| self.means.clone(), |p| p.predict(x))
    }
}

/// The index used at inference and for leave-one-out: the training vectors by column
/// (postings), in two flat arrays, for sparse dot products term by term.
struct Index {
    rows: usize,
    /// Column `j`'s postings are `col_ptr[j]..col_ptr[j + 1]` of `post_rows` and `post_vals`,
    /// by row.
    col_ptr: Vec<u32>,
    post_rows: PostingRows,
    post_vals: Vec<f32>,
}

/// The row of each posting: two bytes when there are at most 65,536 rows (a query reads a
/// quarter less memory), else four.
enum PostingRows {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

/// Adds `qv * v` to `sims[row]` for each posting `(row, v)`.
fn scatter<R: Copy>(sims: &mut [f32], qv: f32, rows: &[R], vals: &[f32], to: impl Fn(R) -> usize) {
    for (&row, &v) in rows.iter().zip(vals) {
        sims[to(row)] += qv * v;
    }
}

impl Index {
    /// The index of CSR rows over `dim` columns; `None` when the arrays do not make CSR rows.
    fn from_csr(dim: usize, indptr: &[u32], indices: &[u32], values: &[f32]) -> Option<Self> {
        let rows = indptr.len().checked_sub(1)?;
        let nnz = indices.len();
        let well_formed = indptr.first() == Some(&0)
            && indptr.last().is_some_and(|&e| e as usize == nnz)
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && values.len() == nnz
            && indices.iter().all(|&j| (j as usize) < dim)
            && u32::try_from(rows).is_ok();
        if !well_formed {
            return None;
        }
        let mut col_ptr = vec![0u32; dim + 1];
        for &j in indices {
            col_ptr[j as usize + 1] += 1;
        }
        for j in 0..dim {
            col_ptr[j + 1] += col_ptr[j];
        }
        let mut next: Vec<u32> = col_ptr[..dim].to_vec();
        let (mut wide, mut post_vals) = (vec![0u32; nnz], vec![0.0f32; nnz]);
        for row in 0..rows {
            for k in indptr[row] as usize..indptr[row + 1] as usize {
                let j = indices[k] as usize;
                let at = next[j] as usize;
                next[j] += 1;
                wide[at] = row as u32;
                post_vals[at] = values[k];
            }
        }
        let post_rows = if rows <= usize::from(u16::MAX) + 1 {
            PostingRows::Narrow(wide.into_iter().map(|r| r as u16).collect())
        } else {
            PostingRows::Wide(wide)
        };
        Some(Index { rows, col_ptr, post_rows, post_vals })
    }

    /// Cosine similarities (embeddings are unit length) of `q` to every training row, term by
    /// term in the query's order (a query column outside the index adds nothing).
    fn similarities(&self, q: &[(u32, f32)]) -> Vec<f32> {
        let mut sims = vec![0.0f32; self.rows];
        for &(j, qv) in q {
            let (Some(&start), Some(&end)) = (self.col_ptr.get(j as usize), self.col_ptr.get(j as usize + 1)) else {
                continue;
            };
            let span = start as usize..end as usize;
            let vals = &self.post_vals[span.clone()];
            match &self.post_rows {
                PostingRows::Narrow(rows) => scatter(&mut sims, qv, &rows[span], vals, usize::from),
                PostingRows::Wide(rows) => scatter(&mut sims, qv, &rows[span], vals, |r| r as usize),
            }
        }
        sims
    }

    /// The `k` rows most similar to `q`, skipping `exclude`, sorted by similarity then row.
    fn nearest(&self, q: &[(u32, f32)], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
        top_k(&self.similarities(q), k, exclude)
    }
}

/// Top `k` rows by similarity, skipping `exclude`; sorted by similarity, then row. One pass that
/// keeps at most `2k` rows: once full, it keeps the best `k`, and a later row (whose index is
/// larger, so it loses a tie) must beat the `k`-th of them.
fn top_k(sims: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
    let k = k.min(sims.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut kept: Vec<(usize, f32)> = Vec::with_capacity(2 * k);
    let mut floor: Option<f32> = None;
    for (i, &s) in sims.iter().enumerate() {
        if Some(i) == exclude || floor.is_some_and(|f| s.total_cmp(&f).is_le()) {
            continue;
        }
        kept.push((i, s));
        if kept.len() == 2 * k {
            kept.select_nth_unstable_by(k - 1, cmp);
            kept.truncate(k);
            floor = Some(kept[k - 1].1);
        }
    }
    let k = k.min(kept.len());
    if k > 0 {
        kept.select_nth_unstable_by(k - 1, cmp);
    }
    kept.truncate(k);
    kept.sort_by(cmp);
    kept
}

/// Neighbour means for every model, shrunk toward `prior`.
fn estimate(
    neighbours: &[(usize, f32)],
    scores: &[f32],
    models: usize,
    prior: &[f32],
    lambda: f32,
    w: Weighting,
) -> Vec<f32> {
    (0..models)
        .map(|m| {
            let (mut num, mut den) = (lambda * prior[m], lambda);
            for &(row, sim) in neighbours {
                let s = scores[row * models + m];
                if !s.is_nan() {
                    let weight = match w {
                        Weighting::Uniform => 1.0,
                        Weighting::Distance => sim.max(1e-6),
                    };
                    num += weight * s;
                    den += weight;
                }
            }
            if den > 0.0 { num / den } else { prior[m] }
        })
        .collect()
}

/// The trained model: the [`ScorePredictor`] of this router.
pub struct Knn {
    model: SavedModel,
    index: Index,
}

/// The router.
pub type KnnRouter = ScoreRouter<Knn>;
/// Its trainer.
pub type KnnTrainer = FitTrainer<Knn>;

impl ScorePredictor for Knn {
    type Model = SavedModel;

    fn embedder_spec(model: &SavedModel) -> Option<&EmbedderSpec> {
        Some(&model.embedder)
    }

    fn from_model(model: SavedModel, meta: &MetaRouter, path: &Path, dim: usize) -> Result<Self> {
        let rows = model.indptr.0.len().saturating_sub(1);
        let prior_ok = model.prior.as_ref().is_none_or(|p| p.fits(model.models, dim));
        let problem = if model.models != meta.candidates.len() {
            Some(format!("`models` is {}, but there are {} candidates", model.models, meta.candidates.len()))
        } else if model.scores.0.len() != rows * model.models {
            Some(format!(
                "the score table holds {} values, not {rows} training rows x {} models",
                model.scores.0.len(),
                model.models
            ))
        } else if model.scores.0.iter().any(|v| !v.is_nan() && !(0.0..=1.0).contains(v)) {
            Some("a score in the score table is outside [0, 1]".to_owned())
        } else if !(1..=MAX_NEIGHBORS).contains(&model.n_neighbors) {
            Some(format!("`n_neighbors` is {}, not between 1 and {MAX_NEIGHBORS}", model.n_neighbors))
        } else if !(model.lambda >= 0.0 && model.lambda.is_finite()) {
            Some(format!("`lambda` is {}, not a non-negative number", model.lambda))
        } else if model.means.len() != model.models || !all_finite(&model.means) {
            Some(format!("`means` holds {} values, not one finite number per model", model.means.len()))
        } else if !prior_ok {
            Some("the linear `prior` does not match the models and the embedding".to_owned())
        } else if !all_finite(&model.values.0) {
            Some("a training vector holds a non-finite value".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(meta.damaged(path, problem));
        }
        let index = Index::from_csr(dim, &model.indptr.0, &model.indices.0, &model.values.0)
            .ok_or_else(|| meta.damaged(path, "the training rows are not CSR rows of the embedding"))?;
        Ok(Knn { model, index })
    }

    fn scores(&self, v: &[(u32, f32)]) -> Vec<f32> {
        let m = &self.model;
        let nn = self.index.nearest(v, m.n_neighbors, None);
        estimate(&nn, &m.scores.0, m.models, &m.prior(v), m.lambda, m.weights)
    }
}

impl Fit for Knn {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, hparams: &Hparams) -> Result<()> {
        if !(1..=MAX_NEIGHBORS).contains(&hparams.n_neighbors) {
            return Err(meta.config.key_error(
                "hparam.n_neighbors",
                format!("must be between 1 and {MAX_NEIGHBORS}, found {}", hparams.n_neighbors),
            ));
        }
        if !(hparams.prior_c > 0.0 && hparams.prior_c.is_finite()) {
            return Err(meta.config.key_error("hparam.prior_C", "must be a positive number"));
        }
        if let Shrinkage::Fixed(l) = hparams.shrinkage {
            if !(l >= 0.0 && l.is_finite()) {
                return Err(meta.config.key_error("hparam.shrinkage", "must be `auto` or a non-negative number"));
            }
        }
        Ok(())
    }

    fn fit(meta: &MetaRouter, hparams: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let p = prepare(meta, progress)?;
        let models = p.set.models.len();
        let (mut indptr, mut indices, mut values) = (vec![0u32], Vec::new(), Vec::new());
        let rows: Vec<Vec<(u32, f32)>> = p.x.clone();
        for r in &rows {
            for &(j, v) in r {
                indices.push(j);
                values.push(v);
            }
            indptr.push(indices.len() as u32);
        }
        let scores: Vec<f32> = p.set.scores.iter().flatten().copied().collect();
        let means = p.set.model_means();
        let h = hparams;
        let index = Index::from_csr(p.embedder.dim(), &indptr, &indices, &values)
            .ok_or_else(|| Error::router("knnrouter", "the training embeddings are not CSR rows"))?;

        // Leave-one-out: each training query routed by its neighbours among the others.
        progress.begin(rows.len() as u64, "leave-one-out neighbours");
        let neighbours: Vec<Vec<(usize, f32)>> =
            par_chunks("knnrouter: finding neighbours", &(0..rows.len()).collect::<Vec<_>>(), |part: &[usize]| {
                let out: Vec<Vec<(usize, f32)>> =
                    part.iter().map(|&i| index.nearest(&rows[i], h.n_neighbors, Some(i))).collect();
                progress.advance(part.len() as u64);
                Ok(out)
            })?;
        progress.finish();
        // Priors: for leave-one-out, each training query's from a regression fitted without it.
        let (prior, loo_priors) = match h.prior {
            PriorKind::Mean => (None, vec![means.clone(); rows.len()]),
            PriorKind::Linear => {
                let dim = p.embedder.dim();
                let fit = |rows: &[usize]| {
                    linear::fit_columns(&p.x, &p.set.scores, rows, dim, Loss::Logistic, 1.0 / h.prior_c, PRIOR_MAX_ITER)
                };
                progress.begin(PRIOR_FOLDS as u64 + 1, "fitting the linear prior");
                let mut loo_priors = vec![Vec::new(); rows.len()];
                for fold in 0..PRIOR_FOLDS {
                    let (held, kept): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|i| i % PRIOR_FOLDS == fold);
                    let fold_prior = LinearPrior::new(fit(&kept));
                    for i in held {
                        loo_priors[i] = fold_prior.predict(&rows[i]);
                    }
                    progress.advance(1);
                }
                let prior = LinearPrior::new(fit(&(0..rows.len()).collect::<Vec<_>>()));
                progress.advance(1);
                progress.finish();
                (Some(prior), loo_priors)
            }
        };
        let loo = |lambda: f32| -> f64 {
            let mut total = 0.0f64;
            for (i, nn) in neighbours.iter().enumerate() {
                let est = estimate(nn, &scores, models, &loo_priors[i], lambda, h.weights);
                let row = &p.set.scores[i];
                let pick = (0..models)
                    .filter(|&m| !row[m].is_nan())
                    .max_by(|&a, &b| est[a].total_cmp(&est[b]).then(b.cmp(&a)));
                total += pick.map_or(0.0, |m| f64::from(row[m]));
            }
            total / neighbours.len().max(1) as f64
        };
        let (lambda, loo_score) = match h.shrinkage {
            Shrinkage::Fixed(l) => (l, loo(l)),
            Shrinkage::Auto(_) => LAMBDAS
                .iter()
                .map(|&l| (l, loo(l)))
                .fold((0.0, f64::MIN), |best, cur| if cur.1 > best.1 { cur } else { best }),
        };
        let n = rows.len();
        let model = SavedModel {
            embedder: p.spec,
            n_neighbors: h.n_neighbors,
            weights: h.weights,
            lambda,
            models,
            indptr: U32s(indptr),
            indices: U32s(indices),
            values: F32s(values),
            scores: F32s(scores),
            means,
            prior,
        };
        Ok(Fitted {
            model,
            metrics: vec![
                ("training queries".into(), n.to_string()),
                ("embedder".into(), p.embedder.id()),
                (
                    "shrinkage lambda".into(),
                    format!("{lambda} ({})", if matches!(h.shrinkage, Shrinkage::Auto(_)) { "auto" } else { "fixed" }),
                ),
                ("prior".into(), format!("{:?}", h.prior)),
                ("leave-one-out mean score".into(), format!("{loo_score:.4}")),
            ],
        })
    }
}

llmrouter_core::register_router! {
    router: KnnRouter,
    name: "knnrouter",
    summary: "k nearest training queries by embedding; per-model scores shrunk toward a linear prior; cost-aware",
    docs: include_str!("../README.md"),
    trainer: KnnTrainer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmrouter_core::rng::SplitMix64;

    /// The reference: sort every row.
    fn top_k_by_sorting(sims: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
        let mut all: Vec<(usize, f32)> =
            sims.iter().enumerate().filter(|&(i, _)| Some(i) != exclude).map(|(i, &s)| (i, s)).collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn top_k_is_sorting_every_row_with_ties_to_the_lower_row() {
        let mut rng = SplitMix64::new(7);
        for n in [0, 1, 2, 5, 40, 41, 300] {
            // Few distinct values, so that ties are everywhere; and distinct ones.
            for distinct in [3, 1000] {
                let sims: Vec<f32> = (0..n).map(|_| rng.below(distinct) as f32 / 7.0).collect();
                for k in [1, 2, 5, 20, 400] {
                    for exclude in [None, Some(0), Some(n / 2)] {
                        assert_eq!(top_k(&sims, k, exclude), top_k_by_sorting(&sims, k, exclude), "n {n} k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_rows_are_refused() {
        assert!(Index::from_csr(4, &[0, 2], &[1, 9], &[0.5, 0.5]).is_none());
        assert!(Index::from_csr(4, &[0, 3], &[1, 2], &[0.5, 0.5]).is_none());
        assert!(Index::from_csr(4, &[], &[], &[]).is_none());
        let index = Index::from_csr(4, &[0, 2, 3], &[1, 3, 1], &[0.6, 0.8, 1.0]).expect("CSR");
        assert!(matches!(index.post_rows, PostingRows::Narrow(_)));
        assert_eq!(index.similarities(&[(1, 0.5), (3, 1.0)]), vec![0.5 * 0.6 + 0.8, 0.5]);
    }
}
