//! `cargo xtask example-data`: writes the SYNTHETIC example query and routing data.
//!
//! Nothing here was measured: queries are filled-in templates from seven task families, and each
//! candidate's score on a query is a Bernoulli draw from `sigmoid(1.6 * (skill - difficulty) + 0.4)`,
//! where `skill` grows with the model's parameter count (`ln(size / 7B)`) plus a fixed, seeded
//! per-(model, task) affinity, and `difficulty` is the task's base difficulty plus seeded noise and
//! plus terms for long numbers and multi-step wording. Token counts are `ceil(chars / 4)` for the
//! input and a per-task output length; `cost` uses the list prices in `default_llm.json`.
//! The point is data with the shape of real routing logs and a learnable signal, for examples
//! and tests; use `../shared/data` (or your own logs) for real evaluations.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use llmrouter_core::Candidates;
use llmrouter_core::rng::SplitMix64;

const SEED: u64 = 20_261_126;
const TRAIN_QUERIES: usize = 800;
const TEST_QUERIES: usize = 200;

struct Task {
    name: &'static str,
    base_difficulty: f64,
    output_tokens: f64,
    make: fn(&mut SplitMix64) -> (String, f64),
}

fn pick<'a>(rng: &mut SplitMix64, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

const NAMES: &[&str] = &["Janet", "Omar", "Li", "Priya", "Tom", "Ana", "Kofi", "Mei"];
const THINGS: &[&str] = &["apples", "marbles", "books", "stamps", "coins", "pencils"];
const COUNTRIES: &[&str] =
    &["France", "Kenya", "Peru", "Japan", "Canada", "Norway", "Egypt", "Chile", "Vietnam", "Poland"];
const ANIMALS: &[&str] = &["octopuses", "owls", "elephants", "bees", "dolphins", "cats"];
const LANGS: &[&str] = &["Spanish", "German", "French", "Italian", "Portuguese", "Swahili"];
const PHRASES: &[&str] = &["good morning", "where is the station?", "thank you very much", "I would like a coffee"];
const CODE_LANGS: &[&str] = &["Python", "Rust", "JavaScript", "Go"];
const SPECS: &[(&str, f64)] = &[
    ("reverses a string", -0.8),
    ("returns the n-th Fibonacci number using memoization", 0.0),
    ("parses an ISO 8601 date and returns the weekday", 0.4),
    ("implements a thread-safe LRU cache with O(1) operations", 1.2),
    ("finds the shortest path in a weighted graph with Dijkstra's algorithm", 1.0),
    ("checks whether a number is prime", -0.5),
];
const CLAIMS: &[(&str, f64)] = &[
    ("there are infinitely many primes", 0.0),
    ("the square root of 2 is irrational", 0.0),
    ("every bounded monotone sequence of reals converges", 0.7),
    ("a group of prime order is cyclic", 0.6),
    ("the halting problem is undecidable", 0.9),
];
const CONCEPTS: &[(&str, f64)] = &[
    ("quantum entanglement", 0.5),
    ("the central limit theorem", 0.3),
    ("public-key cryptography", 0.2),
    ("general relativity's prediction of gravitational lensing", 0.8),
    ("backpropagation in neural networks", 0.3),
];

fn chitchat(rng: &mut SplitMix64) -> (String, f64) {
    let q = match rng.below(3) {
        0 => format!("Hi! Tell me a fun fact about {}.", pick(rng, ANIMALS)),
        1 => "Hello, how are you today?".to_owned(),
        _ => format!("Can you suggest a name for my pet {}?", pick(rng, &["dog", "cat", "parrot", "goldfish"])),
    };
    (q, 0.0)
}

fn factual(rng: &mut SplitMix64) -> (String, f64) {
    match rng.below(3) {
        0 => (format!("What is the capital of {}?", pick(rng, COUNTRIES)), 0.0),
        1 => (format!("What is the official currency of {}?", pick(rng, COUNTRIES)), 0.3),
        _ => (format!("In which year did {} join the United Nations?", pick(rng, COUNTRIES)), 1.0),
    }
}

fn arithmetic(rng: &mut SplitMix64) -> (String, f64) {
    let (a, b, c) = (2 + rng.below(40), 1 + rng.below(30), rng.below(20));
    let big = a + b + c > 50;
    let name = pick(rng, NAMES);
    let things = pick(rng, THINGS);
    let q = format!(
        "{name} has {a} {things}. {name} buys {b} more and gives {c} away. How many {things} does {name} have now?"
    );
    (q, if big { 0.4 } else { 0.0 })
}

fn translation(rng: &mut SplitMix64) -> (String, f64) {
    (format!("Translate '{}' into {}.", pick(rng, PHRASES), pick(rng, LANGS)), 0.0)
}

fn coding(rng: &mut SplitMix64) -> (String, f64) {
    let (spec, d) = SPECS[rng.below(SPECS.len())];
    (format!("Write a {} function that {spec}.", pick(rng, CODE_LANGS)), d)
}

