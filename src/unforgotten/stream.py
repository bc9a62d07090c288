"""Continual streams: a customer's sequence of fine-tunes of one aligned model.

``data.user`` lists tasks; each ordering (``data.orderings``) fine-tunes them one after another
with each compared method, every stage starting from the previous stage's result:

* With LoRA, a stream trains **one adapter** over the aligned model: stage k loads stage k-1's
  adapter and trains on (fresh optimizer and schedule). The aligned model stays the frozen base,
  so "the model before fine-tuning" (adapter off) is the aligned one at every stage. A method
  whose result is a merged model (MagMax, SafeLoRA) makes the next stage start a new adapter on
  that model.
* Each method says what it carries to the next stage (``Method.carries``, ``carry_state`` /
  ``load_carry``): EWC accumulates its Fisher, A-GEM and OGPSA grow their memory with past tasks,
  DER keeps its memory, Lisa and SafeInstr keep their safety data; the rest start afresh.
* Every stage is checkpointed by the loop (``train.save_every``) and, when done, leaves
  ``stage.json``, ``carry.pt`` and its evaluation; ``resume=True`` skips finished stages and
  continues an interrupted one from its last checkpoint.
* After each stage: ASR and over-refusal (``eval.benchmarks``), every task (``data.user_eval``)
  and general capability (``eval.general``). ``stream.json`` per ordering holds the matrix and
  the continual-learning summaries (``eval.continual``); ``streams.json`` / ``streams.md`` /
  ``streams.png`` at the top compare methods and orderings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from .config import RunConfig, save_config
from .eval.continual import across_orderings, cl_metrics, orderings, safety_forgetting

console = Console(stderr=True)


def ordering_name(order: list[int]) -> str:
    return "order-" + "-".join(str(i) for i in order)


def task_names(cfg: RunConfig) -> list[str]:
    from .eval.benchmarks import entry_name

    return [entry_name(e) for e in cfg.data.user_eval]


def stream_eval_config(cfg: RunConfig):
    """The evaluation every stage gets: the safety sets, then every task's set."""
    extra = [e for e in cfg.data.user_eval if e not in cfg.eval.benchmarks]
    return dataclasses.replace(cfg.eval, benchmarks=list(cfg.eval.benchmarks) + extra)


def _load_json(p: Path) -> Any:
    return json.loads(p.read_text())


def run_ordering(v: RunConfig, order: list[int], *, finetune: Callable[..., Any], evaluate: Callable[..., Any],
                 source: str, eval_cfg, out: Path, label: str, resume: bool, progress: bool) -> list[dict[str, Any]]:
    """Fine-tune ``v``'s methods through the tasks in ``order``; returns one record per stage
    (task, weights, the stage's evaluation summary). ``finetune`` and ``evaluate`` are
    ``api.finetune`` and ``api.evaluate`` (passed in: api calls this module, not the reverse)."""
    import torch

    from .methods import build_methods

    tasks = list(v.data.user)
    stages: list[dict[str, Any]] = []
    model_source, adapter, carry = source, None, {}
    for k, t in enumerate(order):
        sdir = out / f"stage-{k + 1}"
        done = sdir / "stage.json"
        if done.is_file() and (sdir / "eval" / "summary.json").is_file():
            info = _load_json(done)
            carry = torch.load(sdir / "carry.pt", weights_only=False)
            model_source, adapter = info["model_source"], info["adapter"]
            stages.append({**info, "summary": _load_json(sdir / "eval" / "summary.json")})
            console.print(f"[dim]{label} {ordering_name(order)} stage {k + 1}: done, skipped[/]")
            continue
        scfg = dataclasses.replace(
            v, output_dir=str(sdir), eval=eval_cfg,
            data=dataclasses.replace(v.data, user=tasks[t], user_eval=[], orderings=None),
        )
        methods = build_methods(v.train.methods, v.train.method_args)
        for m in methods:
            m.load_carry(carry.get(m.name))
        console.print(f"[bold]{label} {ordering_name(order)} stage {k + 1}/{len(order)}: task {t} ({tasks[t]})[/]")
        # a fresh adapter's random init draws from the global generator: seed it, so that a stream
        # resumed in another process (after other work) starts its stages from the same weights
        torch.manual_seed(v.train.seed + k)
        result = finetune(scfg, model_source=model_source, resume=resume, progress=progress,
                          methods=methods, init_adapter=adapter)
        carry_path = sdir / "carry.pt"
        if result.log or not carry_path.is_file():  # trained now: what the methods hold
            carry = {m.name: m.carry_state() for m in methods}
            torch.save(carry, carry_path)
        else:  # trained by an earlier call whose evaluation did not finish: what it handed on then
            carry = torch.load(carry_path, weights_only=False)
        if result.weights_dir.name == "adapter":
            adapter = str(result.weights_dir)
        else:  # a merged model (MagMax, SafeLoRA): the next stage trains a new adapter on it
            model_source, adapter = str(result.weights_dir), None
        summary = evaluate(scfg, model_source=model_source, adapter=adapter, output_dir=sdir / "eval",
                           label=f"{label} after stage {k + 1}", progress=progress)
        info = {"stage": k + 1, "task_index": t, "task": tasks[t], "model_source": model_source, "adapter": adapter,
                "methods": v.train.methods, "carries": {m.name: type(m).carries for m in methods}}
        done.write_text(json.dumps(info, indent=2))
        stages.append({**info, "summary": summary})
    return stages


