//! RouterDC's training: the dual contrastive losses over mini-batches, the k-means clusters the
//! cluster loss groups queries by, the held-out choice of the best state and the score map.

use std::collections::BTreeMap;

use llmrouter_core::learn::nn::candle_core::{D, Device as CDevice, Tensor, Var};
use llmrouter_core::learn::nn::candle_nn::{AdamW, Optimizer, ParamsAdamW};
use llmrouter_core::learn::nn::{SparseAdam, SparseLayer, err, leaf, leaf_grad, param, values, zeros};
use llmrouter_core::learn::{F32s, fold};
use llmrouter_core::rng::SplitMix64;
use llmrouter_core::router::prepare;
use llmrouter_core::{Fit, Fitted, MetaRouter, Progress, Result};

use crate::{Dc, Hparams, SavedModel, Similarity};

type Row = Vec<(u32, f32)>;

/// The trainable network.
struct Net {
    w1: SparseLayer,
    b1: Var,
    w2: Var,
    b2: Var,
    llm: Var,
    similarity: Similarity,
}

/// Rows of `t` scaled to unit length.
fn unit_rows(t: &Tensor) -> Result<Tensor> {
    let norm = t.sqr().map_err(err)?.sum_keepdim(D::Minus1).map_err(err)?.sqrt().map_err(err)?;
    t.broadcast_div(&(norm + 1e-8).map_err(err)?).map_err(err)
}

/// The contrastive loss `mean_p -log(e^{l_p} / (e^{l_p} + sum_n w_n e^{l_n}))` over `positives`
/// (flat indices into the `rows x cols` logits) against the weighted negatives of their row
/// (`negatives`, `rows x cols`); computed with each row's maximum taken out, so no exponential
/// overflows.
fn contrastive(logits: &Tensor, positives: &[(u32, u32)], negatives: Vec<f32>, dev: &CDevice) -> Result<Tensor> {
    let (rows, cols) = logits.dims2().map_err(err)?;
    let maxima: Vec<f32> = logits
        .to_vec2::<f32>()
        .map_err(err)?
        .iter()
        .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let maxima = Tensor::from_vec(maxima, (rows, 1), dev).map_err(err)?;
    let shifted = logits.broadcast_sub(&maxima).map_err(err)?;
    let weights = Tensor::from_vec(negatives, (rows, cols), dev).map_err(err)?;
    let negsum = (shifted.exp().map_err(err)? * weights).map_err(err)?.sum(1).map_err(err)?;
    let flat: Vec<u32> = positives.iter().map(|&(r, c)| r * cols as u32 + c).collect();
    let pos_rows: Vec<u32> = positives.iter().map(|&(r, _)| r).collect();
    let n = positives.len();
    let lp = shifted
        .flatten_all()
        .map_err(err)?
        .index_select(&Tensor::from_vec(flat, n, dev).map_err(err)?, 0)
        .map_err(err)?;
    let ns = negsum.index_select(&Tensor::from_vec(pos_rows, n, dev).map_err(err)?, 0).map_err(err)?;
    let denom = (lp.exp().map_err(err)? + ns).map_err(err)?.log().map_err(err)?;
    (denom - lp).map_err(err)?.mean_all().map_err(err)
}

/// What one query contributes to the sample-LLM loss: its `last_k` worst candidates are the
/// negatives, and its `top_k` best among those that scored strictly above every negative are the
/// positives (ties in a random order). A query where one candidate alone succeeded still
/// contrasts it with the failures; one where every candidate scored the same gives nothing.
fn llm_pairs(scores: &[f32], top_k: usize, last_k: usize, rng: &mut SplitMix64) -> (Vec<usize>, Vec<usize>) {
    let mut measured: Vec<(usize, f32, u64)> =
        scores.iter().enumerate().filter(|(_, s)| !s.is_nan()).map(|(m, &s)| (m, s, rng.next_u64())).collect();
    measured.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    // At most all but one, so that two models still give one of each.
    let bottom: Vec<(usize, f32, u64)> =
        measured[measured.len().saturating_sub(last_k.min(measured.len().saturating_sub(1)))..].to_vec();
    let Some(ceiling) = bottom.iter().map(|e| e.1).reduce(f32::max) else { return (vec![], vec![]) };
    let top: Vec<usize> = measured.iter().filter(|e| e.1 > ceiling).take(top_k).map(|e| e.0).collect();
    if top.is_empty() { (vec![], vec![]) } else { (top, bottom.iter().map(|e| e.0).collect()) }
}

