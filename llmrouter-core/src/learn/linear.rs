//! Linear models on sparse inputs: the building block of svmrouter and hybrid_llm.
//!
//! Two solvers:
//! - [`train`]: seeded SGD. [`Loss::Hinge`] is a linear SVM (Pegasos schedule,
//!   `lambda = 1 / (C n)`), labels from targets `>= 0.5`; its margins are turned into
//!   probabilities by [`platt`] scaling. [`Loss::Logistic`] is logistic regression on soft
//!   targets in [0, 1] (the prediction is then an estimate of the expected target). Weights are
//!   stored as `scale * v` so that L2 shrinkage costs O(1) per step on sparse rows.
//! - [`fit`]: the exact minimiser of `sum_i loss_i + lambda / 2 * |w|^2` (bias not penalised),
//!   found by L-BFGS; deterministic without a seed. With `lambda = 1 / C` this is scikit-learn's
//!   `LogisticRegression(C)` ([`Loss::Logistic`]) or `LinearSVC(C)` ([`Loss::SquaredHinge`]).

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Hinge loss (linear SVM).
    Hinge,
    /// Log loss (logistic regression).
    Logistic,
    /// `max(0, 1 - y z)^2` with `y = +-1` from targets `>= 0.5` (scikit-learn's `LinearSVC`).
    SquaredHinge,
}

impl Loss {
    /// Loss and its derivative with respect to the margin `z`, for target `t`.
    fn value_and_slope(self, z: f64, t: f64) -> (f64, f64) {
        match self {
            Loss::Logistic => {
                // softplus(z) - t z, computed stably.
                let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
                (softplus - t * z, sigmoid(z) - t)
            }
            Loss::Hinge | Loss::SquaredHinge => {
                let y = if t >= 0.5 { 1.0 } else { -1.0 };
                let gap = (1.0 - y * z).max(0.0);
                if self == Loss::Hinge { (gap, if gap > 0.0 { -y } else { 0.0 }) } else { (gap * gap, -2.0 * y * gap) }
            }
        }
    }
}

/// A trained linear function `w . x + b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Weights.
    pub w: Vec<f32>,
    /// Bias.
    pub b: f32,
}

impl Linear {
    /// `w . x + b` for sparse `x`.
    pub fn margin(&self, x: &[(u32, f32)]) -> f32 {
        self.b + x.iter().map(|&(j, v)| self.w[j as usize] * v).sum::<f32>()
    }
}

/// Trains on rows `x` (sparse) with `targets` in [0, 1] (NaN rows are skipped).
/// `lambda` is the L2 strength per example; `epochs` passes in a seeded order.
pub fn train(
    x: &[Vec<(u32, f32)>],
    targets: &[f32],
    dim: usize,
    loss: Loss,
    lambda: f64,
    epochs: usize,
    seed: u64,
) -> Linear {
    let rows: Vec<usize> = (0..x.len()).filter(|&i| !targets[i].is_nan()).collect();
    let mut v = vec![0.0f64; dim];
    let mut scale = 1.0f64;
    let mut b = 0.0f64;
    let mut rng = SplitMix64::new(seed);
    let mut order = rows.clone();
    let mut t = 0usize;
    // Offset the Pegasos step so the first steps are not huge.
    let t0 = (1.0 / lambda.max(1e-12)).min(1e4);
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            t += 1;
            let eta = 1.0 / (lambda * (t as f64 + t0));
            let xi = &x[i];
            let m = scale * xi.iter().map(|&(j, val)| v[j as usize] * f64::from(val)).sum::<f64>() + b;
            let g = match loss {
                Loss::Hinge => {
                    let y = if targets[i] >= 0.5 { 1.0 } else { -1.0 };
                    if y * m < 1.0 { -y } else { 0.0 }
                }
                Loss::Logistic => sigmoid(m) - f64::from(targets[i]),
                Loss::SquaredHinge => loss.value_and_slope(m, f64::from(targets[i])).1,
            };
            scale *= 1.0 - eta * lambda;
            if scale < 1e-9 {
                for w in &mut v {
                    *w *= scale;
                }
                scale = 1.0;
            }
            if g != 0.0 {
                for &(j, val) in xi {
                    v[j as usize] -= eta * g * f64::from(val) / scale;
                }
                b -= eta * g * 0.1;
            }
        }
    }
    Linear { w: v.iter().map(|w| (w * scale) as f32).collect(), b: b as f32 }
}

