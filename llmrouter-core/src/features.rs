//! A simple deterministic text featurizer: word unigrams and bigrams plus character 3- and
//! 4-grams, hashed with FNV-1a into a fixed number of buckets, sublinear term frequency
//! (`1 + ln tf`), L2-normalised, returned sparse.
//!
//! It needs no files and gives the same vector on every platform, so a router that uses it can
//! route plain text and save nothing but its dimension.

use crate::rng::fnv1a64;

/// Hashed bag-of-n-grams featurizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HashedFeaturizer {
    /// Number of hash buckets (the dense dimension).
    pub dim: u32,
}

impl HashedFeaturizer {
    /// A featurizer with `dim` buckets (`dim >= 16`).
    pub fn new(dim: u32) -> Self {
        HashedFeaturizer { dim: dim.max(16) }
    }

    /// Sparse features of `text`: `(bucket, value)` sorted by bucket, L2 norm 1 (empty for
    /// text without letters or digits).
    pub fn sparse(&self, text: &str) -> Vec<(u32, f32)> {
        let mut out = self.counts(text);
        normalize(&mut out);
        out
    }

    /// Sublinear term frequencies `1 + ln(count)` per bucket, sorted by bucket, not normalised.
    pub fn counts(&self, text: &str) -> Vec<(u32, f32)> {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let mut buckets: Vec<u32> = Vec::with_capacity(words.len() * 8);
        // The seed of each n-gram kind, `fnv1a64(&[kind])`, computed once.
        let seeds = [b'w', b'b', b'c' + 3, b'c' + 4].map(|k| fnv1a64(&[k]));
        let dim = u64::from(self.dim);
        let mut push = |seed: u64, parts: &[&str]| {
            let mut h = seed;
            for p in parts {
                h ^= fnv1a64(p.as_bytes());
                h = h.wrapping_mul(0x0000_0100_0000_01B3).rotate_left(17);
            }
            buckets.push((h % dim) as u32);
        };
        // Character n-grams are hashed as UTF-8 slices of the padded word ` word `, with no
        // allocation per gram: the same bytes as collecting the chars into a string.
        let mut padded = String::new();
        let mut bounds: Vec<usize> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            push(seeds[0], &[w]);
            if let Some(next) = words.get(i + 1) {
                push(seeds[1], &[w, next]);
            }
            padded.clear();
            padded.push(' ');
            padded.push_str(w);
            padded.push(' ');
            bounds.clear();
            bounds.extend(padded.char_indices().map(|(at, _)| at));
            bounds.push(padded.len());
            let chars = bounds.len() - 1;
            for (n, seed) in [(3usize, seeds[2]), (4, seeds[3])] {
                for start in 0..(chars + 1).saturating_sub(n) {
                    push(seed, &[&padded[bounds[start]..bounds[start + n]]]);
                }
            }
        }
        buckets.sort_unstable();
        let mut out: Vec<(u32, f32)> = Vec::new();
        for b in buckets {
            match out.last_mut() {
                Some((last, count)) if *last == b => *count += 1.0,
                _ => out.push((b, 1.0)),
            }
        }
        for (_, v) in &mut out {
            *v = 1.0 + v.ln();
        }
        out
    }
}

/// Scales sparse `values` to unit L2 norm (no-op for all zeros).
pub fn normalize(values: &mut [(u32, f32)]) {
    let norm = values.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, v) in values {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_normalised_sorted_and_stable() {
        let f = HashedFeaturizer::new(1024);
        let a = f.sparse("What is the capital of France?");
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
        let norm: f32 = a.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(a, f.sparse("what is the CAPITAL of france"));
        assert_ne!(a, f.sparse("Solve 2x + 3 = 7 for x."));
        assert!(f.sparse("  ?! ").is_empty());
    }

    #[test]
    fn char_grams_hash_the_utf8_of_each_window() {
        // Multi-byte characters: each 3- or 4-char window must hash as the string of its chars.
        let f = HashedFeaturizer::new(1 << 20);
        let text = "Größe über naïve café";
        let got = f.counts(text);
        let mut want: Vec<u32> = Vec::new();
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let hash = |kind: u8, parts: &[&str]| {
            let mut h = fnv1a64(&[kind]);
            for p in parts {
                h ^= fnv1a64(p.as_bytes());
                h = h.wrapping_mul(0x0000_0100_0000_01B3).rotate_left(17);
            }
            (h % (1 << 20)) as u32
        };
        for (i, w) in words.iter().enumerate() {
            want.push(hash(b'w', &[w]));
            if let Some(next) = words.get(i + 1) {
                want.push(hash(b'b', &[w, next]));
            }
            let padded: Vec<char> = format!(" {w} ").chars().collect();
            for n in [3usize, 4] {
                for gram in padded.windows(n) {
                    want.push(hash(b'c' + n as u8, &[&gram.iter().collect::<String>()]));
                }
            }
        }
        want.sort_unstable();
        want.dedup();
        assert_eq!(got.iter().map(|(b, _)| *b).collect::<Vec<_>>(), want);
    }
}
