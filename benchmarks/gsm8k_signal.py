"""Does the embedded 135M model learn enough GSM8K to make it a second user task? (issue 6)

The study fine-tunes on GSM8K as well as SST-2. A task only tells us something about
safety-utility trade-offs if fine-tuning moves its metric: this script measures exact match of the
final number on the first ``--n`` GSM8K test problems for the aligned model (the grid's starting
point) and for the aligned model after plain SFT on 1,000 clean GSM8K training problems, with the
grid's training settings (LoRA, lr 1e-3, 1 epoch, batch 8 as 2 x 4). It prints both with 95% bootstrap CIs
and writes ``benchmarks/results/gsm8k_signal.json``.

    UNFORGOTTEN_CACHE=... python benchmarks/gsm8k_signal.py --n 100

Resumable like the grid: the fine-tune checkpoints under ``runs/gsm8k_signal`` and generation is
cached.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reproduce  # noqa: E402  (the grid's data split, base config and aligned model)

RESULT = reproduce.ROOT / "benchmarks" / "results" / "gsm8k_signal.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=reproduce.ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=reproduce.ROOT / "runs" / "gsm8k_signal")
    ap.add_argument("--n", type=int, default=100, help="GSM8K test problems (the first n)")
    ap.add_argument("--n-train", type=int, default=1000, help="GSM8K training problems for SFT")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    args = ap.parse_args(argv)

    from unforgotten import api

    alignment = reproduce.Alignment()
    grid_out = reproduce.ROOT / "runs" / "reproduce" / alignment.tag
    sources = reproduce.prepare_data(args.data, grid_out / "data", alignment.safety_rows)
    base = reproduce.base_config(sources, args.data, grid_out, alignment)
    aligned = str(api.align(base, progress=False))  # cached: the grid's aligned model

    cfg = dataclasses.replace(
        base, name="gsm8k_sft", output_dir=str(args.out / "sft_b4x2"),
        data=dataclasses.replace(base.data, user=str(args.data / "gsm8k" / "train.jsonl"), n=args.n_train,
                                 poison_ratio=0.0),
        # GSM8K solutions are long: 384 tokens keeps nearly all of them whole. At batch 8 x 384
        # tokens one step's activations reached 12 GB RSS (killed by the OOM killer next to two
        # grid workers), so the batch of 8 is taken as 2 accumulated micro-batches of 4: the same
        # optimizer step (the loss is the token mean over the whole step), half the memory.
        train=dataclasses.replace(base.train, max_length=384, batch_size=4, grad_accum=2),
        eval=dataclasses.replace(base.eval, benchmarks=["gsm8k"], limits={"gsm8k": args.n},
                                 task_max_new_tokens=args.max_new_tokens),
        compare=["sft"],
    )
    results: dict[str, dict] = {}

    t0 = time.perf_counter()
    summary = api.evaluate(cfg, model_source=aligned, output_dir=args.out / "eval_aligned", label="aligned",
                           progress=False)
    results["aligned"] = {"gsm8k": summary["benchmarks"]["gsm8k"]["result"], "eval_seconds": round(time.perf_counter() - t0, 1)}
    print(f"aligned:  {_fmt(results['aligned']['gsm8k'])}", flush=True)

    ft, summary, train_s, eval_s = reproduce.finetune_and_evaluate(cfg, aligned, args.out / "eval_sft",
                                                                  "aligned + sft on GSM8K")
    results["sft"] = {"gsm8k": summary["benchmarks"]["gsm8k"]["result"], "train_steps": ft.steps,
                      "final_loss": ft.final_loss, "train_seconds": train_s, "eval_seconds": eval_s}
    print(f"+ sft:    {_fmt(results['sft']['gsm8k'])}", flush=True)

    record = {"n_test": args.n, "n_train": args.n_train, "max_new_tokens": args.max_new_tokens,
              "alignment": alignment.tag, "results": results}
    RESULT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return 0


def _fmt(r: dict) -> str:
    return f"exact match {100 * r['value']:.1f}% [{100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f}] (n={r['n']})"


if __name__ == "__main__":
    sys.exit(main())