/// Fits `w, b` minimising `sum_i weight_i * loss(w . x_i + b, t_i) + lambda / 2 * |w|^2` over the
/// rows whose target is not NaN (`weights`: one per row, or `None` for all ones), by L-BFGS to
/// convergence (at most `max_iter` iterations). Deterministic. [`Loss::Hinge`] is not smooth;
/// use [`Loss::SquaredHinge`] instead.
pub fn fit(
    x: &[Vec<(u32, f32)>],
    targets: &[f32],
    weights: Option<&[f32]>,
    dim: usize,
    loss: Loss,
    lambda: f64,
    max_iter: usize,
) -> Linear {
    let rows: Vec<usize> = (0..x.len()).filter(|&i| !targets[i].is_nan()).collect();
    let weight = |i: usize| weights.map_or(1.0, |w| f64::from(w[i]));
    // Only the columns some row uses can move: a column no row touches has a zero loss gradient,
    // so from w = 0 the L2 term keeps it at 0. Fitting over the used columns alone, renumbered in
    // their order, takes the same steps (the dot products add the same terms in the same order)
    // and costs memory and time by the data, not by `dim` (4,194,304 hashed buckets would
    // otherwise mean ten dense L-BFGS vectors of that size a model).
    let mut used: Vec<u32> = rows.iter().flat_map(|&i| x[i].iter().map(|&(j, _)| j)).collect();
    used.sort_unstable();
    used.dedup();
    let cols = used.len();
    let xc: Vec<Vec<(usize, f64)>> = (0..x.len())
        .map(|i| {
            if targets[i].is_nan() {
                return Vec::new();
            }
            x[i].iter().map(|&(j, v)| (used.binary_search(&j).unwrap_or(0), f64::from(v))).collect()
        })
        .collect();
    // Parameters: w (the used columns) then b. Objective and gradient in one pass over the rows.
    let eval = |p: &[f64], grad: &mut [f64]| -> f64 {
        let (w, b) = (&p[..cols], p[cols]);
        let mut f = 0.5 * lambda * w.iter().map(|v| v * v).sum::<f64>();
        for (g, v) in grad[..cols].iter_mut().zip(w) {
            *g = lambda * v;
        }
        grad[cols] = 0.0;
        for &i in &rows {
            let z = b + xc[i].iter().map(|&(c, v)| w[c] * v).sum::<f64>();
            let (l, slope) = loss.value_and_slope(z, f64::from(targets[i]));
            let c = weight(i);
            f += c * l;
            if slope != 0.0 {
                for &(col, v) in &xc[i] {
                    grad[col] += c * slope * v;
                }
                grad[cols] += c * slope;
            }
        }
        f
    };
    let p = lbfgs(vec![0.0; cols + 1], eval, max_iter);
    let mut w = vec![0.0f32; dim];
    for (&j, &v) in used.iter().zip(&p[..cols]) {
        if let Some(slot) = w.get_mut(j as usize) {
            *slot = v as f32;
        }
    }
    Linear { w, b: p[cols] as f32 }
}

