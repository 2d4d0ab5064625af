//! `smallest_llm`: a baseline that sends every query to the smallest candidate model
//! (`llmrouter_core::BySize<false>`: by parsed `size` when every candidate has one, otherwise by
//! price; ties by price, then name). Nothing to train.

/// Routes everything to the smallest candidate.
pub type SmallestLlm = llmrouter_core::BySize<false>;

llmrouter_core::register_router! {
    router: SmallestLlm,
    name: "smallest_llm",
    summary: "Baseline: every query goes to the smallest candidate (by size, else by price)",
    docs: include_str!("../README.md"),
}
