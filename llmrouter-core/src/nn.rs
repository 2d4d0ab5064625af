//! Training pieces shared by the neural routers (feature `nn`): candle tensors for sparse
//! inputs, seeded parameter initialisation, and error conversion.
//!
//! Hashed TF-IDF embeddings have tens of thousands of dimensions but about a hundred non-zeros
//! per query, so the first layer of a network is computed as a gather: the rows of the weight
//! matrix named by a query's non-zero indices, scaled by their values and summed
//! ([`sparse_matmul`]). Gradients flow through `index_select` / `index_add` as usual.

pub use candle_core;
pub use candle_nn;

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// A candle error as a core error.
pub fn err(e: candle_core::Error) -> Error {
    Error::router("nn", format!("tensor computation failed: {e}"))
}

/// A mini-batch of sparse rows, ready for [`sparse_matmul`].
pub struct SparseBatch {
    indices: Tensor,
    values: Tensor,
    segments: Tensor,
    rows: usize,
}

impl SparseBatch {
    /// Packs `rows` (sorted `(index, value)` pairs) on `device`.
    pub fn new(rows: &[&[(u32, f32)]], device: &Device) -> Result<Self> {
        let total: usize = rows.iter().map(|r| r.len()).sum();
        let (mut idx, mut val, mut seg) =
            (Vec::with_capacity(total), Vec::with_capacity(total), Vec::with_capacity(total));
        for (r, row) in rows.iter().enumerate() {
            for &(j, v) in *row {
                idx.push(j);
                val.push(v);
                seg.push(r as u32);
            }
        }
        if idx.is_empty() {
            // An all-empty batch still needs one entry: a zero at index 0 of row 0.
            idx.push(0);
            val.push(0.0);
            seg.push(0);
        }
        let n = idx.len();
        Ok(SparseBatch {
            indices: Tensor::from_vec(idx, n, device).map_err(err)?,
            values: Tensor::from_vec(val, (n, 1), device).map_err(err)?,
            segments: Tensor::from_vec(seg, n, device).map_err(err)?,
            rows: rows.len(),
        })
    }
}

/// `X W` for a sparse batch `X` (rows x D) and dense `W` (D x H).
pub fn sparse_matmul(x: &SparseBatch, w: &Tensor) -> Result<Tensor> {
    let h = w.dim(1).map_err(err)?;
    let gathered = w.index_select(&x.indices, 0).map_err(err)?.broadcast_mul(&x.values).map_err(err)?;
    let zeros = Tensor::zeros((x.rows, h), DType::F32, w.device()).map_err(err)?;
    zeros.index_add(&x.segments, &gathered, 0).map_err(err)
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
    fn sparse_matmul_equals_dense_product() {
        let dev = Device::Cpu;
        let w = Tensor::from_vec((0..12).map(|x| x as f32).collect::<Vec<_>>(), (4, 3), &dev).expect("w");
        let rows: Vec<Vec<(u32, f32)>> = vec![vec![(0, 1.0), (2, 0.5)], vec![], vec![(3, 2.0)]];
        let refs: Vec<&[(u32, f32)]> = rows.iter().map(Vec::as_slice).collect();
        let out = values(&sparse_matmul(&SparseBatch::new(&refs, &dev).expect("batch"), &w).expect("mm")).expect("v");
        // Row 0: w0 + 0.5 w2 = [0,1,2] + [3,3.5,4]; row 1: 0; row 2: 2 w3 = [18,20,22].
        assert_eq!(out, vec![3.0, 4.5, 6.0, 0.0, 0.0, 0.0, 18.0, 20.0, 22.0]);
    }
}
