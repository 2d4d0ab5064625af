//! The shared router conformance suite for knnrouter.

llmrouter_core::conformance_tests!(router: knnrouter::KnnRouter, trainer: knnrouter::KnnTrainer, config: "config.yaml");