/// [`fit`] once per column of `scores` (one column per model, NaN where not measured) on the
/// rows `rows` of `x`, the models spread over all cores. Deterministic: each fit is independent.
pub fn fit_columns(
    x: &[Vec<(u32, f32)>],
    scores: &[Vec<f32>],
    rows: &[usize],
    dim: usize,
    loss: Loss,
    lambda: f64,
    max_iter: usize,
) -> Vec<Linear> {
    let columns = scores.first().map_or(0, Vec::len);
    let xs: Vec<Vec<(u32, f32)>> = rows.iter().map(|&i| x[i].clone()).collect();
    let fit_one = |m: usize| {
        let t: Vec<f32> = rows.iter().map(|&i| scores[i][m]).collect();
        fit(&xs, &t, None, dim, loss, lambda, max_iter)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(columns.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Linear)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let m = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if m >= columns {
                            break out;
                        }
                        out.push((m, fit_one(m)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_by_key(|(m, _)| *m);
    done.into_iter().map(|(_, l)| l).collect()
}

/// Minimises a smooth function by L-BFGS (10 correction pairs, backtracking line search with the
/// Armijo condition), starting at `x`. `eval` returns the value and writes the gradient. Stops
/// when the gradient's largest entry is below `1e-6` times `max(1, |f|)`, when a step no longer
/// lowers the value, or after `max_iter` iterations.
pub fn lbfgs(mut x: Vec<f64>, mut eval: impl FnMut(&[f64], &mut [f64]) -> f64, max_iter: usize) -> Vec<f64> {
    const MEMORY: usize = 10;
    let n = x.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut g = vec![0.0; n];
    let mut f = eval(&x, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = std::collections::VecDeque::new();
    let (mut x_new, mut g_new, mut d) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for _ in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= 1e-6 * f.abs().max(1.0) {
            break;
        }
        // Two-loop recursion: d = -H g.
        d.iter_mut().zip(&g).for_each(|(d, g)| *d = -g);
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(d, y)| *d -= a * y);
            alphas.push(a);
        }
        let gamma = history.back().map_or(1.0 / dot(&g, &g).sqrt().max(1e-12), |(s, y, _)| dot(s, y) / dot(y, y));
        d.iter_mut().for_each(|d| *d *= gamma);
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &d);
            d.iter_mut().zip(s).for_each(|(d, s)| *d += (a - b) * s);
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            history.clear();
            let norm = dot(&g, &g).sqrt().max(1e-12);
            d.iter_mut().zip(&g).for_each(|(d, g)| *d = -g / norm);
            slope = dot(&g, &d);
        }
        let mut step = 1.0;
        let mut f_new = f;
        let mut accepted = false;
        for _ in 0..40 {
            x_new.iter_mut().zip(&x).zip(&d).for_each(|((xn, x), d)| *xn = x + step * d);
            f_new = eval(&x_new, &mut g_new);
            if f_new <= f + 1e-4 * step * slope {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        let decrease = f - f_new;
        f = f_new;
        if decrease <= 1e-12 * f.abs().max(1.0) {
            break;
        }
    }
    x
}

/// Platt scaling: `(a, c)` minimising log loss of `sigmoid(a * margin + c)` against soft targets.
pub fn platt(margins: &[f32], targets: &[f32]) -> (f32, f32) {
    let pairs: Vec<(f64, f64)> =
        margins.iter().zip(targets).filter(|(_, t)| !t.is_nan()).map(|(m, t)| (f64::from(*m), f64::from(*t))).collect();
    if pairs.is_empty() {
        return (1.0, 0.0);
    }
    let (mut a, mut c) = (1.0f64, 0.0f64);
    // Newton's method on the two parameters, with a small ridge for stability.
    for _ in 0..50 {
        let (mut ga, mut gc, mut haa, mut hac, mut hcc) = (1e-3 * a, 0.0, 1e-3, 0.0, 1e-6);
        for &(m, t) in &pairs {
            let p = sigmoid(a * m + c);
            let d = p - t;
            let w = (p * (1.0 - p)).max(1e-9);
            ga += d * m;
            gc += d;
            haa += w * m * m;
            hac += w * m;
            hcc += w;
        }
        let det = haa * hcc - hac * hac;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hcc * ga - hac * gc) / det;
        let dc = (haa * gc - hac * ga) / det;
        a -= da;
        c -= dc;
        if da.abs() + dc.abs() < 1e-9 {
            break;
        }
    }
    (a as f32, c as f32)
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Vec<Vec<(u32, f32)>>, Vec<f32>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let pos = i % 2 == 0;
            x.push(vec![(if pos { 0 } else { 1 }, 1.0), (2, 0.5)]);
            y.push(if pos { 1.0 } else { 0.0 });
        }
        (x, y)
    }

    #[test]
    fn both_losses_separate_separable_data() {
        let (x, y) = data();
        for loss in [Loss::Hinge, Loss::Logistic] {
            let model = train(&x, &y, 3, loss, 1e-3, 20, 1);
            assert!(model.margin(&x[0]) > 0.0 && model.margin(&x[1]) < 0.0, "{loss:?}: {model:?}");
        }
    }

    /// The fit over the used columns is the fit over all of them: the same data spread over
    /// 4,194,304 columns (the largest hashed dim) gives the weights of the 3-column fit in its
    /// columns, and exactly 0 everywhere else.
    #[test]
    fn a_wide_sparse_fit_is_the_narrow_fit_spread_out() {
        let (x, y) = data();
        let spread = |j: u32| [7u32, 1_000_003, 4_194_303][j as usize];
        let wide: Vec<Vec<(u32, f32)>> = x.iter().map(|r| r.iter().map(|&(j, v)| (spread(j), v)).collect()).collect();
        for loss in [Loss::Logistic, Loss::SquaredHinge] {
            let narrow = fit(&x, &y, None, 3, loss, 1.0, 200);
            let broad = fit(&wide, &y, None, 1 << 22, loss, 1.0, 200);
            assert_eq!(broad.w.len(), 1 << 22);
            assert_eq!(narrow.b, broad.b, "{loss:?}");
            for j in 0..3 {
                assert_eq!(narrow.w[j as usize], broad.w[spread(j) as usize], "{loss:?}: column {j}");
            }
            assert_eq!(broad.w.iter().filter(|w| **w != 0.0).count(), narrow.w.iter().filter(|w| **w != 0.0).count());
        }
    }

    #[test]
    fn exact_fit_separates_and_matches_the_optimum() {
        let (x, y) = data();
        for loss in [Loss::Logistic, Loss::SquaredHinge] {
            let model = fit(&x, &y, None, 3, loss, 1.0, 200);
            assert!(model.margin(&x[0]) > 0.0 && model.margin(&x[1]) < 0.0, "{loss:?}: {model:?}");
        }
        // At the optimum the gradient of the penalised log loss vanishes.
        let model = fit(&x, &y, None, 3, Loss::Logistic, 1.0, 500);
        let mut grad = [f64::from(model.w[0]), f64::from(model.w[1]), f64::from(model.w[2]), 0.0];
        for (xi, t) in x.iter().zip(&y) {
            let slope = sigmoid(f64::from(model.margin(xi))) - f64::from(*t);
            for &(j, v) in xi {
                grad[j as usize] += slope * f64::from(v);
            }
            grad[3] += slope;
        }
        assert!(grad.iter().all(|g| g.abs() < 1e-3), "{grad:?}");
    }

    #[test]
    fn lbfgs_minimises_a_quadratic() {
        // f = sum_k (k + 1) (x_k - k)^2
        let x = lbfgs(
            vec![0.0; 5],
            |x, g| {
                let mut f = 0.0;
                for (k, (xk, gk)) in x.iter().zip(g.iter_mut()).enumerate() {
                    let c = (k + 1) as f64;
                    f += c * (xk - k as f64).powi(2);
                    *gk = 2.0 * c * (xk - k as f64);
                }
                f
            },
            100,
        );
        assert!(x.iter().enumerate().all(|(k, v)| (v - k as f64).abs() < 1e-4), "{x:?}");
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let (x, y) = data();
        assert_eq!(train(&x, &y, 3, Loss::Hinge, 1e-3, 5, 7), train(&x, &y, 3, Loss::Hinge, 1e-3, 5, 7));
    }

    #[test]
    fn platt_calibrates_to_the_observed_rate() {
        // Margins carry no information: the calibrated probability must be the base rate.
        let margins = vec![0.0f32; 100];
        let targets: Vec<f32> = (0..100).map(|i| if i < 30 { 1.0 } else { 0.0 }).collect();
        let (a, c) = platt(&margins, &targets);
        let p = sigmoid(f64::from(a) * 0.0 + f64::from(c));
        assert!((p - 0.3).abs() < 0.01, "{p}");
    }
}
