"""Wall time of the offline general-capability evaluation (lm-eval on local TruthfulQA MC1/MC2
and IFEval) of one model, the issue's budget being 10 minutes for the 135M embedded model.

    nice -n 10 python benchmarks/general_eval_time.py [--model embedded] [--adapter DIR] \
        [--limit N] [--max-new-tokens 256] [--batch-size 16] [--data ../shared/data]

Runs ``unforgotten.eval.general.evaluate_general`` once, without the lm-eval result cache (so
every loglikelihood and generation is computed), and prints per task group the seconds, the
number of documents and the headline metric; the last line is a JSON summary, also written to
benchmarks/results/general_eval_time.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from unforgotten.api import load_for_eval
from unforgotten.eval.general import evaluate_general

RESULTS = Path(__file__).resolve().parent / "results" / "general_eval_time.json"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data from the repo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--data", default=os.environ.get("UNFORGOTTEN_DATA", str(DATA)))
    ap.add_argument("--tasks", default="truthfulqa_mc1,truthfulqa_mc2,ifeval")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    t0 = time.perf_counter()
    model, tok = load_for_eval(args.model, args.adapter)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        block = evaluate_general(model, tok, args.tasks.split(","), data_dir=args.data, batch_size=args.batch_size,
                                 limit=args.limit, max_gen_toks=args.max_new_tokens, output_dir=tmp)
    total = time.perf_counter() - t0
    for group, s in block["seconds"].items():
        print(f"{group}: {s:.1f} s")
    for name, t in block["tasks"].items():
        print(f"{name}: n={t['n']} {t['metric']}={100 * t['value']:.1f} [{100 * t['ci_low']:.1f}-{100 * t['ci_high']:.1f}]")
    print(f"model load {load_s:.1f} s; total {total:.1f} s ({total / 60:.1f} min)")
    summary = {"model": args.model, "adapter": args.adapter, "limit": args.limit, "max_new_tokens": args.max_new_tokens,
               "batch_size": args.batch_size, "threads": torch.get_num_threads(), "load_s": round(load_s, 1),
               "total_s": round(total, 1), "general": block}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "general"} | {"seconds": block["seconds"]}))


if __name__ == "__main__":
    main()
