//! The shared router conformance suite for thresholdrouter (train, route, save/load, bad files).

llmrouter_core::conformance_tests!(
    router: thresholdrouter::ThresholdRouter,
    trainer: thresholdrouter::ThresholdTrainer,
    config: "config.yaml",
);
