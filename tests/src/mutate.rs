//! Damaged copies of valid documents, for the property tests of the parsers
//! (`tests/tests/parsers_never_panic.rs`).
//!
//! A case is a valid seed document plus a short list of [`Edit`]s, drawn by proptest and shrunk
//! by it when a case fails: edits of the JSON tree (a value replaced by one of another type or an
//! extreme number, a key removed or renamed, an array shortened or grown) and then edits of the
//! text (a span cut out, a tricky snippet put in, the end cut off). Edits name their target by a
//! number taken modulo the count of nodes or bytes, so every drawn edit applies to every seed.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// One change to a document.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // each variant's doc names its fields
pub enum Edit {
    /// Replace the `at`-th node (pre-order) with `with`.
    Replace { at: usize, with: Value },
    /// Remove the `at`-th node from the object or array that holds it.
    Remove { at: usize },
    /// Rename the key of the `at`-th node, when an object holds it.
    Rename { at: usize, to: String },
    /// Keep the first `keep` items of the `at`-th node, when it is an array.
    Shorten { at: usize, keep: usize },
    /// Append a copy of the `at`-th node's first item `times` times, when it is an array.
    Grow { at: usize, times: usize },
}

/// One change to the serialized text.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // each variant's doc names its fields
pub enum TextEdit {
    /// Cut `len` bytes out from `at`.
    Cut { at: usize, len: usize },
    /// Put `text` in at `at`.
    Insert { at: usize, text: String },
    /// Cut everything from `at` on (a write that was killed).
    Truncate { at: usize },
}

/// Numbers that break careless code: zero, signs, fractions just outside [0, 1], the limits of
/// the integer types, values that overflow to infinity once multiplied, subnormals.
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1.0000001,
    -1e-9,
    2.0,
    100.0,
    1e6,
    1e12,
    1e308,
    -1e308,
    5e-324,
    4294967296.0,
    9007199254740993.0,
    1.8446744073709552e19,
    -9.223372036854776e18,
    4194304.0,
    4194305.0,
    100001.0,
    1e-300,
];

/// Strings that break careless code.
const STRINGS: &[&str] = &[
    "",
    " ",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "1e999",
    "null",
    "true",
    "0x10",
    "ü",
    "\u{0}",
    "\u{202e}",
    "a\nb",
    "\t",
    "gemma-2-9b-it",
    "knnrouter",
    "hashed",
    "minilm",
    "performance",
    "cost",
    "../../etc/passwd",
    "/",
    ".",
];

/// Snippets put into the text: syntax of JSON and YAML that parsers must survive (anchors and
/// aliases, tags, merge keys, deep nesting, control characters, byte-order marks).
const SNIPPETS: &[&str] = &[
    "\n",
    "\r\n",
    "\t",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\u{feff}",
    "\u{0}",
    "&a [*a, *a]",
    "*a",
    "<<: *a",
    "!!binary aGk=",
    "!!float .nan",
    "? [a, b]\n: c",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "key: &x [1, 2]\nother: *x\n",
    "{\"a\": 1, \"a\": 2}",
    "1e309",
    "-0",
    "NaN",
    "Infinity",
    "\u{fffd}",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(NUMBERS).prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e3f64..1e3).prop_map(|n| json!(n)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(STRINGS).prop_map(str::to_owned),
        proptest::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),
        (1usize..20_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)]
}

/// A JSON value of any type: scalars, and arrays and objects of scalars.
pub fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => proptest::collection::vec(scalar(), 0..6).prop_map(Value::Array),
        1 => proptest::collection::vec((text(), scalar()), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
    ]
}

/// One edit of the JSON tree.
pub fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        5 => (at, value()).prop_map(|(at, with)| Edit::Replace { at, with }),
        2 => at.prop_map(|at| Edit::Remove { at }),
        1 => (at, text()).prop_map(|(at, to)| Edit::Rename { at, to }),
        1 => (at, 0usize..4).prop_map(|(at, keep)| Edit::Shorten { at, keep }),
        1 => (at, 1usize..4).prop_map(|(at, times)| Edit::Grow { at, times }),
    ]
}

/// One edit of the text.
pub fn text_edit() -> impl Strategy<Value = TextEdit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1usize..64).prop_map(|(at, len)| TextEdit::Cut { at, len }),
        (at, proptest::sample::select(SNIPPETS)).prop_map(|(at, s)| TextEdit::Insert { at, text: s.to_owned() }),
        (at, text()).prop_map(|(at, text)| TextEdit::Insert { at, text }),
        at.prop_map(|at| TextEdit::Truncate { at }),
    ]
}