/// For the group losses: each batch query with a same-group partner in the batch gets one such
/// positive and `h` negatives drawn from other groups (with repeats when fewer are present).
fn group_pairs(groups: &[Option<usize>], h: usize, rng: &mut SplitMix64) -> (Vec<(u32, u32)>, Vec<f32>) {
    let b = groups.len();
    let mut positives = Vec::new();
    let mut negatives = vec![0.0f32; b * b];
    for (i, g) in groups.iter().enumerate() {
        let Some(g) = g else { continue };
        let same: Vec<usize> = (0..b).filter(|&j| j != i && groups[j] == Some(*g)).collect();
        let other: Vec<usize> = (0..b).filter(|&j| groups[j].is_some_and(|o| o != *g)).collect();
        if same.is_empty() || other.is_empty() {
            continue;
        }
        positives.push((i as u32, same[rng.below(same.len())] as u32));
        for _ in 0..h {
            negatives[i * b + other[rng.below(other.len())]] += 1.0;
        }
    }
    (positives, negatives)
}

impl Net {
    fn new(rng: &mut SplitMix64, h: &Hparams, input_dim: usize, models: usize, dev: &CDevice) -> Result<Net> {
        let w1 =
            SparseLayer::new(rng, input_dim, h.hidden_state_dim, 0.5, SparseAdam::new(h.learning_rate, h.weight_decay));
        let d = h.hidden_state_dim;
        Ok(Net {
            w1,
            b1: zeros(&[1, d], dev)?,
            w2: param(rng, &[d, d], (1.0 / d as f64).sqrt(), dev)?,
            b2: zeros(&[1, d], dev)?,
            llm: param(rng, &[models, d], 1.0, dev)?,
            similarity: h.similarity_function,
        })
    }

    /// Query encodings and candidate embeddings, unit rows for cosine.
    fn sides(&self, first: &Tensor) -> Result<(Tensor, Tensor)> {
        let a = first.broadcast_add(self.b1.as_tensor()).map_err(err)?.tanh().map_err(err)?;
        let q = a.matmul(self.w2.as_tensor()).map_err(err)?.broadcast_add(self.b2.as_tensor()).map_err(err)?;
        let k = self.llm.as_tensor().clone();
        match self.similarity {
            Similarity::Cosine => Ok((unit_rows(&q)?, unit_rows(&k)?)),
            Similarity::Inner => Ok((q, k)),
        }
    }

    fn snapshot(&self, spec: &llmrouter_core::embed::EmbedderSpec, input_dim: usize) -> Result<SavedModel> {
        let llm = match self.similarity {
            Similarity::Cosine => unit_rows(self.llm.as_tensor())?,
            Similarity::Inner => self.llm.as_tensor().clone(),
        };
        Ok(SavedModel {
            embedder: spec.clone(),
            input_dim,
            hidden: self.w1.outputs(),
            similarity: self.similarity,
            w1: F32s(self.w1.weights()),
            b1: F32s(values(self.b1.as_tensor())?),
            w2: F32s(values(self.w2.as_tensor())?),
            b2: F32s(values(self.b2.as_tensor())?),
            llm: F32s(values(&llm)?),
            score_map: [1.0, 0.0],
        })
    }
}

