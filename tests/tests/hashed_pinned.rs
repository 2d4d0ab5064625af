//! The hashed TF-IDF embedding of a fixed text, pinned: a change of hash function, n-gram
//! scheme, IDF formula or platform behaviour changes these values and fails this test (the unit
//! tests in `embed.rs` check determinism within one build; this one checks it across builds and
//! platforms). If such a change is intended, models trained before it embed differently: say so
//! in the change, and update the values printed by
//! `cargo test -p llmrouter-tests --test hashed_pinned -- --nocapture`.

use llmrouter_core::embed::{Embedder, HashedTfidf};

const TRAIN: &[&str] = &[
    "What is the capital of France?",
    "Prove that there are infinitely many primes.",
    "Write a haiku about the sea.",
    "Solve 2x + 3 = 11 for x.",
];

const TEXT: &str = "What is the capital of Peru?";

/// Every non-zero (bucket, value) of `TEXT`'s 256-bucket embedding, IDF fitted on `TRAIN`.
#[rustfmt::skip]
const PINNED: &[(u32, f32)] = &[
    (3, 0.11846518), (8, 0.11846518), (15, 0.15025805), (17, 0.15025805), (23, 0.20460834), (24, 0.20460834),
    (34, 0.09590777), (35, 0.11846518), (38, 0.15025805), (41, 0.15025805), (45, 0.11846518), (57, 0.09590777),
    (65, 0.15025805), (83, 0.20460834), (86, 0.15025805), (88, 0.20460834), (89, 0.11846518), (105, 0.11846518),
    (110, 0.20057897), (119, 0.11846518), (123, 0.11846518), (129, 0.09590777), (133, 0.15025805), (140, 0.15025805),
    (144, 0.20460834), (146, 0.16238599), (147, 0.15025805), (150, 0.15025805), (163, 0.20460834), (168, 0.15025805),
    (180, 0.11846518), (182, 0.09590777), (186, 0.09590777), (199, 0.09590777), (204, 0.11846518), (207, 0.15025805),
    (209, 0.09590777), (210, 0.15025805), (211, 0.11846518), (213, 0.20460834), (222, 0.11846518), (225, 0.20460834),
    (226, 0.15025805), (239, 0.11846518), (240, 0.16238599), (249, 0.09590777),
];

#[test]
fn hashed_embedding_of_a_fixed_text_is_pinned() {
    let embedder = HashedTfidf::fit(256, TRAIN);
    let sparse = embedder.sparse(TEXT);
    println!("{sparse:?}");
    let buckets: Vec<u32> = sparse.iter().map(|e| e.0).collect();
    let pinned: Vec<u32> = PINNED.iter().map(|e| e.0).collect();
    assert_eq!(buckets, pinned, "non-zero buckets");
    for (&(bucket, value), &(_, want)) in sparse.iter().zip(PINNED) {
        assert!((value - want).abs() < 1e-6, "bucket {bucket}: {value}, pinned {want}");
    }
    let dense = embedder.embed(TEXT).expect("embed");
    assert_eq!(dense.len(), 256);
    for &(bucket, value) in &sparse {
        assert_eq!(dense[bucket as usize], value);
    }
}
