//! The shared router conformance suite for hybrid_llm.

llmrouter_core::conformance_tests!(router: hybrid_llm::HybridLlm, trainer: hybrid_llm::HybridTrainer, config: "config.yaml");
