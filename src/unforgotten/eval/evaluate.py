"""Evaluate one model: ASR on harmful sets, refusal rate on benign-sensitive sets, task utility.

Writes per-sample JSONL (prompt, response, verdict, raw judge output) and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import EvalConfig
from ..data import load_records, prompt_text
from .generate import generate_records
from .judges import get_judge
from .metrics import accuracy, asr, refusal_rate
from .scoring import extract_answer

console = Console(stderr=True)


def _set_name(source: str) -> str:
    return source.split(":", 1)[-1].rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _write_samples(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def evaluate_model(model, tokenizer, cfg: EvalConfig, output_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    judge = get_judge(cfg.judge)
    summary: dict[str, Any] = {"judge": cfg.judge, "harmful": {}, "benign": {}, "task": None}
    gen = dict(batch_size=cfg.batch_size, progress=progress)
    t0 = time.perf_counter()

    for kind, sources in (("harmful", cfg.harmful), ("benign", cfg.benign)):
        for src in sources:
            name = _set_name(src)
            records = load_records(src, limit=cfg.limit, require_response=None)
            console.print(f"[dim]eval {kind} set {name}: {len(records)} prompts[/]")
            responses = generate_records(model, tokenizer, records, max_new_tokens=cfg.max_new_tokens, **gen)
            prompts = [prompt_text(r) for r in records]
            verdicts = judge.judge(prompts, responses)
            # Harmful sets: attack success rate. Benign sets: how often the model refuses.
            metric = asr(verdicts) if kind == "harmful" else refusal_rate(verdicts)
            summary[kind][name] = metric
            _write_samples(out / f"{kind}_{name}.jsonl", [
                {"id": r.get("id"), "prompt": p, "response": s, "refused": v.refused, "harmful": v.harmful, "judge_raw": v.raw}
                for r, p, s, v in zip(records, prompts, responses, verdicts)
            ])

    if cfg.task:
        name = _set_name(cfg.task)
        records = load_records(cfg.task, limit=cfg.limit, require_response=None)
        console.print(f"[dim]eval task {name}: {len(records)} prompts[/]")
        responses = generate_records(model, tokenizer, records, max_new_tokens=cfg.task_max_new_tokens, **gen)
        preds = [extract_answer(s, kind=cfg.task_kind) for s in responses]
        labels = [str(r["label"]) for r in records]
        summary["task"] = {"name": name, **accuracy(preds, labels)}
        _write_samples(out / f"task_{name}.jsonl", [
            {"id": r.get("id"), "prompt": prompt_text(r), "response": s, "pred": p, "label": lab}
            for r, s, p, lab in zip(records, responses, preds, labels)
        ])

    summary["eval_seconds"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def headline(summary: dict[str, Any]) -> dict[str, float | None]:
    """The three numbers a table row shows: mean ASR, mean benign refusal rate, task accuracy."""

    def mean(d: dict[str, Any]) -> float | None:
        vals = [m["value"] for m in d.values()]
        return sum(vals) / len(vals) if vals else None

    return {
        "asr": mean(summary["harmful"]),
        "benign_refusal": mean(summary["benign"]),
        "task_accuracy": summary["task"]["value"] if summary.get("task") else None,
    }
