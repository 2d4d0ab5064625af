//! The shared router conformance suite, plus the smallest-model choice on the example candidates.

llmrouter_core::conformance_tests!(router: smallest_llm::SmallestLlm, config: "config.yaml");
