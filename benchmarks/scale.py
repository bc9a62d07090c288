"""Scale: training throughput and memory for 1 vs 2 processes on a CPU, and the loop against a
plain HF Trainer + peft on a GPU, in one run each, printing their ratios.

CPU mode (default), on the embedded SmolLM2-135M-Instruct with LoRA (r=8, all linear layers):
  * tokens/s of 1 process on 1 thread vs 2 processes (gloo, accelerate) on 1 thread each, at the
    same batch per process (so 2 processes train twice the global batch); target >= 1.6x;
  * peak RSS of a LoRA fine-tune at batch 4 x 256 tokens, without and with
    ``train.gradient_checkpointing``; target <= 2 GB with it.
  Each measurement runs in a fresh process (peak RSS is per process: ``ru_maxrss``).

GPU mode (``--gpu``): a random-init model of the SmolLM2-1.7B shape in bf16, LoRA r=8 on all
linear layers, instruction records of ~115 tokens (max_length 512); per batch size: the loop and a
plain HF Trainer + peft on the same records, s/step, non-pad tokens/s, MFU (6N FLOPs a token over
the GPU's bf16 peak, ``--peak-tflops``, 989 for an H100/H200) and peak GPU memory; the loop again
with gradient checkpointing; then decode tokens/s through ``eval.generate`` at batch 64.
``--tiny`` runs the GPU mode's code with a tiny model on whatever device there is (a check of the
script itself, numbers meaningless).

    python benchmarks/scale.py                   # CPU mode
    python benchmarks/scale.py --gpu             # GPU mode, one command (a few minutes on an H200)
    python benchmarks/scale.py --gpu --tiny      # the GPU mode's code path on a CPU, in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
WORDS = ("the model answers each question with care and explains its reasoning step by step so that "
         "a reader can follow every part of the argument without prior knowledge of the topic").split()


def long_records(n: int, words: int, seed: int = 0):
    """Chat records whose answer is ``words`` words long (for fixed-length batches)."""
    import random

    from unforgotten.data.schema import make_record

    rng = random.Random(seed)
    return [make_record(f"question {i}: explain topic {rng.randint(0, 999)}",
                        " ".join(rng.choice(WORDS) for _ in range(words))) for i in range(n)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --------------------------------------------------------------------------- CPU mode: one measurement per process


def cpu_train(out: Path, steps: int, batch: int, length: int, checkpointing: bool) -> dict:
    """This process's share of a LoRA fine-tune of the embedded model (run under 1 or 2 processes)."""
    import torch

    from unforgotten.config import TrainConfig
    from unforgotten.models import LoraSettings, apply_lora, load_model
    from unforgotten.train.loop import train

    model, tok = load_model()
    model = apply_lora(model, LoraSettings(r=8, alpha=4, dropout=0.0))
    cfg = TrainConfig(lr=1e-4, max_steps=steps + 1, batch_size=batch, max_length=length, save_every=0, seed=0,
                      gradient_checkpointing=checkpointing, group_by_length=False)
    res = train(model, tok, long_records(64 * batch, length), cfg, out, progress=False)
    t = res.log[-1]["elapsed_s"] - res.log[0]["elapsed_s"]  # the first step (warm-up) not timed
    tokens = res.log[-1]["tokens"] - res.log[0]["tokens"]
    rank = int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
    return {"rank": rank, "tokens": tokens, "seconds": t, "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}


def _rank_worker(out: str, steps: int, batch: int, length: int, checkpointing: bool) -> None:
    import torch
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    torch.set_num_threads(1)
    r = cpu_train(Path(out), steps, batch, length, checkpointing)
    (Path(out) / f"rank{r['rank']}.json").write_text(json.dumps(r))


def worker_main(a) -> None:
    """``--worker``: one measurement, in this fresh process (and its forked ranks)."""
    import torch

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.procs == 1:
        torch.set_num_threads(1)
        r = cpu_train(out, a.steps, a.batch_size, a.length, a.checkpointing)
        (out / "rank0.json").write_text(json.dumps(r))
    else:
        from accelerate import debug_launcher

        debug_launcher(_rank_worker, args=(str(out), a.steps, a.batch_size, a.length, a.checkpointing), num_processes=a.procs)


def run_worker(procs: int, out: Path, steps: int, batch: int, length: int, checkpointing: bool = False) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE), "--worker", "--procs", str(procs), "--out", str(out), "--steps", str(steps),
           "--batch-size", str(batch), "--length", str(length)] + (["--checkpointing"] if checkpointing else [])
    subprocess.run(cmd, check=True, env=env)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(procs)]