/// One batch: its rows and what each loss draws from them.
struct Batch<'a> {
    x: Vec<&'a [(u32, f32)]>,
    llm_positives: Vec<(u32, u32)>,
    llm_negatives: Vec<f32>,
    clusters: Vec<Option<usize>>,
    tasks: Vec<Option<usize>>,
}

/// The weighted sum of the three losses for one batch, each as (value, term) where present.
struct Losses {
    total: Tensor,
    llm: Option<f32>,
    cluster: Option<f32>,
}

fn losses(
    net: &Net,
    first: &Tensor,
    batch: &Batch,
    h: &Hparams,
    rng: &mut SplitMix64,
    dev: &CDevice,
) -> Result<Option<Losses>> {
    let (q, k) = net.sides(first)?;
    let inv_t = 1.0 / h.temperature;
    let mut total: Option<Tensor> = None;
    let mut add = |term: Tensor, weight: f64| -> Result<()> {
        let term = (term * weight).map_err(err)?;
        total = Some(match total.take() {
            Some(t) => (t + term).map_err(err)?,
            None => term,
        });
        Ok(())
    };
    let mut llm = None;
    if !batch.llm_positives.is_empty() {
        let logits = (q.matmul(&k.t().map_err(err)?).map_err(err)? * inv_t).map_err(err)?;
        let term = contrastive(&logits, &batch.llm_positives, batch.llm_negatives.clone(), dev)?;
        llm = Some(term.to_scalar::<f32>().map_err(err)?);
        add(term, 1.0)?;
    }
    let mut cluster = None;
    let qq = if h.cluster_loss_weight > 0.0 || h.sample_loss_weight > 0.0 {
        Some((q.matmul(&q.t().map_err(err)?).map_err(err)? * inv_t).map_err(err)?)
    } else {
        None
    };
    if let Some(qq) = &qq {
        for (groups, weight, is_cluster) in
            [(&batch.clusters, h.cluster_loss_weight, true), (&batch.tasks, h.sample_loss_weight, false)]
        {
            if weight <= 0.0 {
                continue;
            }
            let (positives, negatives) = group_pairs(groups, h.h, rng);
            if positives.is_empty() {
                continue;
            }
            let term = contrastive(qq, &positives, negatives, dev)?;
            if is_cluster {
                cluster = Some(term.to_scalar::<f32>().map_err(err)?);
            }
            add(term, weight)?;
        }
    }
    Ok(total.map(|total| Losses { total, llm, cluster }))
}