fn proof(rng: &mut SplitMix64) -> (String, f64) {
    if rng.below(2) == 0 {
        let (claim, d) = CLAIMS[rng.below(CLAIMS.len())];
        (format!("Prove that {claim}."), d)
    } else {
        let (concept, d) = CONCEPTS[rng.below(CONCEPTS.len())];
        (format!("Explain {concept} to a graduate student, step by step, with the relevant equations."), d)
    }
}

fn algebra(rng: &mut SplitMix64) -> (String, f64) {
    let (a, b, c) = (1 + rng.below(9), rng.below(40) as i64 - 20, rng.below(60) as i64 - 30);
    let steps = rng.below(2) == 0;
    let q = if steps {
        format!("Solve {a}x^2 + ({b})x + ({c}) = 0 for x, then verify both roots and explain each step.")
    } else {
        format!("Solve {a}x^2 + ({b})x + ({c}) = 0 for x.")
    };
    (q, if steps { 0.6 } else { 0.0 })
}

const TASKS: &[Task] = &[
    Task { name: "chitchat", base_difficulty: -1.6, output_tokens: 80.0, make: chitchat },
    Task { name: "factual_qa", base_difficulty: -0.8, output_tokens: 20.0, make: factual },
    Task { name: "arithmetic", base_difficulty: -0.2, output_tokens: 120.0, make: arithmetic },
    Task { name: "translation", base_difficulty: -0.6, output_tokens: 25.0, make: translation },
    Task { name: "coding", base_difficulty: 0.6, output_tokens: 300.0, make: coding },
    Task { name: "reasoning", base_difficulty: 1.3, output_tokens: 450.0, make: proof },
    Task { name: "algebra", base_difficulty: 0.7, output_tokens: 250.0, make: algebra },
];

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The four generated files, by path relative to the repository root.
fn generate(root: &Path) -> Result<Vec<(String, String)>> {
    let llm = root.join("data/example_data/llm_candidates/default_llm.json");
    let candidates = Candidates::load(&llm).with_context(|| format!("loading {}", llm.display()))?;
    let mut rng = SplitMix64::new(SEED);
    // Fixed per-(model, task) affinities.
    let affinity: Vec<Vec<f64>> =
        candidates.all().iter().map(|_| TASKS.iter().map(|_| 0.35 * rng.normal()).collect()).collect();
    let mut files = Vec::new();
    for (split, n, offset) in [("train", TRAIN_QUERIES, 0), ("test", TEST_QUERIES, TRAIN_QUERIES)] {
        let (mut queries, mut routing) = (String::new(), String::new());
        for i in 0..n {
            let t = rng.below(TASKS.len());
            let task = &TASKS[t];
            let (query, extra) = (task.make)(&mut rng);
            let difficulty = task.base_difficulty + extra + 0.5 * rng.normal();
            let id = format!("example-{}", offset + i);
            let row = serde_json::json!({"id": id, "query": query, "task_name": task.name, "synthetic": true});
            writeln!(queries, "{row}")?;
            let input_tokens = query.chars().count().div_ceil(4) as f64;
            for (m, cand) in candidates.all().iter().enumerate() {
                let size = cand.size_billions.unwrap_or(7.0).max(1.0);
                let skill = (size / 7.0).ln() + affinity[m][t];
                let p = sigmoid(1.6 * (skill - difficulty) + 0.4);
                let performance = if rng.next_f64() < p { 1.0 } else { 0.0 };
                let output_tokens = (task.output_tokens * (0.75 + 0.5 * rng.next_f64())).round();
                let cost = (input_tokens * cand.input_price + output_tokens * cand.output_price) / 1e6;
                let row = serde_json::json!({
                    "id": id, "task_name": task.name, "query": query, "model_name": cand.name,
                    "performance": performance, "input_tokens": input_tokens, "output_tokens": output_tokens,
                    "cost": cost, "synthetic": true,
                });
                writeln!(routing, "{row}")?;
            }
        }
        files.push((format!("data/example_data/query_data/default_query_{split}.jsonl"), queries));
        files.push((format!("data/example_data/routing_data/default_routing_{split}_data.jsonl"), routing));
    }
    Ok(files)
}

/// Writes the files, or with `check` compares them and fails when any differs.
pub fn run(root: &Path, check: bool) -> Result<()> {
    let files = generate(root)?;
    let mut stale = Vec::new();
    for (rel, content) in &files {
        let path = root.join(rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == *content {
            continue;
        }
        if check {
            stale.push(rel.clone());
        } else {
            llmrouter_core::model::write_atomic(&path, content.as_bytes())?;
            println!("wrote {rel}");
        }
    }
    if !stale.is_empty() {
        bail!("stale generated example data: {}\nrun `cargo xtask example-data` to regenerate", stale.join(", "));
    }
    if check {
        println!("example data is up to date");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_example_data_is_fresh() {
        super::run(&crate::workspace_root(), true).expect("example data is fresh");
    }
}
