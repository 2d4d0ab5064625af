//! Sparse vectors as sorted `(index, value)` lists: conversion from dense and folding into fewer
//! buckets.

/// The non-zero entries of a dense vector.
pub fn to_sparse(v: &[f32]) -> Vec<(u32, f32)> {
    v.iter().enumerate().filter(|(_, x)| **x != 0.0).map(|(i, x)| (i as u32, *x)).collect()
}

/// Folds a sparse vector into `dim` buckets (index mod `dim`), keeping it sorted.
pub fn fold(x: &[(u32, f32)], dim: usize) -> Vec<(u32, f32)> {
    let mut out: Vec<(u32, f32)> = x.iter().map(|&(j, v)| (j % dim as u32, v)).collect();
    out.sort_by_key(|e| e.0);
    out.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    out
}
