"""Measure the embedded default's alignment: choose on the dev split, report on other sets.

    DATA="--set align.safety=starter:align_refusals --set align.benign=[starter:align_benign,starter:general_helpful]"
    # 1. choose: align with each candidate setting, evaluate on the align DEV split only
    python benchmarks/align_default.py dev $DATA --set align.train.lr=2e-3 --set align.train.max_steps=48
    # 2. report: the chosen setting on AdvBench, DirectHarm4, XSTest (../shared/data), the
    #    starter sets, and the base model's starter-sentiment accuracy for comparison
    python benchmarks/align_default.py report --data ../shared/data --every advbench=5,directharm4=4,xstest=2 \
        $DATA --set align.train.lr=2e-3 --set align.train.max_steps=48 --base

The dev split (starter:align_dev_harmful, starter:align_dev_benign) holds harm seeds and benign
requests that alignment never trains on; settings are chosen there and never on the reported
sets. ``--every NAME=K`` evaluates every K-th row of a benchmark file (a stratified subset: the
upstream files are sorted by category, so the first rows would be one category); the subset
files are written under the output directory in upstream layout, never into the repository.
Each run prints one table and saves it as JSON under benchmarks/results/align_default/.

Alignment is cached by content hash (unforgotten.api.align), generations by the weights'
fingerprint, so rerunning a stage only judges and prints.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "align_default"
DEV = ["harmful=starter:align_dev_harmful", "overrefusal=starter:align_dev_benign"]
REPORT = ["advbench", "directharm4", "xstest", "starter-harmful", "starter-benign", "starter-sentiment"]
UPSTREAM = {"advbench": ("advbench/harmful_behaviors.csv", None), "directharm4": ("directharm4/directHarm4.csv", None),
            "xstest": ("xstest/xstest_prompts.csv", ("label", "safe"))}


def subset_dir(data: Path, every: dict[str, int], out: Path) -> Path:
    """A data dir in upstream layout holding every K-th row of the named benchmark files
    (XSTest: of its safe prompts, the only ones over-refusal counts)."""
    for name, k in every.items():
        rel, keep = UPSTREAM[name]
        with open(data / rel, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if keep is None or r[keep[0]] == keep[1]][::k]
            fields = reader.fieldnames
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    return out


def values(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{benchmark: {judge or 'accuracy': percent}} from an evaluation summary."""
    out: dict[str, dict[str, float]] = {}
    for name, b in summary["benchmarks"].items():
        if "by_judge" in b:
            out[name] = {j: round(100 * v["value"], 1) for j, v in b["by_judge"].items()}
        else:
            out[name] = {b["metric"]: round(100 * b["result"]["value"], 1)}
        out[name]["n"] = b["n"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["dev", "report"])
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override (align.train.lr=1e-3)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--every", default="", help="NAME=K,...: every K-th row of these benchmark files")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "align_default")
    ap.add_argument("--base", action="store_true", help="also evaluate the unaligned model (starter-sentiment only)")
    ap.add_argument("--tag", default=None, help="name of the result file (default: from the overrides)")
    ap.add_argument("--only", default="", help="comma-separated subset of the stage's benchmarks (to split the work "
                    "over processes; the generation cache is shared)")
    args = ap.parse_args(argv)

    from unforgotten import api
    from unforgotten.config import load_config

    every = {k: int(v) for k, v in (p.split("=") for p in args.every.split(",") if p)}
    tag = args.tag or "_".join(s.split(".")[-1].replace("=", "") for s in args.sets) or "default"
    out = args.out / f"{args.stage}_{tag}"
    data = subset_dir(args.data, every, out / "data") if every else args.data
    benchmarks = DEV if args.stage == "dev" else REPORT
    if args.only:
        benchmarks = [b for b in benchmarks if b.partition("=")[0] in args.only.split(",") or b in args.only.split(",")]
    cfg = load_config(None, [*args.sets, f"output_dir={out}", f"eval.data_dir={data}",
                             f"eval.benchmarks={json.dumps(benchmarks)}", "eval.judges=[keyword, learned]",
                             "eval.max_new_tokens=32"])  # the demo's generation length
    t0 = time.perf_counter()
    aligned = api.align(cfg)
    t_align = time.perf_counter() - t0
    rows = {"aligned": values(api.evaluate(cfg, model_source=str(aligned), output_dir=out / "eval_aligned", label="aligned"))}
    if args.base:
        base_cfg = load_config(None, [f"output_dir={out}", "eval.benchmarks=[starter-sentiment]"])
        rows["base"] = values(api.evaluate(base_cfg, output_dir=out / "eval_base", label="base"))
    result = {"stage": args.stage, "overrides": args.sets, "every": every, "aligned_model": str(aligned),
              "align_seconds_this_run": round(t_align, 1), "eval_seconds": round(time.perf_counter() - t0 - t_align, 1),
              "results": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.stage}_{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.stage} {' '.join(args.sets) or '(defaults)'}" + (f"  (every: {every})" if every else ""))
    for model, bench in rows.items():
        for name, v in bench.items():
            print(f"  {model:8s} {name:22s} " + "  ".join(f"{k} {x}" for k, x in v.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
