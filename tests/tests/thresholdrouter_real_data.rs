//! thresholdrouter on real data: trained on `llmrouter_dc_train` to choose between gemma-2-9b-it
//! and llama-3.1-nemotron-51b-instruct, it must pick the better of the two on `llmrouter_dc_test`
//! more often than always-small and always-large do. A pick counts as "the better" when its score
//! is at least the other model's (on equal scores either pick is right).

use llmrouter_core::{Device, MetaRouter, NoProgress, QueryInput, Router, RoutingTable, Trainer};
use llmrouter_tests::{shared_data, temp_dir};
use thresholdrouter::{ThresholdRouter, ThresholdTrainer};

const SMALL: &str = "gemma-2-9b-it";
const LARGE: &str = "llama-3.1-nemotron-51b-instruct";

#[test]
fn beats_always_small_and_always_large_on_llmrouter_dc() {
    let Some(data) = shared_data() else { return };
    let tmp = temp_dir("threshold-dc");
    let config = tmp.join("config.yaml");
    let model = tmp.join("model.json");
    std::fs::write(
        &config,
        format!(
            "data_path:\n  llm_data: {d}/llmrouter_dc_models.json\n  routing_data_train: {d}/llmrouter_dc_train.jsonl\n  \
             routing_data_test: {d}/llmrouter_dc_test.jsonl\nmodel_path:\n  save_model_path: {m}\n\
             hparam:\n  small_model: {SMALL}\n  large_model: {LARGE}\n",
            d = data.display(),
            m = model.display()
        ),
    )
    .expect("write config");
    let meta = MetaRouter::from_yaml(&config, "thresholdrouter").expect("config loads");
    let mut trainer = ThresholdTrainer::from_meta(meta.clone(), Device::Cpu).expect("trainer");
    let report = trainer.train(&NoProgress).expect("training");
    for (k, v) in &report.metrics {
        eprintln!("  {k}: {v}");
    }
    let router = ThresholdRouter::from_meta(meta.clone()).expect("router loads the model");
    let test: RoutingTable = meta.load_routing_test().expect("test data");
    let (s, l) = (test.model_index(SMALL).expect("small"), test.model_index(LARGE).expect("large"));
    let queries: Vec<QueryInput> = test.rows.iter().map(|r| QueryInput::new(r.query.as_str())).collect();
    let decisions = router.route_batch(&queries).expect("routes");
    assert_eq!(decisions.len(), queries.len(), "one decision per query");
    let n = test.rows.len() as f64;
    let (mut router_ok, mut small_ok, mut large_ok, mut to_large) = (0usize, 0usize, 0usize, 0usize);
    for (row, d) in test.rows.iter().zip(&decisions) {
        let (ss, ls) = (row.score(s).expect("scored"), row.score(l).expect("scored"));
        small_ok += usize::from(ss >= ls);
        large_ok += usize::from(ls >= ss);
        let picked_large = d.model_name == LARGE;
        to_large += usize::from(picked_large);
        router_ok += usize::from(if picked_large { ls >= ss } else { ss >= ls });
    }
    let (r, a, b) = (router_ok as f64 / n, small_ok as f64 / n, large_ok as f64 / n);
    eprintln!(
        "llmrouter_dc test ({n} queries): picks the better model: thresholdrouter {r:.4} \
         ({to_large} sent to large), always-small {a:.4}, always-large {b:.4}"
    );
    assert!(r > a && r > b, "thresholdrouter {r:.4} must beat always-small {a:.4} and always-large {b:.4}");
}
