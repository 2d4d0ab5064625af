//! The shared router conformance suite, plus the largest-model choice on the example candidates.

llmrouter_core::conformance_tests!(router: largest_llm::LargestLlm, config: "config.yaml");
