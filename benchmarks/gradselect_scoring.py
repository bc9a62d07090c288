"""How fast gradselect's per-sample gradient norms are: batched hooks vs the naive loop (vs vmap).

Random-weight Llama models built in code (no download): ``tiny`` (the tests' hidden-16 model and
word-level tokenizer) and ``smol`` (SmolLM2-135M's shapes: hidden 576, 9 heads / 3 kv heads,
intermediate 1536, vocab 49152, but only ``--layers`` layers, so it runs in seconds). Each is
LoRA-wrapped on all linear layers (r=8, the study's default), the adapter's B is perturbed (so the
A gradients are not all zero), and the same samples are scored by

* ``loop``:  one forward/backward per sample with ``torch.autograd.grad`` (the naive reference);
* ``hooks``: gradselect's scorer: one forward/backward per ``--batch`` samples (length-sorted);
* ``vmap``:  ``torch.func.vmap(grad(functional_call))``, without the attention mask (transformers'
  mask creation cannot be vmapped; right padding + causal attention makes it exact anyway).

Reported: seconds, samples/s, speed-up over the loop, and the largest |difference| to the loop.

    OMP_NUM_THREADS=1 python benchmarks/gradselect_scoring.py [--model tiny|smol] [--n 64] [--batch 8]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def build(kind: str, layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    from tiny import tiny_model

    from unforgotten.models import DEFAULT_LORA_TARGETS, LoraSettings, apply_lora

    torch.manual_seed(0)
    if kind == "tiny":
        model = tiny_model(seed=1)
    else:
        cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                          num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                          tie_word_embeddings=True, pad_token_id=0)
        model = LlamaForCausalLM(cfg)
    model = apply_lora(model, LoraSettings(r=8, alpha=4, dropout=0.0, target_modules=list(DEFAULT_LORA_TARGETS)))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    return model.eval()


def batches(kind: str, n: int, bsz: int, vocab: int):
    """Collated length-sorted batches of random token sequences with a response span."""
    from unforgotten.data.tokenize import IGNORE, Encoded, collate

    rng = random.Random(0)
    lo, hi = (8, 40) if kind == "tiny" else (48, 256)
    samples = []
    for i in range(n):
        t = rng.randint(lo, hi)
        ids = [rng.randrange(4, vocab) for _ in range(t)]
        p = rng.randint(t // 3, 2 * t // 3)
        samples.append(Encoded(ids, [IGNORE] * p + ids[p:], i))
    samples.sort(key=lambda e: len(e.input_ids))
    return [collate(samples[i : i + bsz], 0) for i in range(0, n, bsz)]


def vmap_norms(model, batch, params):
    from torch.func import functional_call, grad, vmap

    from unforgotten.data.tokenize import IGNORE

    def loss_fn(ps, ids, labels):
        logits = functional_call(model, ps, (), {"input_ids": ids[None], "use_cache": False}).logits[0, :-1]
        lab = labels[1:]
        valid = lab != IGNORE
        ce = F.cross_entropy(logits, lab.clamp(min=0), reduction="none")
        return (ce * valid).sum() / valid.sum()

    detached = {k: v.detach() for k, v in params.items()}
    g = vmap(grad(loss_fn), in_dims=(None, 0, 0))(detached, batch["input_ids"], batch["labels"])
    return torch.sqrt(sum(v.float().pow(2).flatten(1).sum(1) for v in g.values()))


def main() -> int:
    import warnings

    from unforgotten.methods.gradselect import grad_norms_hooks, grad_norms_loop

    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "smol"], default="tiny")
    ap.add_argument("--layers", type=int, default=2, help="smol: number of decoder layers (SmolLM2 has 30)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--skip", default="", help="comma-separated scorers to skip (loop,hooks,vmap)")
    a = ap.parse_args()
    model = build(a.model, a.layers)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    bs = batches(a.model, a.n, a.batch, model.config.vocab_size)
    scorers = {
        "loop": lambda b: grad_norms_loop(model, b, params)[0],
        "hooks": lambda b: grad_norms_hooks(model, b, params)[0],
        "vmap": lambda b: vmap_norms(model, b, params),
    }
    skip = set(filter(None, a.skip.split(",")))
    results = {}
    for name, fn in scorers.items():
        if name in skip:
            continue
        fn(bs[0])  # warm-up
        t0 = time.perf_counter()
        out = torch.cat([fn(b).detach() for b in bs])
        results[name] = (time.perf_counter() - t0, out)
    ref = results.get("loop")
    tokens = sum(int(b["attention_mask"].sum()) for b in bs)
    print(f"model={a.model} layers={model.config.num_hidden_layers} n={a.n} batch={a.batch} tokens={tokens} "
          f"threads={torch.get_num_threads()} trainable={sum(p.numel() for p in params.values())}")
    for name, (sec, out) in results.items():
        diff = f"{float((out - ref[1]).abs().max()):.2e}" if ref else "-"
        speed = f"{ref[0] / sec:.2f}x" if ref else "-"
        print(f"  {name:6s} {sec:8.3f} s  {a.n / sec:8.2f} samples/s  speed-up vs loop {speed:>7s}  max|diff| {diff}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
