//! A one-hidden-layer perceptron over sparse inputs with a sigmoid output, trained with AdamW on
//! binary cross-entropy. Small enough to read in one sitting; deterministic for a given seed.

use llmrouter_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// `sigmoid(w2 . relu(W1 x + b1) + b2)` for a sparse `x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    /// Input dimension.
    pub inputs: usize,
    /// Hidden units.
    pub hidden: usize,
    /// `inputs x hidden`, row `i` holds the weights from input `i`.
    pub w1: Vec<f32>,
    /// Hidden biases.
    pub b1: Vec<f32>,
    /// Output weights.
    pub w2: Vec<f32>,
    /// Output bias.
    pub b2: f32,
}

impl Mlp {
    /// Random initialisation (normal, scaled for L2-normalised sparse inputs).
    pub fn new(inputs: usize, hidden: usize, rng: &mut SplitMix64) -> Self {
        let w1 = (0..inputs * hidden).map(|_| (rng.normal() * 0.1) as f32).collect();
        let w2 = (0..hidden).map(|_| (rng.normal() / (hidden as f64).sqrt()) as f32).collect();
        Mlp { inputs, hidden, w1, b1: vec![0.0; hidden], w2, b2: 0.0 }
    }

    fn hidden_layer(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let mut h = self.b1.clone();
        for &(i, v) in x {
            let row = &self.w1[i as usize * self.hidden..(i as usize + 1) * self.hidden];
            for (hj, w) in h.iter_mut().zip(row) {
                *hj += v * w;
            }
        }
        for hj in &mut h {
            *hj = hj.max(0.0);
        }
        h
    }

    fn logit(&self, h: &[f32]) -> f32 {
        self.b2 + h.iter().zip(&self.w2).map(|(a, b)| a * b).sum::<f32>()
    }

    /// The predicted probability of label 1.
    pub fn predict(&self, x: &[(u32, f32)]) -> f32 {
        sigmoid(self.logit(&self.hidden_layer(x)))
    }

    /// Mean binary cross-entropy over `data`.
    pub fn mean_loss(&self, data: &[(Vec<(u32, f32)>, f32)]) -> f32 {
        data.iter().map(|(x, y)| bce(self.logit(&self.hidden_layer(x)), *y)).sum::<f32>() / data.len().max(1) as f32
    }

    /// One AdamW step on a mini-batch; returns its mean loss.
    pub fn train_step(&mut self, batch: &[&(Vec<(u32, f32)>, f32)], opt: &mut Adam) -> f32 {
        let n = batch.len() as f32;
        let mut g =
            Grads { w1: vec![0.0; self.w1.len()], b1: vec![0.0; self.hidden], w2: vec![0.0; self.hidden], b2: 0.0 };
        let mut loss = 0.0;
        for (x, y) in batch {
            let h = self.hidden_layer(x);
            let z = self.logit(&h);
            loss += bce(z, *y);
            let dz = (sigmoid(z) - y) / n;
            g.b2 += dz;
            for j in 0..self.hidden {
                g.w2[j] += dz * h[j];
                let dh = if h[j] > 0.0 { dz * self.w2[j] } else { 0.0 };
                if dh != 0.0 {
                    g.b1[j] += dh;
                    for &(i, v) in x {
                        g.w1[i as usize * self.hidden + j] += dh * v;
                    }
                }
            }
        }
        opt.step(self, &g);
        loss / n
    }
}

struct Grads {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: f32,
}

/// AdamW state for an [`Mlp`].
pub struct Adam {
    lr: f32,
    weight_decay: f32,
    t: i32,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    /// Fresh optimiser state for `mlp`.
    pub fn new(mlp: &Mlp, lr: f32, weight_decay: f32) -> Self {
        let n = mlp.w1.len() + 2 * mlp.hidden + 1;
        Adam { lr, weight_decay, t: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }

    fn step(&mut self, mlp: &mut Mlp, g: &Grads) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        let (lr, wd) = (self.lr, self.weight_decay);
        let params =
            mlp.w1.iter_mut().chain(mlp.b1.iter_mut()).chain(mlp.w2.iter_mut()).chain(std::iter::once(&mut mlp.b2));
        let grads = g.w1.iter().chain(&g.b1).chain(&g.w2).chain(std::iter::once(&g.b2));
        for (((p, gi), m), v) in params.zip(grads).zip(&mut self.m).zip(&mut self.v) {
            *m = B1 * *m + (1.0 - B1) * gi;
            *v = B2 * *v + (1.0 - B2) * gi * gi;
            *p -= lr * ((*m / c1) / ((*v / c2).sqrt() + 1e-8) + wd * *p);
        }
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Binary cross-entropy from a logit, computed stably.
fn bce(z: f32, y: f32) -> f32 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_problem() {
        let mut rng = SplitMix64::new(3);
        let mut mlp = Mlp::new(8, 4, &mut rng);
        let data: Vec<(Vec<(u32, f32)>, f32)> =
            (0..64).map(|i| if i % 2 == 0 { (vec![(1, 1.0)], 1.0) } else { (vec![(5, 1.0)], 0.0) }).collect();
        let before = mlp.mean_loss(&data);
        let mut opt = Adam::new(&mlp, 0.05, 0.0);
        for _ in 0..50 {
            let batch: Vec<_> = data.iter().collect();
            mlp.train_step(&batch, &mut opt);
        }
        assert!(mlp.mean_loss(&data) < before / 4.0);
        assert!(mlp.predict(&[(1, 1.0)]) > 0.9 && mlp.predict(&[(5, 1.0)]) < 0.1);
    }

    #[test]
    fn bce_is_stable_for_large_logits() {
        assert!(bce(100.0, 1.0) < 1e-6 && (bce(-100.0, 1.0) - 100.0).abs() < 1e-3);
    }
}
