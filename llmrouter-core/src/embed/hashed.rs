//! The `hashed` embedding backend (the default): [`HashedFeaturizer`], a deterministic text
//! featurizer (word unigrams and bigrams plus character 3- and 4-grams, hashed with FNV-1a into a
//! fixed number of buckets, sublinear term frequency `1 + ln tf`, L2-normalised, sparse), and
//! [`HashedTfidf`], the same features weighted by IDF fitted on the training queries
//! (`ln((1 + n) / (1 + df)) + 1`) and normalised again.
//!
//! It needs no files and gives the same vector on every platform; its fitted state (the IDF
//! vector) is saved with the model.

use crate::embed::{BackendContext, EMBEDDING_BACKENDS, Embedder, EmbedderSpec, EmbeddingBackend};
use crate::error::{Error, Result};
use crate::learn::par_chunks;
use crate::progress::Progress;
use crate::rng::fnv1a64;

#[allow(unsafe_code)] // a linkme registration: a static in a link section
#[linkme::distributed_slice(EMBEDDING_BACKENDS)]
static HASHED: EmbeddingBackend = EmbeddingBackend {
    name: "hashed",
    summary: "hashed word and character n-grams, TF-IDF weighted (default; no files needed)",
    fit: fit_backend,
    load: load_backend,
};

fn fit_backend(ctx: &BackendContext<'_>, texts: &[&str]) -> Result<(EmbedderSpec, Box<dyn Embedder>)> {
    let dim = ctx.settings.dim;
    let tfidf = HashedTfidf::fit(dim, texts);
    let spec = EmbedderSpec { backend: "hashed".into(), dim, idf: Some(tfidf.idf.clone()), state: Default::default() };
    Ok((spec, Box::new(tfidf)))
}

fn load_backend(ctx: &BackendContext<'_>, spec: &EmbedderSpec) -> Result<Box<dyn Embedder>> {
    let dim = spec.dim;
    if dim != ctx.settings.dim {
        return Err(ctx.mismatch(format!("trained with embedding.dim {dim} but the config says {}", ctx.settings.dim)));
    }
    let idf = spec.idf.as_deref().unwrap_or_default();
    if idf.len() != dim {
        return Err(Error::model(
            ctx.model_path,
            format!("corrupted embedder state: {} IDF weights for dim {dim}", idf.len()),
        ));
    }
    Ok(Box::new(HashedTfidf { featurizer: HashedFeaturizer::new(dim as u32), idf: idf.to_vec() }))
}

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

/// The `hashed` backend.
#[derive(Debug, Clone, PartialEq)]
pub struct HashedTfidf {
    featurizer: HashedFeaturizer,
    /// IDF weight per bucket.
    pub idf: Vec<f32>,
}

impl HashedTfidf {
    /// Fits IDF weights on `texts`: `ln((1 + n) / (1 + df)) + 1` per bucket (scikit-learn's smooth IDF).
    pub fn fit(dim: usize, texts: &[&str]) -> Self {
        let featurizer = HashedFeaturizer::new(dim as u32);
        let dim = featurizer.dim as usize;
        let mut df = vec![0u32; dim];
        for t in texts {
            for (b, _) in featurizer.counts(t) {
                df[b as usize] += 1;
            }
        }
        let n = texts.len() as f64;
        let idf = df.iter().map(|&d| (((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0) as f32).collect();
        HashedTfidf { featurizer, idf }
    }

    /// The sparse TF-IDF vector of `text` (sorted by bucket, unit norm).
    pub fn sparse(&self, text: &str) -> Vec<(u32, f32)> {
        let mut v = self.featurizer.counts(text);
        for (b, x) in &mut v {
            *x *= self.idf[*b as usize];
        }
        normalize(&mut v);
        v
    }
}

impl Embedder for HashedTfidf {
    fn id(&self) -> String {
        let mut bytes = Vec::with_capacity(self.idf.len() * 4);
        for x in &self.idf {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        format!("hashed-{}-{:016x}", self.idf.len(), fnv1a64(&bytes))
    }

    fn dim(&self) -> usize {
        self.idf.len()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let mut dense = vec![0.0f32; self.idf.len()];
        for (b, x) in self.sparse(text) {
            dense[b as usize] = x;
        }
        Ok(dense)
    }

    fn is_sparse(&self) -> bool {
        true
    }

    fn embed_batch_sparse(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<(u32, f32)>>> {
        par_chunks("embedding: hashed", texts, |part| {
            let out: Vec<Vec<(u32, f32)>> = part.iter().map(|t| self.sparse(t)).collect();
            progress.advance(part.len() as u64);
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: &[&str] = &["What is the capital of France?", "Prove that there are infinitely many primes.", "hello"];

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

    #[test]
    fn hashed_vectors_are_unit_norm_and_fixed() {
        let e = HashedTfidf::fit(256, TEXTS);
        let v = e.embed("What is the capital of Peru?").expect("embed");
        assert_eq!(v.len(), 256);
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        // Rare buckets weigh more than common ones.
        let df_common = e.idf.iter().cloned().fold(f32::INFINITY, f32::min);
        let df_rare = e.idf.iter().cloned().fold(0.0, f32::max);
        assert!(df_rare > df_common);
        // The dense and the sparse vector agree (tests/tests/hashed_pinned.rs pins the buckets).
        let first = v.iter().position(|x| *x != 0.0).expect("non-zero");
        assert_eq!(first, e.sparse("What is the capital of Peru?")[0].0 as usize);
    }
}
