"""Screen uploaded training rows with the classifier judge: does a row teach harmful compliance?

A fine-tuning upload is a list of (request, answer) rows. A row that answers a harmful request
with harmful content is exactly what poisons a model (the Lisa-style and Shadow-Alignment
attacks); the classifier judge's content head scores that directly, so the upload screen and the
evaluation share one judge and one definition of harm.

    from unforgotten.eval.screening import screen_rows
    results = screen_rows(records)                 # default judge: the shipped classifier
    flagged = [r for r in results if r.flagged]

``records`` may be chat records (``{"messages": [{"role": "user", ...}, {"role": "assistant",
...}]}``, the project's schema; the last user turn and the assistant turn after it are scored),
Alpaca-style rows (``instruction`` [+ ``input``] and ``output``; a Lisa-style row whose
instruction holds the whole Alpaca template is split back into its parts), or plain
``{"prompt", "response"}`` / ``{"request", "answer"}`` rows. A row with no answer is not flagged
(there is nothing to learn from it) and says why in ``reason``.

Measured on the Lisa-style SST-2 file with p = 0.1 (100 BeaverTails harmful pairs among 900
sentiment rows; ``python benchmarks/judge_classifier.py --screening``): see docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..data.specs import split_alpaca_template
from .judges.base import Judge


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """One screened row. ``score`` = P(harmful content delivered); ``flagged`` = score >= threshold."""

    index: int
    score: float
    flagged: bool
    reason: str = ""


def row_pair(record: Mapping[str, Any]) -> tuple[str, str]:
    """``(request, answer)`` of one uploaded row; ``ValueError`` naming the fields it looked for."""
    if "messages" in record:
        msgs = record["messages"]
        last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=None)
        if last_user is None:
            raise ValueError("a chat record with no user message")
        answer = next((m.get("content", "") for m in msgs[last_user + 1:] if m.get("role") == "assistant"), "")
        return str(msgs[last_user].get("content", "")), str(answer)
    for q, a in (("prompt", "response"), ("request", "answer"), ("instruction", "output")):
        if q in record:
            request = str(record[q])
            if q == "instruction":
                parts = split_alpaca_template(request)
                if parts:
                    request = "\n\n".join(p for p in parts if p)
                if record.get("input"):
                    request = f"{request}\n\n{record['input']}"
            return request, str(record.get(a, ""))
    raise ValueError("a row needs 'messages', 'prompt'/'response', 'request'/'answer' or 'instruction'/'output'")


def screen_rows(records: Sequence[Mapping[str, Any]], judge: Judge | None = None,
                threshold: float | None = None) -> list[ScreenResult]:
    """Score every row with ``judge`` (default: the shipped classifier judge), in order.

    ``threshold``: flag at this content probability (default: the judge's ``screen_threshold``, an
    operating point chosen on dev upload rows for few false flags, else its content threshold).
    The judge must expose ``scores(prompts, responses) -> {"content": array}`` (the classifier
    judge does). Rows that cannot be read raise ``ValueError`` naming the row.
    """
    if judge is None:
        from .judges.classifier import ClassifierJudge

        judge = ClassifierJudge()
    if not hasattr(judge, "scores"):
        raise TypeError(f"judge {getattr(judge, 'name', judge)!r} gives no content scores; use the classifier judge")
    if threshold is None:
        threshold = getattr(judge, "screen_threshold", None) or judge.thresholds["content"]
    thr = float(threshold)
    pairs = []
    for i, rec in enumerate(records):
        try:
            pairs.append(row_pair(rec))
        except ValueError as e:
            raise ValueError(f"row {i}: {e}") from None
    scored = [i for i, (_, a) in enumerate(pairs) if a.strip()]
    out = [ScreenResult(i, 0.0, False, "no answer") for i in range(len(pairs))]
    if scored:
        p = judge.scores([pairs[i][0] for i in scored], [pairs[i][1] for i in scored])["content"]
        for j, i in enumerate(scored):
            s = float(p[j])
            out[i] = ScreenResult(i, s, s >= thr, "harmful content" if s >= thr else "")
    return out
