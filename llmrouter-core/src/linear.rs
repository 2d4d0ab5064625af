//! Linear models on sparse inputs, trained by seeded SGD: the building block of svmrouter and
//! hybrid_llm.
//!
//! - [`Loss::Hinge`]: a linear SVM (Pegasos schedule, `lambda = 1 / (C n)`), labels from targets
//!   `>= 0.5`; its margins are turned into probabilities by [`platt`] scaling.
//! - [`Loss::Logistic`]: logistic regression on soft targets in [0, 1] (the prediction is then
//!   an estimate of the expected target).
//!
//! Weights are stored as `scale * v` so that L2 shrinkage costs O(1) per step on sparse rows.

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