/// Spherical k-means (k-means++ start, seeded) of sparse rows, as cluster ids.
fn kmeans(rows: &[&[(u32, f32)]], dim: usize, k: usize, seed: u64) -> Vec<usize> {
    let unit: Vec<Row> = rows
        .iter()
        .map(|r| {
            let n = r.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(|&(j, v)| (j, v / n)).collect()
        })
        .collect();
    let dot = |r: &Row, c: &[f32]| r.iter().map(|&(j, v)| v * c[j as usize]).sum::<f32>();
    let dense = |r: &Row| {
        let mut c = vec![0.0f32; dim];
        for &(j, v) in r {
            c[j as usize] = v;
        }
        c
    };
    let mut rng = SplitMix64::new(seed ^ 0x6b6d_6561_6e73);
    let mut centroids: Vec<Vec<f32>> = vec![dense(&unit[rng.below(unit.len())])];
    while centroids.len() < k {
        // Distance to the nearest centroid, 1 - cos, drawn in proportion to its square.
        let d2: Vec<f64> = unit
            .iter()
            .map(|r| {
                let best = centroids.iter().map(|c| dot(r, c)).fold(f32::NEG_INFINITY, f32::max);
                f64::from((1.0 - best).max(0.0)).powi(2)
            })
            .collect();
        let total: f64 = d2.iter().sum();
        let pick = if total <= 0.0 {
            rng.below(unit.len())
        } else {
            let mut at = rng.next_f64() * total;
            d2.iter()
                .position(|&d| {
                    at -= d;
                    at <= 0.0
                })
                .unwrap_or(unit.len() - 1)
        };
        centroids.push(dense(&unit[pick]));
    }
    let mut assign = vec![usize::MAX; unit.len()];
    for _ in 0..30 {
        let mut changed = false;
        for (r, a) in unit.iter().zip(assign.iter_mut()) {
            let best = (0..k).max_by(|&x, &y| dot(r, &centroids[x]).total_cmp(&dot(r, &centroids[y])).then(y.cmp(&x)));
            let best = best.unwrap_or(0);
            if *a != best {
                *a = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        for (c, centroid) in centroids.iter_mut().enumerate() {
            let mut sum = vec![0.0f32; dim];
            for (r, _) in unit.iter().zip(&assign).filter(|(_, a)| **a == c) {
                for &(j, v) in r {
                    sum[j as usize] += v;
                }
            }
            let n = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
            if n > 0.0 {
                *centroid = sum.into_iter().map(|v| v / n).collect();
            }
        }
    }
    assign
}

/// The mean test-style score of the picks on `rows`: the measured candidate of highest similarity.
fn routed_score(model: &SavedModel, x: &[Row], scores: &[Vec<f32>], rows: &[usize]) -> f32 {
    let total: f32 = rows
        .iter()
        .map(|&r| {
            let sim = model.similarities(&x[r]);
            let pick = (0..sim.len())
                .filter(|&m| !scores[r][m].is_nan())
                .max_by(|&a, &b| sim[a].total_cmp(&sim[b]).then(b.cmp(&a)));
            pick.map_or(0.0, |m| scores[r][m])
        })
        .sum();
    total / rows.len().max(1) as f32
}

/// Fits `[a, b]` of `sigmoid(a s + b)` to the measured scores by Newton's method on the
/// logistic loss (scores in [0, 1] as soft labels); `a` is kept positive, so the map preserves
/// the order of similarities.
fn fit_score_map(pairs: &[(f32, f32)]) -> [f32; 2] {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-6, 0.0, 1e-6);
        for &(s, y) in pairs {
            let (s, y) = (f64::from(s), f64::from(y));
            let p = 1.0 / (1.0 + (-(a * s + b)).exp());
            let w = p * (1.0 - p);
            ga += (p - y) * s;
            gb += p - y;
            haa += w * s * s;
            hab += w * s;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-7 {
            break;
        }
    }
    if !(a.is_finite() && b.is_finite()) {
        return [1.0, 0.0];
    }
    [a.max(1e-3) as f32, b as f32]
}

impl Fit for Dc {
    type Hparams = Hparams;
    type Saved = SavedModel;

    fn check(meta: &MetaRouter, h: &Hparams) -> Result<()> {
        for (key, ok) in [
            ("hparam.hidden_state_dim", (1..=4096).contains(&h.hidden_state_dim)),
            ("hparam.batch_size", h.batch_size >= 2),
            ("hparam.training_steps", h.training_steps > 0),
            ("hparam.learning_rate", h.learning_rate > 0.0 && h.learning_rate.is_finite()),
            ("hparam.weight_decay", h.weight_decay >= 0.0 && h.weight_decay.is_finite()),
            ("hparam.top_k", h.top_k > 0),
            ("hparam.last_k", h.last_k > 0),
            ("hparam.temperature", h.temperature > 0.0 && h.temperature.is_finite()),
            ("hparam.sample_loss_weight", h.sample_loss_weight >= 0.0 && h.sample_loss_weight.is_finite()),
            ("hparam.cluster_loss_weight", h.cluster_loss_weight >= 0.0 && h.cluster_loss_weight.is_finite()),
            ("hparam.H", h.h > 0),
            ("hparam.n_clusters", h.n_clusters >= 2),
            ("hparam.eval_steps", h.eval_steps > 0),
            ("hparam.validation_fraction", (0.0..0.9).contains(&h.validation_fraction)),
            ("hparam.input_dim", (16..=1 << 22).contains(&h.input_dim)),
        ] {
            if !ok {
                return Err(meta.config.key_error(key, "value out of range (see the router README)"));
            }
        }
        Ok(())
    }

    fn fit(meta: &MetaRouter, h: &Hparams, progress: &dyn Progress) -> Result<Fitted<SavedModel>> {
        let p = prepare(meta, progress)?;
        let dev = CDevice::Cpu;
        let models = p.set.models.len();
        let input_dim = p.embedder.dim().min(h.input_dim);
        let x: Vec<Row> = p.x.iter().map(|v| fold(v, input_dim)).collect();
        let (train_rows, val_rows) = p.set.split(h.validation_fraction, h.seed);
        if train_rows.len() < h.n_clusters.max(2) {
            return Err(meta.error(&format!(
                "{} training queries after the hold-out: too few for hparam.n_clusters = {}",
                train_rows.len(),
                h.n_clusters
            )));
        }
        let mut rng = SplitMix64::new(h.seed);
        let learnable = train_rows
            .iter()
            .filter(|&&r| !llm_pairs(&p.set.scores[r], h.top_k, h.last_k, &mut rng).0.is_empty())
            .count();
        if learnable == 0 {
            return Err(
                meta.error("no training query where some candidate scored above the worst ones: nothing to contrast")
            );
        }
        progress.begin(1, "clustering training queries (k-means)");
        let refs: Vec<&[(u32, f32)]> = train_rows.iter().map(|&r| x[r].as_slice()).collect();
        let clusters = kmeans(&refs, input_dim, h.n_clusters, h.seed);
        progress.finish();
        let mut cluster_of = vec![None; x.len()];
        for (&r, &c) in train_rows.iter().zip(&clusters) {
            cluster_of[r] = Some(c);
        }
        let task_ids: BTreeMap<&str, usize> = {
            let mut names: Vec<&str> = p.set.tasks.iter().flatten().map(String::as_str).collect();
            names.sort_unstable();
            names.dedup();
            names.into_iter().enumerate().map(|(i, n)| (n, i)).collect()
        };
        let task_of: Vec<Option<usize>> =
            p.set.tasks.iter().map(|t| t.as_deref().and_then(|t| task_ids.get(t).copied())).collect();

        let mut net = Net::new(&mut rng, h, input_dim, models, &dev)?;
        let vars = vec![net.b1.clone(), net.w2.clone(), net.b2.clone(), net.llm.clone()];
        let params = ParamsAdamW { lr: h.learning_rate, weight_decay: h.weight_decay, ..Default::default() };
        let mut opt = AdamW::new(vars, params).map_err(err)?;
        let mut order = train_rows.clone();
        let mut cursor = order.len();
        let mut best: Option<(f32, usize, SavedModel)> = None;
        let (mut llm_sum, mut cluster_sum, mut seen) = (0.0f64, 0.0f64, 0usize);
        progress.begin(h.training_steps as u64, "training RouterDC");
        for step in 1..=h.training_steps {
            let mut rows = Vec::with_capacity(h.batch_size);
            while rows.len() < h.batch_size.min(order.len()) {
                if cursor == order.len() {
                    rng.shuffle(&mut order);
                    cursor = 0;
                }
                rows.push(order[cursor]);
                cursor += 1;
            }
            let mut batch = Batch {
                x: rows.iter().map(|&r| x[r].as_slice()).collect(),
                llm_positives: Vec::new(),
                llm_negatives: vec![0.0; rows.len() * models],
                clusters: rows.iter().map(|&r| cluster_of[r]).collect(),
                tasks: rows.iter().map(|&r| task_of[r]).collect(),
            };
            for (i, &r) in rows.iter().enumerate() {
                let (top, bottom) = llm_pairs(&p.set.scores[r], h.top_k, h.last_k, &mut rng);
                batch.llm_positives.extend(top.iter().map(|&m| (i as u32, m as u32)));
                for m in bottom {
                    batch.llm_negatives[i * models + m] = 1.0;
                }
            }
            let first = leaf(net.w1.forward(&batch.x), rows.len(), h.hidden_state_dim, &dev)?;
            if let Some(l) = losses(&net, first.as_tensor(), &batch, h, &mut rng, &dev)? {
                let grads = l.total.backward().map_err(err)?;
                opt.step(&grads).map_err(err)?;
                net.w1.step(&batch.x, &leaf_grad(&grads, &first)?);
                llm_sum += f64::from(l.llm.unwrap_or(0.0));
                cluster_sum += f64::from(l.cluster.unwrap_or(0.0));
                seen += 1;
            }
            progress.advance(1);
            if step % h.eval_steps == 0 || step == h.training_steps {
                let snapshot = net.snapshot(&p.spec, input_dim)?;
                let score =
                    if val_rows.is_empty() { 0.0 } else { routed_score(&snapshot, &x, &p.set.scores, &val_rows) };
                let n = seen.max(1) as f64;
                progress.set_message(&format!(
                    "step {step}: sample-LLM loss {:.4}, cluster loss {:.4}, held-out pick score {score:.4}",
                    llm_sum / n,
                    cluster_sum / n
                ));
                (llm_sum, cluster_sum, seen) = (0.0, 0.0, 0);
                if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                    best = Some((score, step, snapshot));
                }
            }
        }
        progress.finish();
        let Some((val_score, best_step, mut model)) = best else { return Err(meta.error("no step ran")) };
        let pairs: Vec<(f32, f32)> = train_rows
            .iter()
            .flat_map(|&r| {
                let sim = model.similarities(&x[r]);
                p.set.scores[r].iter().zip(sim).filter(|(s, _)| !s.is_nan()).map(|(&s, v)| (v, s)).collect::<Vec<_>>()
            })
            .collect();
        model.score_map = fit_score_map(&pairs);
        let sizes: Vec<String> =
            (0..h.n_clusters).map(|c| clusters.iter().filter(|&&a| a == c).count().to_string()).collect();
        Ok(Fitted {
            model,
            metrics: vec![
                ("training queries".into(), format!("{} ({} held out)", p.set.len(), val_rows.len())),
                ("queries with a contrast".into(), learnable.to_string()),
                ("k-means cluster sizes".into(), sizes.join(", ")),
                ("embedder".into(), p.embedder.id()),
                ("best step".into(), format!("{best_step} of {}", h.training_steps)),
                ("held-out mean score of the picks".into(), format!("{val_score:.4}")),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positives_are_the_best_and_negatives_score_strictly_below_them() {
        let mut rng = SplitMix64::new(3);
        let (top, bottom) = llm_pairs(&[0.9, f32::NAN, 0.1, 0.5, 0.0, 0.7], 2, 2, &mut rng);
        assert_eq!(top, vec![0, 5]);
        assert_eq!(bottom, vec![2, 4]);
        // One success among failures: it alone is the positive, three failures the negatives.
        let (top, bottom) = llm_pairs(&[0.0, 1.0, 0.0, 0.0, 0.0], 3, 3, &mut rng);
        assert_eq!(top, vec![1]);
        assert_eq!(bottom.len(), 3);
        assert!(!bottom.contains(&1));
        // Two models (RouteLLM's data): the better one against the worse.
        assert_eq!(llm_pairs(&[0.0, 1.0], 3, 3, &mut rng), (vec![1], vec![0]));
        // Ties among the best: three of them, two drawn; a model tied with a negative is no positive.
        let (top, bottom) = llm_pairs(&[1.0, 1.0, 1.0, 0.0, 0.0], 2, 2, &mut rng);
        assert_eq!(top.len(), 2);
        assert!(top.iter().all(|&m| m < 3));
        assert_eq!(bottom.iter().copied().collect::<std::collections::BTreeSet<_>>(), [3, 4].into());
        // Every candidate alike: nothing to contrast.
        assert_eq!(llm_pairs(&[1.0, 1.0], 1, 1, &mut rng), (vec![], vec![]));
    }

    #[test]
    fn group_pairs_pull_within_a_group_and_push_across() {
        let mut rng = SplitMix64::new(5);
        let groups = [Some(0), Some(0), Some(1), None, Some(2)];
        let (positives, negatives) = group_pairs(&groups, 3, &mut rng);
        // Only the two queries of group 0 have a partner.
        assert_eq!(positives, vec![(0, 1), (1, 0)]);
        let b = groups.len();
        for i in 0..2 {
            let row = &negatives[i * b..(i + 1) * b];
            assert_eq!(row.iter().sum::<f32>(), 3.0);
            assert_eq!(row[0] + row[1] + row[3], 0.0, "no negative from its own group or without one");
        }
    }

    #[test]
    fn the_contrastive_loss_is_the_softmax_cross_entropy_it_claims() {
        let dev = CDevice::Cpu;
        let logits = Tensor::from_vec(vec![2.0f32, 0.5, -1.0, 30.0, 31.0, 29.0], (2, 3), &dev).expect("t");
        // Row 0: positive 0 against negatives 1 and 2; row 1: positive 2 against negative 1 twice.
        let loss = contrastive(&logits, &[(0, 0), (1, 2)], vec![0.0, 1.0, 1.0, 0.0, 2.0, 0.0], &dev).expect("loss");
        let row0 = -(2.0f64.exp() / (2.0f64.exp() + 0.5f64.exp() + (-1.0f64).exp())).ln();
        let row1 = -(29.0f64.exp() / (29.0f64.exp() + 2.0 * 31.0f64.exp())).ln();
        let got = f64::from(loss.to_scalar::<f32>().expect("scalar"));
        assert!((got - (row0 + row1) / 2.0).abs() < 1e-4, "{got}");
    }

    #[test]
    fn kmeans_separates_queries_that_share_no_words() {
        let a: Vec<Row> = (0..6).map(|i| vec![(0, 1.0), (1, 0.5 + i as f32 * 0.1)]).collect();
        let b: Vec<Row> = (0..6).map(|i| vec![(7, 1.0), (9, 0.3 + i as f32 * 0.1)]).collect();
        let rows: Vec<&[(u32, f32)]> = a.iter().chain(&b).map(Vec::as_slice).collect();
        let c = kmeans(&rows, 16, 2, 1);
        assert!(c[..6].iter().all(|&x| x == c[0]) && c[6..].iter().all(|&x| x == c[6]) && c[0] != c[6], "{c:?}");
    }

    #[test]
    fn the_score_map_is_increasing_and_follows_the_data() {
        // Scores rise with similarity: the fitted slope is clearly positive.
        let pairs: Vec<(f32, f32)> =
            (0..200).map(|i| (i as f32 / 100.0 - 1.0, if i % 10 < (i / 20) { 1.0 } else { 0.0 })).collect();
        let [a, b] = fit_score_map(&pairs);
        assert!(a > 1.0, "slope {a}");
        let p = |s: f32| 1.0 / (1.0 + (-(a * s + b)).exp());
        assert!(p(-0.9) < 0.2 && p(0.9) > 0.8, "{} {}", p(-0.9), p(0.9));
        // Scores that fall with similarity cannot reverse the order: the slope stays positive.
        let falling: Vec<(f32, f32)> = pairs.iter().map(|&(s, y)| (s, 1.0 - y)).collect();
        assert!(fit_score_map(&falling)[0] > 0.0);
    }
}
