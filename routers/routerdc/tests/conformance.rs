//! The shared router conformance suite for routerdc.

llmrouter_core::conformance_tests!(router: routerdc::RouterDc, trainer: routerdc::RouterDcTrainer, config: "config.yaml");
