//! The shared router conformance suite for mfrouter.

llmrouter_core::conformance_tests!(router: mfrouter::MfRouter, trainer: mfrouter::MfTrainer, config: "config.yaml");
