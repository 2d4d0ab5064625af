//! Training pieces shared by the neural routers (feature `nn`): the sparse first layer, candle
//! tensors for sparse inputs, seeded parameter initialisation, and error conversion.
//!
//! Hashed TF-IDF embeddings have tens of thousands of dimensions but about a hundred non-zeros
//! per query, so the first layer of a network is computed as a gather: the rows of the weight
//! matrix named by a query's non-zero indices, scaled by their values and summed.
//!
//! [`SparseLayer`] keeps that layer outside candle: its output enters the candle graph as a
//! leaf [`Var`], whose gradient (batch x outputs) comes back from `backward` and is scattered to
//! the weight rows the batch touched, which alone get an Adam step ("lazy" Adam, as
//! TensorFlow's LazyAdam or PyTorch's SparseAdam). A dense optimiser over the whole matrix would
//! cost `inputs x outputs` work per step for a few hundred touched rows.

pub use candle_core;
pub use candle_nn;

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// A candle error as a core error.
pub fn err(e: candle_core::Error) -> Error {
    Error::router("nn", format!("tensor computation failed: {e}"))
}

/// Adam settings of a [`SparseLayer`] (candle's `ParamsAdamW` meaning: decoupled weight decay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseAdam {
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay: each step multiplies a row by `1 - lr * weight_decay`.
    pub weight_decay: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
}

impl SparseAdam {
    /// `lr` and `weight_decay` with candle's defaults for the rest (0.9, 0.999, 1e-8).
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        SparseAdam { lr, weight_decay, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// A dense `inputs x outputs` weight matrix applied to sparse rows, trained by lazy Adam.
///
/// Per step, only the rows named by the batch's non-zero indices are touched: their Adam moments
/// are updated with their gradient, and the weight decay they missed while untouched is applied
/// at once (`(1 - lr * wd)^steps`), so decay matches dense AdamW exactly; the momentum of
/// untouched rows is not applied (the lazy approximation).
#[derive(Debug, Clone)]
pub struct SparseLayer {
    inputs: usize,
    outputs: usize,
    w: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    /// The step count up to which each row's decay has been applied.
    synced: Vec<u64>,
    step: u64,
    adam: SparseAdam,
}

impl SparseLayer {
    /// A layer with weights drawn from `N(0, std^2)` by `rng`, in row-major order.
    pub fn new(rng: &mut SplitMix64, inputs: usize, outputs: usize, std: f64, adam: SparseAdam) -> Self {
        let w = (0..inputs * outputs).map(|_| (rng.normal() * std) as f32).collect();
        SparseLayer {
            inputs,
            outputs,
            w,
            m: vec![0.0; inputs * outputs],
            v: vec![0.0; inputs * outputs],
            synced: vec![0; inputs],
            step: 0,
            adam,
        }
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    fn decay(&self, rows: u64) -> f32 {
        (1.0 - self.adam.lr * self.adam.weight_decay).powf(rows as f64) as f32
    }

    /// `X W` for sparse rows `x` (indices below `inputs`): `x.len() x outputs`, row-major.
    pub fn forward(&self, x: &[&[(u32, f32)]]) -> Vec<f32> {
        let o = self.outputs;
        let mut out = vec![0.0f32; x.len() * o];
        for (row, out) in x.iter().zip(out.chunks_mut(o)) {
            for &(j, val) in *row {
                let j = j as usize;
                // Decay not yet applied to this row scales it on the fly.
                let scale = val * self.decay(self.step - self.synced[j]);
                for (acc, w) in out.iter_mut().zip(&self.w[j * o..(j + 1) * o]) {
                    *acc += scale * w;
                }
            }
        }
        out
    }

    /// One Adam step given `grad`, the loss gradient with respect to [`forward`](Self::forward)'s
    /// output for the same `x`.
    pub fn step(&mut self, x: &[&[(u32, f32)]], grad: &[f32]) {
        let o = self.outputs;
        // Gradient of the touched rows: sum over the batch of value * output gradient.
        let mut touched: Vec<u32> = x.iter().flat_map(|r| r.iter().map(|e| e.0)).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut g = vec![0.0f32; touched.len() * o];
        for (row, grad) in x.iter().zip(grad.chunks(o)) {
            for &(j, val) in *row {
                let k = touched.binary_search(&j).unwrap_or_default();
                for (acc, gr) in g[k * o..(k + 1) * o].iter_mut().zip(grad) {
                    *acc += val * gr;
                }
            }
        }
        self.step += 1;
        let a = self.adam;
        let t = self.step as i32;
        let (b1, b2) = (a.beta1 as f32, a.beta2 as f32);
        let step_size = (a.lr / (1.0 - a.beta1.powi(t))) as f32;
        let v_correction = (1.0 - a.beta2.powi(t)) as f32;
        for (k, &j) in touched.iter().enumerate() {
            let j = j as usize;
            let decay = self.decay(self.step - self.synced[j]);
            self.synced[j] = self.step;
            let range = j * o..(j + 1) * o;
            let rows = self.w[range.clone()].iter_mut().zip(&mut self.m[range.clone()]).zip(&mut self.v[range]);
            for (((w, m), v), g) in rows.zip(&g[k * o..(k + 1) * o]) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w = *w * decay - step_size * *m / ((*v / v_correction).sqrt() + a.eps as f32);
            }
        }
    }

    /// The current weights, `inputs x outputs` row-major, with all pending decay applied.
    pub fn weights(&self) -> Vec<f32> {
        let o = self.outputs;
        let mut w = self.w.clone();
        for (j, row) in w.chunks_mut(o).enumerate() {
            let decay = self.decay(self.step - self.synced[j]);
            row.iter_mut().for_each(|x| *x *= decay);
        }
        w
    }

    /// `(inputs, outputs)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.inputs, self.outputs)
    }
}

/// The output of a [`SparseLayer`] as a candle leaf whose gradient `backward` will report.
pub fn leaf(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::from_vec(values, (rows, cols), device).map_err(err)?).map_err(err)
}

