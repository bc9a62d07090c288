"""Utility tasks: how a utility benchmark's responses are scored, one registry entry per kind.

A task turns ``(records, responses)`` into the benchmark's ``result`` (a rate with its bootstrap
interval, see ``metrics.rate_with_ci``) and one row per prompt for the per-sample JSONL. The three
shipped kinds: ``label`` (classification accuracy), ``number`` (exact match of the final number)
and ``code`` (pass@1 in the sandbox). A new kind of task is one :func:`register_task` call, and a
benchmark names it (``Benchmark(..., task="mine")``); see docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..data.schema import Record, prompt_text
from ..registry import Registry
from .metrics import accuracy, rate_with_ci
from .scoring import answers_and_labels, is_correct

if TYPE_CHECKING:  # pragma: no cover
    from ..config import EvalConfig

# (records, responses, eval config) -> ({"result": metric dict}, per-sample rows)
Scorer = Callable[[list[Record], list[str], "EvalConfig"], tuple[dict[str, Any], list[dict[str, Any]]]]


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the name the summary and the report give the result ("accuracy", "pass@1")
    score: Scorer
    # Records must carry a gold ``label`` (a record with a gold assistant turn gets it as label).
    needs_label: bool = True


TASKS: Registry[Task] = Registry("utility task")


def register_task(task: Task) -> Task:
    TASKS.register(task.name, task)
    return task


def _answers(kind: str) -> Scorer:
    """Extract an answer of ``kind`` from each response and compare it with the record's label."""

    def score(records: list[Record], responses: list[str], cfg: "EvalConfig") -> tuple[dict[str, Any], list[dict]]:
        preds, labels = answers_and_labels(responses, records, kind, choices=None)
        rows = [
            {"id": r.get("id"), "prompt": prompt_text(r), "response": s, "pred": p, "label": lab, "correct": is_correct(p, lab)}
            for r, s, p, lab in zip(records, responses, preds, labels)
        ]
        return {"result": accuracy(preds, labels)}, rows

    return score


def _code(records: list[Record], responses: list[str], cfg: "EvalConfig") -> tuple[dict[str, Any], list[dict]]:
    """Run each response's program against the record's tests in the sandbox (pass@1)."""
    from .code import pass_at_1

    flags, results = pass_at_1(records, responses, workers=cfg.code_workers, timeout_s=cfg.code_timeout_s)
    rows = [
        {"id": r.get("id"), "response": s, "status": res.status, "passed": f,
         # one bounded, scrubbed line: whatever the code read must not land in the results
         "error": res.error_line}
        for r, s, f, res in zip(records, responses, flags, results)
    ]
    return {"result": rate_with_ci(flags, none_counts_as=False)}, rows


register_task(Task("label", "accuracy", _answers("label")))
register_task(Task("number", "exact_match", _answers("number")))
register_task(Task("code", "pass@1", _code, needs_label=False))