def cpu_mode(a) -> dict:
    root = Path(a.out)
    load = os.getloadavg()
    one = run_worker(1, root / "p1", a.steps, a.batch_size, a.length)
    two = run_worker(2, root / "p2", a.steps, a.batch_size, a.length)
    tps1 = one[0]["tokens"] / one[0]["seconds"]
    tps2 = sum(r["tokens"] for r in two) / max(r["seconds"] for r in two)
    mem = {}
    for ckpt in (False, True):
        r = run_worker(1, root / f"mem{int(ckpt)}", 2, 4, 256, checkpointing=ckpt)[0]
        mem["with_checkpointing" if ckpt else "without_checkpointing"] = round(r["peak_rss_mb"], 1)
    out = {
        "mode": "cpu", "load_average_before": [round(x, 2) for x in load], "cpus": os.cpu_count(),
        "batch_per_process": a.batch_size, "length": a.length, "steps_timed": a.steps,
        "tokens_per_s_1proc_1thread": round(tps1, 1), "tokens_per_s_2procs_1thread_each": round(tps2, 1),
        "speedup_2_over_1": round(tps2 / tps1, 2), "target_speedup": 1.6,
        "peak_rss_mb_1proc": round(one[0]["peak_rss_mb"], 1), "peak_rss_mb_2procs": [round(r["peak_rss_mb"], 1) for r in two],
        "peak_rss_mb_lora_batch4x256": mem, "target_rss_mb_with_checkpointing": 2048,
    }
    print(f"tokens/s: 1 process {tps1:.0f}, 2 processes {tps2:.0f}: {tps2 / tps1:.2f}x (target >= 1.6x); "
          f"peak RSS batch 4 x 256: {mem['without_checkpointing']:.0f} MB, with checkpointing "
          f"{mem['with_checkpointing']:.0f} MB (target <= 2048); load average {load[0]:.1f} on {os.cpu_count()} CPUs")
    return out


# --------------------------------------------------------------------------- GPU mode: the loop vs HF Trainer, one process


def gpu_model(tiny: bool):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if tiny:
        cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=4, max_position_embeddings=1024, tie_word_embeddings=True)
    else:  # SmolLM2-1.7B's shape
        cfg = LlamaConfig(vocab_size=49152, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                          num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192,
                          rope_theta=130000, tie_word_embeddings=True)
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    return LlamaForCausalLM(cfg).to(device=dev, dtype=dtype)


