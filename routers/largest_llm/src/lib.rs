//! `largest_llm`: a baseline that sends every query to the largest candidate model
//! (`llmrouter_core::BySize<true>`: by parsed `size` when every candidate has one, otherwise by
//! price; ties by price, then name). Nothing to train.

/// Routes everything to the largest candidate.
pub type LargestLlm = llmrouter_core::BySize<true>;

llmrouter_core::register_router! {
    router: LargestLlm,
    name: "largest_llm",
    summary: "Baseline: every query goes to the largest candidate (by size, else by price)",
    docs: include_str!("../README.md"),
}
