//! The shared router conformance suite for svmrouter.

llmrouter_core::conformance_tests!(router: svmrouter::SvmRouter, trainer: svmrouter::SvmTrainer, config: "config.yaml");
