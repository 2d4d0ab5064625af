//! [`CachedEmbedder`]: each distinct text embedded once per run, and with a cache folder once
//! across runs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::learn::to_sparse;
use crate::progress::Progress;

/// Wraps an embedder so that each distinct text is embedded once per run, and, with a cache
/// folder, once across runs (`<cache_dir>/<embedder id>.bin`, appended as texts are embedded).
pub struct CachedEmbedder {
    inner: Box<dyn Embedder>,
    id: String,
    memory: Mutex<HashMap<String, Vec<f32>>>,
    disk: Option<Mutex<std::fs::File>>,
    disk_path: Option<PathBuf>,
}

impl CachedEmbedder {
    /// Wraps `inner`; loads the on-disk cache for its id from `cache_dir` when given.
    pub fn new(inner: Box<dyn Embedder>, cache_dir: Option<PathBuf>) -> Result<Self> {
        let id = inner.id();
        let mut memory = HashMap::new();
        let (mut disk, mut disk_path) = (None, None);
        if let Some(dir) = cache_dir {
            let path = dir.join(format!("{id}.bin"));
            if path.is_file() {
                read_cache(&path, inner.dim(), &mut memory)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io("open embedding cache", &path, e))?;
            disk = Some(Mutex::new(file));
            disk_path = Some(path);
        }
        Ok(CachedEmbedder { inner, id, memory: Mutex::new(memory), disk, disk_path })
    }

    /// Number of texts held in memory.
    pub fn cached(&self) -> usize {
        self.memory.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn remember(&self, text: &str, v: &[f32]) -> Result<()> {
        if let Ok(mut m) = self.memory.lock() {
            m.insert(text.to_owned(), v.to_vec());
        }
        if let (Some(file), Some(path)) = (&self.disk, &self.disk_path) {
            let mut record = Vec::with_capacity(8 + text.len() + v.len() * 4);
            record.extend_from_slice(&(text.len() as u32).to_le_bytes());
            record.extend_from_slice(text.as_bytes());
            for x in v {
                record.extend_from_slice(&x.to_le_bytes());
            }
            if let Ok(mut f) = file.lock() {
                f.write_all(&record).map_err(|e| Error::io("append to embedding cache", path, e))?;
            }
        }
        Ok(())
    }

    fn lookup(&self, text: &str) -> Option<Vec<f32>> {
        self.memory.lock().ok().and_then(|m| m.get(text).cloned())
    }
}

fn read_cache(path: &Path, dim: usize, into: &mut HashMap<String, Vec<f32>>) -> Result<()> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io("read embedding cache", path, e))?;
    let mut at = 0usize;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let end = at + 4 + len + dim * 4;
        if end > bytes.len() {
            break; // a record cut short by an interrupted run: ignore the tail
        }
        let Ok(text) = std::str::from_utf8(&bytes[at + 4..at + 4 + len]) else { break };
        let v =
            bytes[at + 4 + len..end].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        into.insert(text.to_owned(), v);
        at = end;
    }
    Ok(())
}

impl Embedder for CachedEmbedder {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        if let Some(v) = self.lookup(text) {
            return Ok(v);
        }
        let v = self.inner.embed(text)?;
        self.remember(text, &v)?;
        Ok(v)
    }

    fn is_sparse(&self) -> bool {
        self.inner.is_sparse()
    }

    /// Sparse embedders are cheap and their dense vectors large: they bypass the cache.
    fn embed_batch_sparse(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<(u32, f32)>>> {
        if self.inner.is_sparse() {
            return self.inner.embed_batch_sparse(texts, progress);
        }
        Ok(self.embed_batch(texts, progress)?.iter().map(|v| to_sparse(v)).collect())
    }

    fn embed_batch(&self, texts: &[&str], progress: &dyn Progress) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = texts.iter().map(|t| self.lookup(t)).collect();
        let mut missing: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (t, o) in texts.iter().zip(&out) {
            if o.is_none() && seen.insert(*t) {
                missing.push(t);
            }
        }
        progress.advance((texts.len() - missing.len()) as u64);
        let fresh = self.inner.embed_batch(&missing, progress)?;
        for (t, v) in missing.iter().zip(&fresh) {
            self.remember(t, v)?;
        }
        for (t, o) in texts.iter().zip(out.iter_mut()) {
            if o.is_none() {
                *o = self.lookup(t);
            }
        }
        out.into_iter().map(|o| o.ok_or_else(|| Error::router("embedding", "cache lookup failed"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::hashed::HashedTfidf;
    use crate::progress::NoProgress;

    const TEXTS: &[&str] = &["What is the capital of France?", "Prove that there are infinitely many primes.", "hello"];

    #[test]
    fn cache_embeds_each_text_once_and_persists() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Counting(Arc<AtomicUsize>, HashedTfidf);
        impl Embedder for Counting {
            fn id(&self) -> String {
                self.1.id()
            }
            fn dim(&self) -> usize {
                self.1.dim()
            }
            fn embed(&self, text: &str) -> Result<Vec<f32>> {
                self.0.fetch_add(1, Ordering::SeqCst);
                self.1.embed(text)
            }
        }
        let dir = std::env::temp_dir().join(format!("llmrouter-embed-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = Counting(Arc::clone(&calls), HashedTfidf::fit(64, TEXTS));
        let cached = CachedEmbedder::new(Box::new(inner), Some(dir.clone())).expect("cache");
        let texts = ["a b", "c d", "a b", "c d", "e"];
        let first = cached.embed_batch(&texts, &NoProgress).expect("batch");
        assert_eq!(first[0], first[2]);
        assert_eq!(cached.cached(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "three distinct texts, three embeddings");
        cached.embed_batch(&texts, &NoProgress).expect("batch again");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "a second batch of the same texts embeds nothing");
        let later = Arc::new(AtomicUsize::new(0));
        let again = CachedEmbedder::new(Box::new(Counting(Arc::clone(&later), HashedTfidf::fit(64, TEXTS))), Some(dir))
            .expect("reload");
        assert_eq!(again.cached(), 3, "the on-disk cache is read back");
        assert_eq!(again.embed("e").expect("e"), first[4]);
        assert_eq!(later.load(Ordering::SeqCst), 0, "a text found on disk is not embedded again");
    }
}
