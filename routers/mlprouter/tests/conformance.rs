//! The shared router conformance suite for mlprouter.

llmrouter_core::conformance_tests!(router: mlprouter::MlpRouter, trainer: mlprouter::MlpTrainer, config: "config.yaml");
