//! The shared router conformance suite: builds from config.yaml, routes only to candidates, is
//! deterministic, rejects empty queries.

llmrouter_core::conformance_tests!(router: {{crate_name}}::{{crate_name | pascal_case}}, config: "config.yaml");
