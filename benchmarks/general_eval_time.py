"""Wall time of the offline general-capability evaluation (lm-eval on local TruthfulQA MC1/MC2
and IFEval) of one model, the issue's budget being 10 minutes for the 135M embedded model.

    nice -n 10 python benchmarks/general_eval_time.py [--model embedded] [--adapter DIR] \
        [--limit N] [--max-new-tokens 256] [--batch-size 16] [--data ../shared/data]
    python benchmarks/general_eval_time.py --compare-hflm --limit 10   # log-likelihood backends, same run

``--compare-hflm`` times TruthfulQA MC1+MC2 (``--limit`` questions) with lm-eval's plain ``HFLM``
and with ``SharedPrefixHFLM`` in the same process, alternating (HFLM, shared, HFLM, shared), and
prints both times, the ratio and whether the scores agree.

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
    ap.add_argument("--compare-hflm", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if args.compare_hflm:
        return compare_hflm(args)
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
    summary = {"load_average_1m_at_end": round(os.getloadavg()[0], 1), "model": args.model, "adapter": args.adapter, "limit": args.limit, "max_new_tokens": args.max_new_tokens,
               "batch_size": args.batch_size, "threads": torch.get_num_threads(), "load_s": round(load_s, 1),
               "total_s": round(total, 1), "general": block}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "general"} | {"seconds": block["seconds"]}))


def compare_hflm(args) -> None:
    model, tok = load_for_eval(args.model, args.adapter)
    tasks = ["truthfulqa_mc1", "truthfulqa_mc2"]
    times: dict[bool, list[float]] = {False: [], True: []}
    values: dict[bool, dict[str, float]] = {}
    for _ in range(args.rounds):
        for shared in (False, True):
            t0 = time.perf_counter()
            block = evaluate_general(model, tok, tasks, data_dir=args.data, batch_size=args.batch_size,
                                     limit=args.limit, shared_prefix=shared)
            times[shared].append(time.perf_counter() - t0)
            values[shared] = {t: v["value"] for t, v in block["tasks"].items()}
            print(f"{'SharedPrefixHFLM' if shared else 'HFLM'}: {times[shared][-1]:.1f} s {values[shared]}", flush=True)
    best = {k: min(v) for k, v in times.items()}
    agree = all(abs(values[True][t] - values[False][t]) < 1e-4 for t in tasks)
    summary = {"load_average_1m_at_end": round(os.getloadavg()[0], 1), "limit": args.limit, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
               "hflm_s": round(best[False], 1), "shared_prefix_s": round(best[True], 1),
               "speedup": round(best[False] / best[True], 2), "scores_agree": agree, "scores": values[True]}
    print(f"best of {args.rounds}: HFLM {best[False]:.1f} s, SharedPrefixHFLM {best[True]:.1f} s, "
          f"{summary['speedup']:.2f}x; scores agree: {agree}")
    print(json.dumps(summary))
    out = Path(args.out).with_name("general_eval_hflm_compare.json")
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
