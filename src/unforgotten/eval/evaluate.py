"""Evaluate one model on a list of benchmarks: generate (cached), judge, score, write it all down.

Per benchmark it writes ``<kind>_<name>.jsonl`` with one line per prompt (prompt, response, every
judge's verdict with its raw output, or the extracted answer and whether it was right), and one
``summary.json`` for the model (schema in ``unforgotten.report``). Generation is the slow part,
so it goes through the generation cache: re-judging with another judge, or re-reporting, reuses
the responses instead of decoding again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import EvalConfig, to_dict
from ..data.schema import prompt_messages, prompt_text
from .benchmarks import BenchmarkSet, load_benchmark
from .judges import Judge, get_judge
from .metrics import asr, refusal_rate
from .tasks import TASKS

console = Console(stderr=True)

# (chat prompts, max_new_tokens) -> responses; built by ``make_generator``.
Generator = Callable[[Sequence[list[dict[str, str]]], int], list[str]]


def decoding_settings(cfg: EvalConfig) -> dict[str, Any]:
    """The settings that change what is generated (and so belong in the cache key)."""
    return {"do_sample": cfg.do_sample, "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": cfg.seed}


def make_generator(model: Any, tokenizer: Any, cfg: EvalConfig, *, fingerprint: str | None,
                   stats: dict[str, int], progress: bool = True, generate_fn: Callable[..., list[str]] | None = None,
                   backend: str = "hf", chunk: int | None = None) -> Generator:
    """A generator through the generation cache (when on and identifiable); counts hits/misses
    into ``stats``. ``generate_fn``/``backend`` swap the engine (vLLM: ``model=None``, its own
    batching, bigger ``chunk``s); the default is HF ``generate`` over ``model``.

    ``fingerprint`` names the weights (``eval.fingerprint.model_fingerprint``); without one the
    responses cannot be keyed safely, so nothing is cached.
    """
    from .cache import GenerationCache, cached_generate

    cache = GenerationCache() if cfg.cache and fingerprint else None

    def run(prompts: Sequence[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        settings = {**decoding_settings(cfg), "max_new_tokens": max_new_tokens, "batch_size": cfg.batch_size}
        responses, s = cached_generate(
            model, tokenizer, list(prompts), fingerprint=fingerprint or "", settings=settings, cache=cache,
            generate_fn=generate_fn, backend=backend, progress=progress, chunk=chunk,
        )
        for k in ("hits", "misses"):
            stats[k] = stats.get(k, 0) + s[k]
        return responses

    return run


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _judged(bset: BenchmarkSet, responses: list[str], judges: dict[str, Judge]) -> tuple[dict[str, Any], list[dict]]:
    """Safety sets: every judge's verdicts -> ASR (harmful) or refusal rate (over-refusal)."""
    prompts = [prompt_text(r) for r in bset.records]
    rows = [{"id": r.get("id"), "prompt": p, "response": s, "verdicts": {}} for r, p, s in zip(bset.records, prompts, responses)]
    by_judge: dict[str, Any] = {}
    harmful_set = bset.benchmark.kind == "harmful"
    for name, judge in judges.items():
        verdicts = judge.judge(prompts, responses)
        for row, v in zip(rows, verdicts):
            row["verdicts"][name] = {"refused": v.refused, "harmful": v.harmful, "raw": v.raw}
        if harmful_set and "harmful" in judge.measures:
            by_judge[name] = asr(verdicts)
        elif not harmful_set and "refused" in judge.measures:
            by_judge[name] = refusal_rate(verdicts)
        by_judge.update(judge.rates(verdicts, harmful_set))
    return {"by_judge": by_judge}, rows


def _scored(bset: BenchmarkSet, responses: list[str], cfg: EvalConfig) -> tuple[dict[str, Any], list[dict]]:
    """Utility sets: the benchmark's task scores them (extract and compare, or run the code)."""
    return TASKS.get(bset.benchmark.task).score(bset.records, responses, cfg)


def evaluate_benchmarks(generate: Generator, cfg: EvalConfig, output_dir: str | Path, *,
                        judges: dict[str, Judge] | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every benchmark in ``cfg.benchmarks`` with ``generate``; write samples + summary.json.

    ``meta`` (label, model, cache counters the generator fills in as it runs) heads the summary.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # all loaded up front: a bad entry fails before any generation
    sets = [load_benchmark(e, root=cfg.data_dir, limit=cfg.limits.get(e.partition("=")[0].strip(), cfg.limit))
            for e in cfg.benchmarks]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"two benchmarks share a name ({names}); give the files different names")
    judges = judges if judges is not None else {n: get_judge(n, **cfg.judge_args.get(n, {})) for n in cfg.judges}
    summary: dict[str, Any] = {
        **(meta or {}),
        "judges": list(judges), "decoding": {**decoding_settings(cfg), "max_new_tokens": cfg.max_new_tokens},
        "benchmarks": {},
    }
    seconds = {"generation": 0.0, "judging": 0.0}
    t_start = time.perf_counter()
    for bset in sets:
        bench = bset.benchmark
        max_new = cfg.max_new_tokens if bench.kind != "utility" else (
            cfg.task_max_new_tokens or bench.max_new_tokens or cfg.max_new_tokens)
        console.print(f"[dim]eval {bench.kind} {bset.name}: {len(bset.records)} prompts, {max_new} new tokens[/]")
        t0 = time.perf_counter()
        responses = generate([prompt_messages(r) for r in bset.records], max_new)
        t1 = time.perf_counter()
        block, rows = _scored(bset, responses, cfg) if bench.kind == "utility" else _judged(bset, responses, judges)
        seconds["generation"] += t1 - t0
        seconds["judging"] += time.perf_counter() - t1
        samples = f"{bench.kind}_{bset.name}.jsonl"
        _write_jsonl(out / samples, rows)
        summary["benchmarks"][bset.name] = {
            "kind": bench.kind, "metric": bench.metric, "source": bset.source, "n": len(bset.records),
            "max_new_tokens": max_new, **block, "samples": samples,
        }
    seconds["total"] = time.perf_counter() - t_start
    summary["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    summary["eval_config"] = to_dict(cfg)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def evaluate_model(model: Any, tokenizer: Any, cfg: EvalConfig, output_dir: str | Path, *,
                   fingerprint: str | None = None, meta: dict[str, Any] | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """:func:`evaluate_benchmarks` with a (cached) HF generator over ``model``."""
    stats: dict[str, int] = {"hits": 0, "misses": 0}
    gen = make_generator(model, tokenizer, cfg, fingerprint=fingerprint, stats=stats, progress=progress)
    return evaluate_benchmarks(gen, cfg, output_dir, meta={**(meta or {}), "cache": stats})