/// The gradient of `leaf` in `grads` (zeros when the loss does not depend on it), flattened.
pub fn leaf_grad(grads: &candle_core::backprop::GradStore, leaf: &Var) -> Result<Vec<f32>> {
    match grads.get(leaf.as_tensor()) {
        Some(g) => values(g),
        None => Ok(vec![0.0; leaf.as_tensor().elem_count()]),
    }
}

/// A trainable parameter of `shape` with entries drawn from `N(0, std^2)` by a seeded generator.
pub fn param(rng: &mut SplitMix64, shape: &[usize], std: f64, device: &Device) -> Result<Var> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(data, shape, device).map_err(err)?).map_err(err)
}

/// A zero-initialised trainable parameter.
pub fn zeros(shape: &[usize], device: &Device) -> Result<Var> {
    Var::zeros(shape, DType::F32, device).map_err(err)
}

/// A tensor's values, flattened, row-major.
pub fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all().map_err(err)?.to_vec1::<f32>().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_layer_matches_dense_adamw() {
        // Two steps on one row touching inputs 0 and 2 of 3: the touched rows must follow candle's
        // AdamW exactly; the untouched row only decays.
        use candle_nn::{AdamW, Optimizer, ParamsAdamW};
        let dev = Device::Cpu;
        let adam = SparseAdam::new(0.1, 0.5);
        let mut layer = SparseLayer::new(&mut SplitMix64::new(3), 3, 2, 1.0, adam);
        let dense = Var::from_tensor(&Tensor::from_vec(layer.weights(), (3, 2), &dev).expect("w")).expect("var");
        let params = ParamsAdamW { lr: 0.1, weight_decay: 0.5, ..Default::default() };
        let mut opt = AdamW::new(vec![dense.clone()], params).expect("opt");
        let row: &[(u32, f32)] = &[(0, 1.0), (2, 0.5)];
        let x = Tensor::from_vec(vec![1.0f32, 0.0, 0.5], (1, 3), &dev).expect("x");
        let target = Tensor::from_vec(vec![1.0f32, -1.0], (1, 2), &dev).expect("t");
        for _ in 0..2 {
            // Loss: squared error of X W against the target.
            let out = leaf(layer.forward(&[row]), 1, 2, &dev).expect("leaf");
            let loss = (out.as_tensor() - &target).expect("d").sqr().expect("sq").sum_all().expect("sum");
            let g = leaf_grad(&loss.backward().expect("backward"), &out).expect("grad");
            layer.step(&[row], &g);
            let loss = (x.matmul(dense.as_tensor()).expect("mm") - &target).expect("d").sqr().expect("sq");
            opt.backward_step(&loss.sum_all().expect("sum")).expect("step");
        }
        let (a, b) = (layer.weights(), values(dense.as_tensor()).expect("v"));
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5), "{a:?} vs {b:?}");
    }
}