/// The edits of one case: up to three tree edits, and text edits in about a third of the cases.
pub fn edits() -> impl Strategy<Value = (Vec<Edit>, Vec<TextEdit>)> {
    (
        proptest::collection::vec(edit(), 1..4),
        prop_oneof![2 => Just(Vec::new()), 1 => proptest::collection::vec(text_edit(), 1..3)],
    )
}

/// One step from a node to a child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                here.push(Step::Key(k.clone()));
                paths(v, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                here.push(Step::Index(i));
                paths(v, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// Applies `edits` to `doc`, in order.
pub fn apply(doc: &mut Value, edits: &[Edit]) {
    for edit in edits {
        let mut all = Vec::new();
        paths(doc, &mut Vec::new(), &mut all);
        let at = match edit {
            Edit::Replace { at, .. }
            | Edit::Remove { at }
            | Edit::Rename { at, .. }
            | Edit::Shorten { at, .. }
            | Edit::Grow { at, .. } => *at,
        };
        let path = all[at % all.len()].clone();
        match edit {
            Edit::Replace { with, .. } => {
                if let Some(v) = node(doc, &path) {
                    *v = with.clone();
                }
            }
            Edit::Remove { .. } | Edit::Rename { .. } => {
                let Some((last, parent)) = path.split_last() else { continue };
                let Some(parent) = node(doc, parent) else { continue };
                match (parent, last) {
                    (Value::Object(map), Step::Key(k)) => {
                        if let Some(v) = map.remove(k)
                            && let Edit::Rename { to, .. } = edit
                        {
                            map.insert(to.clone(), v);
                        }
                    }
                    (Value::Array(items), Step::Index(i)) if matches!(edit, Edit::Remove { .. }) => {
                        items.remove(*i);
                    }
                    _ => {}
                }
            }
            Edit::Shorten { keep, .. } => {
                if let Some(Value::Array(items)) = node(doc, &path) {
                    items.truncate(*keep);
                }
            }
            Edit::Grow { times, .. } => {
                if let Some(Value::Array(items)) = node(doc, &path)
                    && let Some(first) = items.first().cloned()
                {
                    items.extend(std::iter::repeat_n(first, *times));
                }
            }
        }
    }
}

/// Applies `edits` to `text`, in order, at char boundaries.
pub fn apply_text(text: &mut String, edits: &[TextEdit]) {
    let boundary = |text: &str, at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    for edit in edits {
        match edit {
            TextEdit::Cut { at, len } => {
                let start = boundary(text, *at);
                let end = boundary(text, start.saturating_add(*len).min(text.len()));
                text.replace_range(start..end.max(start), "");
            }
            TextEdit::Insert { at, text: s } => {
                let at = boundary(text, *at);
                text.insert_str(at, s);
            }
            TextEdit::Truncate { at } => {
                let at = boundary(text, *at);
                text.truncate(at);
            }
        }
    }
}

/// A JSON-lines document as one array of its lines' values (so tree edits reach every line, and
/// can remove or repeat lines), and back.
pub fn lines_to_array(text: &str) -> Value {
    Value::Array(
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("seed")).collect(),
    )
}

/// The inverse of [`lines_to_array`]: one compact JSON value a line.
pub fn array_to_lines(doc: &Value) -> String {
    match doc {
        Value::Array(items) => items.iter().map(|v| format!("{v}\n")).collect(),
        other => format!("{other}\n"),
    }
}

/// The seed the property tests draw from unless `PROPTEST_RNG_SEED` gives another.
pub const FIXED_SEED: u64 = 0x11_6d_72_6f_75_74_65_72;

/// How many cases each property runs: 10,000, or `PROPTEST_CASES` when it is set (for longer
/// runs: `PROPTEST_CASES=200000 cargo test -p llmrouter-tests --release --test parsers_never_panic`),
/// drawn from [`FIXED_SEED`] or `PROPTEST_RNG_SEED`.
pub fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 10_000;
    }
    // A fixed seed by default, so that a run in CI draws the same cases as the run before the
    // commit: a new draw finds new bugs, and that is exploring, done on purpose with
    // `PROPTEST_RNG_SEED=<u64>` (different seeds, different cases), not by chance at merge time.
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(FIXED_SEED);
    }
    // A failing case is printed, shrunk, with its seed; nothing is written into the source tree.
    config.failure_persistence = None;
    config
}
