"""DER buffer memory: the paper's exact form (all logits) vs our top-k form, on the real model.

Builds both buffers with the method's own ``setup`` on a TrainContext around the embedded
SmolLM2-135M-Instruct (or ``--model``, e.g. an aligned model directory; LoRA-wrapped, as a run
would be) and ``--n`` starter safety refusals,
and prints, for each form: the buffer's bytes per example and per response token, the time to
build it, and the ratio exact / top-k (expected V / (2k): fp32 values + int32 ids against V fp32
logits). Also printed: how much of the aligned model's next-token probability the top k ids
carry at the stored positions (what the top-k form keeps; also for other k), and a check that the top-k buffer
is exactly the top k of the exact one. The last line is one JSON object with the numbers.

    UNFORGOTTEN_CACHE=/tmp/ufcache python benchmarks/der_memory.py [--n 100] [--k K] [--model SOURCE]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import torch

from unforgotten.config import TrainConfig
from unforgotten.data import load_records
from unforgotten.methods.der import DER
from unforgotten.models import apply_lora, load_model
from unforgotten.train.context import TrainContext


def topk_mass(exact: torch.Tensor, k: int, chunk: int = 512) -> torch.Tensor:
    """Per row: softmax probability held by the k largest logits."""
    out = []
    for i in range(0, exact.shape[0], chunk):
        p = torch.softmax(exact[i : i + chunk], dim=-1)
        out.append(p.topk(k, dim=-1).values.sum(-1))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="safety examples in the buffer")
    ap.add_argument("--k", type=int, default=DER.k, help="top-k size (default: the method's)")
    ap.add_argument("--buffer-batch-size", type=int, default=8)
    ap.add_argument("--model", default="embedded", help="model source (e.g. an aligned model directory)")
    args = ap.parse_args()

    torch.manual_seed(0)
    model, tok = load_model(args.model)
    model = apply_lora(model)
    safety = load_records("starter:safety_refusals", limit=args.n, seed=0)
    ctx = TrainContext(model, tok, TrainConfig(seed=0), Path(tempfile.mkdtemp()), [], safety)
    vocab = model.get_output_embeddings().weight.shape[0]

    # warm-up (allocator, kernels) so the first timed build is not charged for it
    from unforgotten.data.tokenize import collate
    from unforgotten.train.context import forward_with_labels

    with torch.no_grad():
        forward_with_labels(model, collate(ctx.encode(safety[:2]), tok.pad_token_id))

    results = {}
    kept = {}
    for storage in ("topk", "exact"):
        der = DER(storage=storage, k=args.k, buffer_batch_size=args.buffer_batch_size)
        t = time.perf_counter()
        der.setup(ctx)
        seconds = time.perf_counter() - t
        n_ex = len(der.rows)
        n_tok = der.values.shape[0]
        results[storage] = {
            "bytes": der.buffer_bytes(),
            "bytes_per_example": der.buffer_bytes() / n_ex,
            "bytes_per_token": der.buffer_bytes() / n_tok,
            "build_s": round(seconds, 2),
            "examples": n_ex,
            "response_tokens": n_tok,
        }
        kept[storage] = der
        print(
            f"{storage:>5}: {der.buffer_bytes() / 2**20:9.2f} MiB  "
            f"{der.buffer_bytes() / n_ex / 2**10:9.1f} KiB/example  {der.buffer_bytes() / n_tok:9.0f} B/token  "
            f"built in {seconds:6.1f} s  ({n_ex} examples, {n_tok} response tokens)"
        )

    exact, top = kept["exact"], kept["topk"]
    ref_vals, ref_idx = torch.topk(exact.values, args.k, dim=-1)
    same = torch.allclose(top.values, ref_vals, atol=1e-5) and bool((top.indices.long() == ref_idx).float().mean() > 0.999)
    mass = topk_mass(exact.values, args.k)
    ratio = results["exact"]["bytes"] / results["topk"]["bytes"]
    print(f"ratio exact/topk: {ratio:.1f} (V / 2k = {vocab / (2 * args.k):.1f}, V = {vocab}, k = {args.k})")
    print(
        f"top-{args.k} probability mass at stored positions: mean {mass.mean():.4f}, "
        f"5th percentile {mass.quantile(0.05):.4f}, min {mass.min():.4f}"
    )
    print(f"top-k buffer == top k of the exact buffer: {same}")
    mass_by_k = {kk: round(float(topk_mass(exact.values, kk).mean()), 4) for kk in (1, 8, 32, 128, 512)}
    print("mean top-k probability mass by k: " + ", ".join(f"k={kk}: {m}" for kk, m in mass_by_k.items()))
    summary = {
        "benchmark": "der_memory",
        "model": args.model,
        "vocab": vocab,
        "k": args.k,
        "examples": results["exact"]["examples"],
        "response_tokens": results["exact"]["response_tokens"],
        "exact_bytes_per_example": round(results["exact"]["bytes_per_example"]),
        "topk_bytes_per_example": round(results["topk"]["bytes_per_example"]),
        "exact_bytes_total": results["exact"]["bytes"],
        "topk_bytes_total": results["topk"]["bytes"],
        "ratio_exact_over_topk": round(ratio, 2),
        "expected_ratio_v_over_2k": vocab / (2 * args.k),
        "exact_build_s": results["exact"]["build_s"],
        "topk_build_s": results["topk"]["build_s"],
        "topk_mass_mean": round(float(mass.mean()), 5),
        "topk_mass_p05": round(float(mass.quantile(0.05)), 5),
        "topk_mass_min": round(float(mass.min()), 5),
        "topk_matches_exact": same,
        "mean_mass_by_k": mass_by_k,
        "threads": torch.get_num_threads(),
    }
    del kept, exact, top
    gc.collect()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
