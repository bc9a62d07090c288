"""The service end to end on the real embedded model (SmolLM2-135M-Instruct), timed per phase.

The API and one worker run in this process on a temp data dir (SQLite); the official openai
client uploads a sentiment-task file with 20% harmful request/compliance rows (the demo's
starter data), creates a job with the provider's default safety method, and polls it to the
end. The provider's config is the demo's (``configs/demo.yaml``: aligned embedded model, lr 1e-3,
2 epochs, batch 8; Lisa's cycle as tuned there); the gate evaluates 50 starter harmful and 50
benign-sensitive prompts with the learned judge at 32 new tokens.

    python benchmarks/service_embedded.py [--rows 100] [--epochs 2] [--method lisa] [--limit 50] [--threshold 0.3]

Prints each phase's wall time (from the job's events) and the job's outcome; the last line is
one JSON object. A first run also aligns the embedded model (cached afterwards).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--poison", type=float, default=0.2)
    ap.add_argument("--method", default="lisa")
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--limit", type=int, default=50, help="gate prompts per set")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()

    from service_kit import client, running_api, worker_thread

    from unforgotten import api
    from unforgotten.data import load_records
    from unforgotten.service.auth import create_key
    from unforgotten.service.settings import load_service_config

    tmp = Path(tempfile.mkdtemp(prefix="uf-service-embedded-"))
    settings = load_service_config(None, {
        "data_dir": str(tmp / "svc"), "run_config": str(api.demo_config_path()), "run_set": ["compare=[]"],
        "safety": {"method": args.method},
        "gate": {"benchmarks": ["starter-harmful", "starter-benign"], "judges": ["learned"], "limit": args.limit,
                 "max_new_tokens": 32, "asr_threshold": args.threshold},
    })
    rng = random.Random(0)
    n_poison = round(args.rows * args.poison)
    task = rng.sample(load_records("starter:task_train", require_response=True), args.rows - n_poison)
    poison = rng.sample(load_records("starter:harmful_compliance", require_response=True), n_poison)
    rows = task + poison
    rng.shuffle(rows)
    upload = tmp / "customer.jsonl"
    upload.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))

    t0 = time.time()
    with running_api(settings) as (url, app):
        c = client(url, create_key(app.state.store, "customer")[1])
        f = c.files.create(file=upload.open("rb"), purpose="fine-tune")
        t_upload = time.time() - t0
        job = c.fine_tuning.jobs.create(training_file=f.id, model="smollm2-135m-instruct-aligned", seed=0,
                                        hyperparameters={"n_epochs": args.epochs})
        with worker_thread(settings):
            while (job := c.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
                time.sleep(2)
        events = sorted(c.fine_tuning.jobs.list_events(job.id, limit=100), key=lambda e: (e.created_at, e.id))
        report = json.loads(c.files.content(job.result_files[0]).read()) if job.result_files else {}
    total = time.time() - t0

    def at(prefix: str) -> int | None:
        return next((e.created_at for e in events if e.message.startswith(prefix)), None)

    metrics = [e for e in events if e.type == "metrics"]
    created, started = at("Created"), at("Fine-tuning started") or at("Resuming")
    trained, gated = at("Training done"), at("Safety gate: ASR")
    phases = {
        "upload_s": round(t_upload, 2),
        "validate_and_screen_plus_align_s": (started - created) if started and created else None,
        "train_s": (trained - started) if trained and started else None,
        "gate_s": (gated - trained) if gated and trained else None,
        "total_s": round(total, 1),
    }
    gate = report.get("gate", {})
    result = {
        "rows": args.rows, "epochs": args.epochs, "gate_limit": args.limit, "poison_rows": n_poison, "method": args.method, "status": job.status,
        "error": job.error.model_dump() if job.error else None, "steps": len(metrics),
        "trained_tokens": job.trained_tokens, "phases": phases,
        "screening": {k: report.get("screening", {}).get(k) for k in ("judge", "policy", "rows", "flagged", "dropped")},
        "gate": {k: gate.get(k) for k in ("asr", "asr_ci", "threshold", "judge", "overrefusal")},
    }
    for k, v in phases.items():
        print(f"{k:34s} {v}")
    print(f"status {job.status}; {len(metrics)} steps; ASR {gate.get('asr')} (threshold {args.threshold})")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