def _task_value(summary: dict[str, Any], bench: str) -> float | None:
    b = (summary.get("benchmarks") or {}).get(bench) or {}
    v = (b.get("result") or {}).get("value")
    return float(v) if isinstance(v, (int, float)) else None


def _safety(summary: dict[str, Any]) -> dict[str, float | None]:
    from .report import headline

    h = headline(summary)
    return {"asr": h["asr"], "over_refusal": h["over_refusal"]}


def _general(summary: dict[str, Any]) -> dict[str, float | None]:
    return {t: g.get("value") for t, g in ((summary.get("general") or {}).get("tasks") or {}).items()}


def stream_summary(stages: list[dict[str, Any]], start: dict[str, Any], names: list[str], order: list[int]) -> dict[str, Any]:
    """The matrix (after stage k x each task), safety and general capability per stage, and the
    continual-learning numbers of one ordering."""
    R = [[_task_value(s["summary"], n) for n in names] for s in stages]
    start_row = [_task_value(start, n) for n in names]
    safety = [_safety(s["summary"]) for s in stages]
    s0 = _safety(start)
    out: dict[str, Any] = {
        "order": order, "tasks": names, "matrix": R, "start": start_row,
        "safety": safety, "safety_start": s0,
        "asr_forgetting": safety_forgetting([s["asr"] for s in safety], s0["asr"]),
        "over_refusal_change": safety_forgetting([s["over_refusal"] for s in safety], s0["over_refusal"]),
        "general": [_general(s["summary"]) for s in stages], "general_start": _general(start),
        "final_asr": safety[-1]["asr"] if safety else None,
    }
    complete = len(stages) == len(order) and all(v is not None for row in R for v in row)
    if complete:
        have_start = all(v is not None for v in start_row)
        out.update(cl_metrics(R, order, start_row if have_start else None))
        out["forgetting"] = {names[t]: f for t, f in out["forgetting"].items()}
    return out


def run_stream(cfg: RunConfig, *, finetune: Callable[..., Any], evaluate: Callable[..., Any], source: str,
               include_base: bool = False, resume: bool = False, progress: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """Every compared method through every ordering of ``cfg.data.user``, starting from the
    aligned model ``source``; returns the table rows (base, aligned, and each method's model after
    the last stage of each ordering). ``finetune``/``evaluate``: ``api``'s, as in ``run_ordering``."""
    from .config import variants
    from .methods import build_methods

    root = Path(cfg.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, root / "config.yaml")
    todo = variants(cfg)
    for v in todo:  # a bad method name or argument fails before hours of work
        build_methods(v.train.methods, v.train.method_args)
    orders = orderings(cfg.data.orderings, len(cfg.data.user))
    names = task_names(cfg)
    eval_cfg = stream_eval_config(cfg)
    ecfg = dataclasses.replace(cfg, eval=eval_cfg)
    rows: list[tuple[str, dict[str, Any]]] = []

    def evaluated(label: str, out: Path, **kw: Any) -> dict[str, Any]:
        if resume and (out / "summary.json").is_file():
            return _load_json(out / "summary.json")
        return evaluate(ecfg, label=label, output_dir=out, progress=progress, **kw)

    if include_base:
        rows.append(("base (unaligned)", evaluated("base (unaligned)", root / "eval_base")))
    start = evaluated("aligned", root / "eval_aligned", model_source=source)
    rows.append(("aligned", start))
    results: dict[str, Any] = {"tasks": names, "sources": list(cfg.data.user), "orderings": [ordering_name(o) for o in orders],
                               "start": _safety(start) | {"general": _general(start)}, "methods": {}}
    for v in todo:
        name = v.name if cfg.compare else "+".join(v.train.methods)
        per_order: dict[str, Any] = {}
        for order in orders:
            out = Path(v.output_dir) / ordering_name(order)
            stages = run_ordering(v, order, finetune=finetune, evaluate=evaluate, source=source, eval_cfg=eval_cfg,
                                  out=out, label=name, resume=resume, progress=progress)
            summary = stream_summary(stages, start, names, order)
            (out / "stream.json").write_text(json.dumps(summary, indent=2))
            per_order[ordering_name(order)] = summary
            rows.append((f"aligned + {name}, {ordering_name(order)}, after stage {len(order)}", stages[-1]["summary"]))
        results["methods"][name] = {"orderings": per_order, "across": across_orderings(per_order)}
        (root / "streams.json").write_text(json.dumps(results, indent=2))
    from .stream_report import write_stream_report

    write_stream_report(results, root)
    from .report import write_report

    write_report(rows, root, title=cfg.name)
    return rows
