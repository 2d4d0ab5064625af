//! The shared router conformance suite, and randomrouter's own promises: the seed matters and the
//! choice spreads over every candidate.

use llmrouter_core::{MetaRouter, QueryInput, Router};
use randomrouter::RandomRouter;

llmrouter_core::conformance_tests!(router: RandomRouter, config: "config.yaml");

fn router_with_seed(seed: u64) -> RandomRouter {
    let config = __conformance_config();
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("seed: 42"), "the example config sets `seed: 42`, which this test replaces");
    let text = text.replace("seed: 42", &format!("seed: {seed}"));
    let parsed = llmrouter_core::Config::from_yaml_str(&text, &config).expect("config parses");
    RandomRouter::from_meta(MetaRouter::from_config(parsed, "randomrouter").expect("meta")).expect("router")
}

#[test]
fn choice_covers_every_candidate_and_depends_on_the_seed() {
    let a = router_with_seed(1);
    let b = router_with_seed(2);
    let queries: Vec<QueryInput> = (0..400).map(|i| QueryInput::new(format!("query number {i}"))).collect();
    let da = a.route_batch(&queries).expect("routes");
    let db = b.route_batch(&queries).expect("routes");
    let mut counts = std::collections::BTreeMap::new();
    for d in &da {
        *counts.entry(d.model_name.clone()).or_insert(0usize) += 1;
    }
    let config = __conformance_config();
    let n = MetaRouter::from_yaml(&config, "randomrouter").expect("meta").candidates.len();
    assert_eq!(counts.len(), n, "every candidate is chosen sometimes: {counts:?}");
    let expected = 400 / n;
    assert!(counts.values().all(|&c| c > expected / 3), "roughly uniform: {counts:?}");
    let same = da.iter().zip(&db).filter(|(x, y)| x.model_name == y.model_name).count();
    assert!(same < 300, "another seed gives other choices ({same} of 400 equal)");
}
