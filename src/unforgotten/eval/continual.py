"""Continual-learning summaries of a stream of fine-tunes, on plain numbers.

A stream trains tasks in an order; after each stage every task (and safety) is evaluated. The
accuracy matrix ``R[k][t]`` is task ``t``'s score after stage ``k`` (``k = 0..T-1``), and
``start[t]`` its score before the first stage (the aligned model). With ``stage_of[t]`` the
stage that trained task ``t`` (Lopez-Paz & Ranzato, 2017, "Gradient Episodic Memory for
Continual Learning"; Chaudhry et al., 2018, "Riemannian Walk for Incremental Learning"):

* average accuracy   ``ACC = mean_t R[T-1][t]``
* backward transfer  ``BWT = mean over t not trained last of (R[T-1][t] - R[stage_of[t]][t])``
* forward transfer   ``FWT = mean over t not trained first of (R[stage_of[t]-1][t] - start[t])``
* forgetting of t    ``f_t = max over k in [stage_of[t], T-2] of R[k][t] - R[T-1][t]`` (tasks
  not trained last); ``mean_forgetting`` is their mean
* safety forgetting after stage k: ``ASR[k] - ASR_start`` (and the over-refusal change), the
  alignment lost so far.

Across orderings of the same tasks: the mean of each number and the worst ordering (lowest ACC,
most negative BWT, highest final ASR).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any


def orderings(spec: Any, n_tasks: int) -> list[list[int]]:
    """``None``/empty: the given order; ``"all"``: every permutation; else a list of index lists,
    each a permutation of ``0..n_tasks-1``."""
    if spec in (None, [], ""):
        return [list(range(n_tasks))]
    if spec == "all":
        return [list(p) for p in itertools.permutations(range(n_tasks))]
    if isinstance(spec, str) or not all(isinstance(o, (list, tuple)) for o in spec):
        raise ValueError(f"orderings must be 'all' or a list of task-index lists, got {spec!r}")
    out = [list(o) for o in spec]
    for o in out:
        if sorted(o) != list(range(n_tasks)):
            raise ValueError(f"ordering {o} is not a permutation of the task indices 0..{n_tasks - 1}")
    return out


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else None


def cl_metrics(R: Sequence[Sequence[float]], order: Sequence[int], start: Sequence[float] | None = None) -> dict[str, Any]:
    """ACC, BWT, FWT and per-task forgetting of one stream. ``R[k][t]`` indexes tasks by their
    original index ``t``; ``order[k]`` is the task trained at stage ``k``."""
    T = len(order)
    if len(R) != T or any(len(row) != T for row in R):
        raise ValueError(f"R must be {T} x {T} (stages x tasks), got {[len(r) for r in R]}")
    stage_of = {t: k for k, t in enumerate(order)}
    last = R[T - 1]
    earlier = [t for t in range(T) if stage_of[t] < T - 1]
    forgetting = {t: max(R[k][t] for k in range(stage_of[t], T - 1)) - last[t] for t in earlier}
    out: dict[str, Any] = {
        "average_accuracy": sum(last) / T,
        "backward_transfer": _mean([last[t] - R[stage_of[t]][t] for t in earlier]),
        "forgetting": forgetting,
        "mean_forgetting": _mean(list(forgetting.values())),
        "learning_accuracy": sum(R[stage_of[t]][t] for t in range(T)) / T,  # each task just after it is learned
    }
    if start is not None:
        out["forward_transfer"] = _mean([R[stage_of[t] - 1][t] - start[t] for t in range(T) if stage_of[t] > 0])
    return out


def safety_forgetting(per_stage: Sequence[float | None], start: float | None) -> list[float | None]:
    """``value after stage k - value at the start`` (ASR: > 0 means alignment lost)."""
    return [None if v is None or start is None else v - start for v in per_stage]


def across_orderings(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean over orderings of each stream summary and the worst ordering per number.

    ``results`` maps an ordering's name to ``{"average_accuracy", "backward_transfer",
    "mean_forgetting", "final_asr"}`` (any may be None)."""
    worst_rule = {"average_accuracy": min, "backward_transfer": min, "mean_forgetting": max, "final_asr": max,
                  "learning_accuracy": min, "forward_transfer": min}
    out: dict[str, Any] = {"mean": {}, "worst": {}}
    for key, pick in worst_rule.items():
        have = {name: r[key] for name, r in results.items() if r.get(key) is not None}
        if not have:
            continue
        out["mean"][key] = sum(have.values()) / len(have)
        name = pick(have, key=have.get)
        out["worst"][key] = {"value": have[name], "ordering": name}
    return out
