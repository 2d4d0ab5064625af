//! Names: what a well-formed router name is, and the closest names to a misspelt one (for the
//! router registry and the embedding-backend registry alike).

/// Up to three names close to `name`: by edit distance, or sharing a prefix or substring.
pub fn suggest(name: &str, available: &[String]) -> Vec<String> {
    let wanted = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &String)> = available
        .iter()
        .filter_map(|cand| {
            let d = edit_distance(&wanted, cand);
            let close = d <= 2.max(wanted.len() / 3);
            let related = wanted.len() >= 3 && (cand.contains(&wanted) || wanted.contains(cand.as_str()));
            (close || related).then_some((d, cand))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// Names as `` `a`, `b`, `c` ``, at most `max` of them, then `and N more`: an error about many
/// names stays one readable line.
pub fn list_capped(names: &[&str], max: usize) -> String {
    let shown: Vec<String> = names.iter().take(max).map(|n| format!("`{n}`")).collect();
    match names.len().saturating_sub(max) {
        0 => shown.join(", "),
        rest => format!("{} and {rest} more", shown.join(", ")),
    }
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether `name` is a well-formed router name: lower-case ASCII letters, digits and `_`,
/// starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_of_names_are_capped() {
        assert_eq!(list_capped(&["a", "b"], 3), "`a`, `b`");
        let many: Vec<String> = (0..10_000).map(|i| format!("m{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(list_capped(&many, 2), "`m0`, `m1` and 9998 more");
    }

    #[test]
    fn suggestions_rank_close_names_first() {
        let avail: Vec<String> = ["knnrouter", "mlprouter", "randomrouter", "smallest_llm"].map(String::from).to_vec();
        assert_eq!(suggest("knnroutr", &avail), vec!["knnrouter"]);
        assert_eq!(suggest("smallest", &avail), vec!["smallest_llm"]);
        assert!(suggest("zzzzzzzzzz", &avail).is_empty());
    }

    #[test]
    fn names_are_checked() {
        assert!(is_valid_name("my_router2"));
        assert!(!is_valid_name("MyRouter"));
        assert!(!is_valid_name("2router"));
        assert!(!is_valid_name("my-router"));
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
