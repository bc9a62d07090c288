"""Training throughput: unforgotten's loop vs a plain Hugging Face Trainer, same data and LoRA.

Both train the embedded SmolLM2-135M-Instruct with the same LoRA settings, batch size, learning
rate and samples (SST-2 prompts in the Alpaca template, as the field's benchmarks use, from
../shared/data when present; else the starter sentiment task), in one process, alternating
rounds so machine noise hits both. Reported: non-pad tokens per second, and their ratio.

The baseline is what a peer library wrapping ``Trainer`` does: pad to the longest sample in the
batch (DataCollatorForSeq2Seq), random order, logits at every position. Ours: length-grouped
batches with dynamic padding, and the LM head only at positions that have a label.

Also printed: this CPU's fp32 GEMM rate and the FLOPs-per-token estimate, so the tokens/s can be
read as a fraction of what the hardware does.

    python benchmarks/train_speed.py [--steps 6] [--batch-size 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from unforgotten.config import TrainConfig
from unforgotten.data import load_records
from unforgotten.data.tokenize import IGNORE, encode_records
from unforgotten.models import LoraSettings, apply_lora, load_model
from unforgotten.train.loop import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lisa_style_prepared" / "sst2" / "train_merged_n1000_p0.json"


def user_records(n: int):
    if SHARED.is_file():
        recs = [r for r in load_records(str(SHARED), spec="alpaca") if not r.get("is_poison")]
        return recs[:n], f"{SHARED.name} (SST-2, Alpaca template)"
    return load_records("starter:task_train", limit=n, seed=0), "starter:task_train"


def gemm_gflops(n: int = 1024, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def ours(records, lora: LoraSettings, steps: int, bs: int, out: Path) -> float:
    model, tok = load_model()
    model = apply_lora(model, lora)
    cfg = TrainConfig(lr=1e-4, max_steps=steps + 1, batch_size=bs, save_every=0, max_length=256, seed=0)
    res = train(model, tok, records, cfg, out, progress=False)
    # drop the first step (allocator warm-up), as for the baseline
    t = res.log[-1]["elapsed_s"] - res.log[0]["elapsed_s"]
    tokens = res.log[-1]["tokens"] - res.log[0]["tokens"]
    return tokens / t


def hf_trainer(records, lora: LoraSettings, steps: int, bs: int, out: Path) -> float:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    model, tok = load_model()
    model = apply_lora(model, lora)
    encoded, _ = encode_records(tok, records, 256)  # same tokens and masks as ours
    dataset = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels} for e in encoded]

    class Clock(TrainerCallback):
        def __init__(self):
            self.t: list[float] = []
            self.tokens: list[int] = []

        def on_step_end(self, args, state, control, **kw):
            self.t.append(time.perf_counter())

    clock = Clock()
    collator = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=IGNORE)
    seen = []

    def counting_collator(features):
        seen.append(sum(len(f["input_ids"]) for f in features))
        return collator(features)

    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=bs, max_steps=steps + 1, learning_rate=1e-4,
        lr_scheduler_type="cosine", warmup_steps=1, save_strategy="no", report_to=[], logging_strategy="no",
        use_cpu=True, dataloader_num_workers=0, seed=0, disable_tqdm=True, remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=counting_collator, callbacks=[clock])
    trainer.train()
    tokens = sum(seen[1 : steps + 1])
    return tokens / (clock.t[-1] - clock.t[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, default=400)
    a = ap.parse_args()
    torch.manual_seed(0)
    records, source = user_records(a.samples)
    lora = LoraSettings()  # the study's defaults: r=8, alpha=4, dropout 0.1, all linear layers
    out = Path("/tmp/unforgotten-train-speed")
    results: dict[str, list[float]] = {"unforgotten": [], "hf_trainer": []}
    for r in range(a.rounds):
        results["hf_trainer"].append(hf_trainer(records, lora, a.steps, a.batch_size, out / f"hf{r}"))
        results["unforgotten"].append(ours(records, lora, a.steps, a.batch_size, out / f"uf{r}"))
        print(f"round {r}: ours {results['unforgotten'][-1]:.0f} tok/s, HF Trainer {results['hf_trainer'][-1]:.0f} tok/s", flush=True)

    model, _ = load_model()
    n_params = sum(p.numel() for p in model.parameters())
    hidden, vocab = model.config.hidden_size, model.config.vocab_size
    # Frozen base + LoRA: forward 2N, backward through activations 2N (no weight grads) per token.
    flops_per_token = 4 * n_params
    gflops = gemm_gflops()
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    summary = {
        "data": source, "batch_size": a.batch_size, "steps_timed": a.steps, "rounds": a.rounds,
        "lora": {"r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout, "targets": lora.target_modules},
        "unforgotten_tok_per_s": round(med["unforgotten"], 1), "hf_trainer_tok_per_s": round(med["hf_trainer"], 1),
        "speedup": round(med["unforgotten"] / med["hf_trainer"], 2),
        "cpu_fp32_gemm_gflops": round(gflops, 1), "params": n_params,
        "flops_per_token_estimate": flops_per_token, "lm_head_flops_per_label_token": 2 * hidden * vocab,
        "unforgotten_fraction_of_gemm_peak": round(med["unforgotten"] * flops_per_token / (gflops * 1e9), 3),
        "threads": torch.get_num_threads(),
    }
    print(f"ours {summary['unforgotten_tok_per_s']} tok/s vs HF Trainer {summary['hf_trainer_tok_per_s']} tok/s: "
          f"{summary['speedup']}x; GEMM {summary['cpu_fp32_gemm_gflops']} GFLOP/s; ~{flops_per_token/1e9:.2f} GFLOP/token")
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
