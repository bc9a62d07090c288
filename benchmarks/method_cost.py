"""What each method costs per optimizer step, as a ratio to plain SFT measured in the same run.

Every method fine-tunes the embedded SmolLM2-135M-Instruct, aligned by the demo's align step
(cached; aligned on first use), on the same poisoned starter data with the same LoRA, batch and
safety buffer. Each method runs in its own subprocess so its peak memory (max RSS) is its own.
SFT runs first and last: the two bracket the machine's drift during the run.

Reported per method: setup seconds (Fisher, buffers, ...), median optimizer-step seconds over the
timed steps (the first step is dropped as warm-up), the ratio to SFT, the peak RSS in MiB, and
for DER the replay buffer's bytes per safety example.

    python benchmarks/method_cost.py [--steps 4] [--methods sft,der,der:storage=exact,...]
        [--set model.source=DIR ...]

On a GPU machine the methods train there (accelerate places the model); each row then also
reports the GPU's peak allocated memory, and ``device`` names the GPU.

Writes benchmarks/results/method_cost.json (``--save``); its last printed line is the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one(name: str, steps: int, out: Path, overrides: list[str]) -> dict:
    """Run one method (in this process) and return its measurements."""
    import resource

    import torch

    from unforgotten import api
    from unforgotten.config import load_config
    from unforgotten.methods import build_methods
    from unforgotten.models import apply_lora, load_model
    from unforgotten.train.loop import train

    torch.manual_seed(0)
    cfg = load_config(api.demo_config_path(), [
        f"train.max_steps={steps + 1}", "train.batch_size=4", "train.save_every=0", "data.n=64",
        "data.safety_size=32", "train.log_every=1", *overrides,
    ])
    source = str(api.align(cfg, progress=False))
    records, _ = api.user_data(cfg)
    safety = api.safety_buffer(cfg)
    model, tok = load_model(source)
    model = apply_lora(model, cfg.model.lora)
    # "der:storage=exact" -> method der with argument storage="exact"
    names, args = [], {}
    for part in name.split("+"):
        method, _, kv = part.partition(":")
        names.append(method)
        if kv:
            args[method] = dict(item.split("=", 1) for item in kv.split(";"))
    methods = build_methods(names, args)
    t0 = time.perf_counter()
    res = train(model, tok, records, cfg.train, out / name.replace(":", "_"), methods=methods, safety_data=safety,
                base_source=cfg.model.source, progress=False)
    total = time.perf_counter() - t0
    elapsed = [r["elapsed_s"] for r in res.log]
    step_times = [b - a for a, b in zip(elapsed, elapsed[1:])]  # drops step 1 (warm-up)
    # setup + first step: everything before the timed steps
    setup_s = total - sum(step_times) - (elapsed[0] if elapsed else 0)
    row = {
        "method": name, "step_s": statistics.median(step_times), "setup_s": round(max(setup_s, 0.0), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_loss": res.final_loss,
    }
    if torch.cuda.is_available():  # RSS is the host's; what limits a GPU run is the device's memory
        row["device"] = torch.cuda.get_device_name()
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    for m in methods:
        if hasattr(m, "buffer_bytes"):
            row["der_buffer_bytes_per_example"] = round(m.buffer_bytes() / max(len(safety or []), 1))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="timed optimizer steps per method")
    ap.add_argument("--methods", default=None, help="comma-separated (default: every registered method)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every method's run, e.g. model.source=DIR (repeatable)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="/tmp/unforgotten-method-cost")
    ap.add_argument("--save", default=str(Path(__file__).resolve().parent / "results" / "method_cost.json"),
                    help="where the result JSON goes (also printed as the last line)")
    a = ap.parse_args()
    out = Path(a.out)
    if a.one:
        print("RESULT " + json.dumps(one(a.one, a.steps, out, a.set)), flush=True)
        return
    from unforgotten.methods import METHODS

    names = a.methods.split(",") if a.methods else [n for n in METHODS.names() if n != "sft"]
    order = ["sft"] + [n for n in names if n != "sft"] + ["sft"]
    rows = []
    sets = [arg for kv in a.set for arg in ("--set", kv)]  # passed on to every method's subprocess
    for name in order:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(a.steps), "--out", str(out), *sets],
                              capture_output=True, text=True, env={**os.environ})
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{name}: FAILED\n{proc.stderr[-2000:]}", flush=True)
            rows.append({"method": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"})
            continue
        row = json.loads(line[len("RESULT "):])
        rows.append(row)
        gpu = f"  GPU peak {row['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in row else ""
        print(f"{name:12s} step {row['step_s']:.3f}s  setup {row['setup_s']:.1f}s  peak {row['peak_rss_mib']:.0f} MiB{gpu}", flush=True)
    sft = [r["step_s"] for r in rows if r["method"] == "sft" and "step_s" in r]
    base = statistics.mean(sft)
    print(f"\nsft step time: {', '.join(f'{s:.3f}' for s in sft)} s (first, last run); ratios use their mean {base:.3f} s\n")
    gpu = any("peak_gpu_mib" in r for r in rows)
    print("| method | step time / sft | setup (s) | peak RSS (MiB) |" + (" peak GPU (MiB) |" if gpu else "") + " extra |")
    print("|---|---|---|---|" + ("---|" if gpu else "") + "---|")
    for r in rows[1:-1] if len(rows) > 2 else rows:
        if "error" in r:
            print(f"| {r['method']} | failed | | |" + (" |" if gpu else "") + f" {r['error'][:60]} |")
            continue
        extra = f"DER buffer {r['der_buffer_bytes_per_example'] / 1024:.0f} KiB/example" if "der_buffer_bytes_per_example" in r else ""
        gpu_cell = f" {r.get('peak_gpu_mib', 0):.0f} |" if gpu else ""
        print(f"| {r['method']} | {r['step_s'] / base:.2f} | {r['setup_s']:.1f} | {r['peak_rss_mib']:.0f} |{gpu_cell} {extra} |")
    result = {"sft_step_s": sft, "rows": rows}
    Path(a.save).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
