//! The shared router conformance suite for elorouter.

llmrouter_core::conformance_tests!(router: elorouter::EloRouter, trainer: elorouter::EloTrainer, config: "config.yaml");