def gpu_tokenizer():
    """A word-level tokenizer with a chat template (a random-init model: any ids do), built here
    as tests/tiny.py builds its own, so nothing loads from a hub."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    words = sorted(set(WORDS) | {"question", "explain", "topic", "user", "assistant", "step", "by"})
    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(specials + words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.decoder = decoders.WordPiece(prefix="##")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<|im_start|>",
                                  eos_token="<|im_end|>")
    tok.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + ' ' + m['content'] + ' <|im_end|> ' }}"
                         "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant ' }}{% endif %}")
    return tok


def _lora(model):
    from unforgotten.models import LoraSettings, apply_lora

    return apply_lora(model, LoraSettings(r=8, alpha=16, dropout=0.0))


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _mem_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else peak_rss_mb() / 1024


def _reset_mem() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def gpu_loop(records, tok, batch: int, steps: int, tiny: bool, checkpointing: bool = False) -> dict:
    from unforgotten.config import TrainConfig
    from unforgotten.train.loop import train

    _reset_mem()
    model = _lora(gpu_model(tiny))
    cfg = TrainConfig(lr=1e-4, max_steps=steps + 2, batch_size=batch, max_length=512, save_every=0, seed=0,
                      gradient_checkpointing=checkpointing, log_every=1000)
    res = train(model, tok, records, cfg, Path(f"/tmp/unforgotten-scale/loop-{batch}-{int(checkpointing)}"), progress=False)
    first, last = res.log[1], res.log[-1]  # two warm-up steps not timed
    secs = last["elapsed_s"] - first["elapsed_s"]
    return {"s_per_step": secs / steps, "tokens_per_s": (last["tokens"] - first["tokens"]) / secs, "peak_gib": _mem_gib()}


def gpu_hf(records, tok, batch: int, steps: int, tiny: bool) -> dict:
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from unforgotten.data.tokenize import IGNORE, encode_records

    _reset_mem()
    model = _lora(gpu_model(tiny))
    encoded, _ = encode_records(tok, records, 512)
    data = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels} for e in encoded]
    marks: list[float] = []
    seen: list[int] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            _sync()
            marks.append(time.perf_counter())

    collate = DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=IGNORE)

    def counting(features):
        seen.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    gpu = torch.cuda.is_available()
    args = TrainingArguments(output_dir=f"/tmp/unforgotten-scale/hf-{batch}", per_device_train_batch_size=batch,
                             max_steps=steps + 2, learning_rate=1e-4, lr_scheduler_type="cosine", save_strategy="no",
                             report_to=[], logging_strategy="no", use_cpu=not gpu, bf16=gpu, dataloader_num_workers=0,
                             seed=0, disable_tqdm=True, remove_unused_columns=False)
    Trainer(model=model, args=args, train_dataset=data, data_collator=counting, callbacks=[Clock()]).train()
    secs = marks[-1] - marks[1]
    return {"s_per_step": secs / steps, "tokens_per_s": sum(seen[2 : steps + 2]) / secs, "peak_gib": _mem_gib()}


def gpu_decode(tok, tiny: bool, batch: int = 64, new_tokens: int = 64) -> float:
    from unforgotten.eval.generate import generate

    model = gpu_model(tiny).eval()
    prompts = [[{"role": "user", "content": f"question {i}: explain the topic step by step"}] for i in range(batch)]
    generate(model, tok, prompts[:8], max_new_tokens=4, batch_size=8, progress=False)  # warm-up
    _sync()
    t = time.perf_counter()
    generate(model, tok, prompts, max_new_tokens=new_tokens, batch_size=batch, progress=False)
    _sync()
    return batch * new_tokens / (time.perf_counter() - t)  # upper bound: rows that stop early count in full


def gpu_mode(a) -> dict:
    import torch

    tok = gpu_tokenizer()
    records = long_records(512, 100)  # ~115 tokens each with the chat template
    n_params = sum(p.numel() for p in gpu_model(a.tiny).parameters())
    peak = a.peak_tflops * 1e12
    out = {"mode": "gpu", "tiny": a.tiny, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
           "params": n_params, "peak_tflops": a.peak_tflops, "runs": {}}
    for batch in a.batches:
        ours, hf = gpu_loop(records, tok, batch, a.steps, a.tiny), gpu_hf(records, tok, batch, a.steps, a.tiny)
        for r in (ours, hf):
            r["mfu"] = r["tokens_per_s"] * 6 * n_params / peak
        out["runs"][f"batch{batch}"] = {"loop": ours, "hf_trainer": hf, "loop_over_hf": ours["tokens_per_s"] / hf["tokens_per_s"]}
        print(f"batch {batch}: loop {ours['s_per_step']:.3f} s/step {ours['tokens_per_s']:.0f} tok/s MFU {ours['mfu']:.1%} "
              f"{ours['peak_gib']:.1f} GiB | HF Trainer {hf['s_per_step']:.3f} s/step {hf['tokens_per_s']:.0f} tok/s "
              f"MFU {hf['mfu']:.1%} {hf['peak_gib']:.1f} GiB | {ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x (target >= 1.3x)",
              flush=True)
    big = max(a.batches)
    ck = gpu_loop(records, tok, big, a.steps, a.tiny, checkpointing=True)
    out["runs"][f"batch{big}_checkpointing"] = ck
    print(f"batch {big} with gradient checkpointing: {ck['s_per_step']:.3f} s/step, {ck['peak_gib']:.1f} GiB (target <= 40)")
    out["decode_tokens_per_s_batch64"] = gpu_decode(tok, a.tiny)
    print(f"decode: {out['decode_tokens_per_s_batch64']:.0f} new tokens/s at batch 64 (eval.generate)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="the GPU mode (loop vs HF Trainer, decode)")
    ap.add_argument("--tiny", action="store_true", help="GPU mode with a tiny model (checks the script)")
    ap.add_argument("--steps", type=int, default=4, help="timed optimizer steps per run")
    ap.add_argument("--batch-size", type=int, default=2, help="CPU mode: rows per process")
    ap.add_argument("--length", type=int, default=128, help="CPU mode: tokens per row for the 1 vs 2 process runs")
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 64], help="GPU mode: batch sizes")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="GPU mode: the GPU's dense bf16 peak, for MFU")
    ap.add_argument("--out", default="/tmp/unforgotten-scale")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--procs", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker_main(a)
    result = gpu_mode(a) if a.gpu else cpu_mode(a)
    print(json.dumps(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
