"""What the tables show: per-model numbers read out of summaries, the columns over several models,
the judge order, and the text of one cell."""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from ..errors import UserInputError
from .summaries import Row, _is_num

DASH = "—"
_METRIC_NAMES = {"asr": "ASR", "refusal_rate": "refusal", "accuracy": "accuracy", "exact_match": "exact match", "pass@1": "pass@1"}


def _value(m: Any) -> float | None:
    """A metric's value, or None when absent or not a number (NaN: nothing was evaluated)."""
    if not isinstance(m, dict):
        return None
    v = m.get("value")
    return float(v) if _is_num(v) and math.isfinite(v) else None


def _primary(summary: dict[str, Any]) -> str | None:
    judges = summary.get("judges") or []
    return judges[0] if judges else None


def _benches(summary: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(n, b) for n, b in (summary.get("benchmarks") or {}).items() if isinstance(b, dict) and b.get("kind") == kind]


def _metric(summary: dict[str, Any], bench: str, judge: str | None) -> dict[str, Any] | None:
    """The metric dict of ``bench`` in ``summary`` (for ``judge`` unless it is a utility set)."""
    b = (summary.get("benchmarks") or {}).get(bench)
    if not isinstance(b, dict):
        return None
    if b.get("kind") == "utility":
        return b.get("result")
    return (b.get("by_judge") or {}).get(judge) if judge is not None else None


def _mean_over(summary: dict[str, Any], kind: str, judge: str | None) -> tuple[float | None, list[str]]:
    """Mean value over the ``kind`` benchmarks that have a number for ``judge``, and their names."""
    if judge is None:
        return None, []
    got = [(n, _value(_metric(summary, n, judge))) for n, _ in _benches(summary, kind)]
    got = [(n, v) for n, v in got if v is not None]
    if not got:
        return None, []
    return sum(v for _, v in got) / len(got), [n for n, _ in got]


def headline(summary: dict[str, Any], judge: str | None = None) -> dict[str, Any]:
    """The numbers one table row or plot point shows for one evaluated model.

    ``asr``: mean ASR over the harmful benchmarks, ``over_refusal``: mean refusal rate over the
    over-refusal benchmarks, both for ``judge`` (default: the summary's primary judge) and
    ``None`` when there is no such benchmark or the judge did not score it; ``utility``: the
    first utility benchmark's value and ``utility_metric`` its metric name (both ``None`` when
    there is none). Values are fractions in [0, 1]; benchmarks with no samples (NaN) are left
    out of the means.
    """
    judge = judge if judge is not None else _primary(summary)
    asr, _ = _mean_over(summary, "harmful", judge)
    over, _ = _mean_over(summary, "overrefusal", judge)
    utility = _benches(summary, "utility")
    first = utility[0][1] if utility else None
    return {
        "asr": asr,
        "over_refusal": over,
        "utility": _value(first.get("result")) if first else None,
        "utility_metric": first.get("metric") if first else None,
    }


def _union(rows: Sequence[Row], kind: str) -> list[str]:
    """Benchmarks of ``kind`` over all rows, in first-seen order."""
    names: dict[str, None] = {}
    for _, s in rows:
        for n, _ in _benches(s, kind):
            names.setdefault(n, None)
    return list(names)


def _judges(rows: Sequence[Row]) -> list[str]:
    """Judges over all rows, in first-seen order: the declared lists first, then any others scored."""
    names: dict[str, None] = {}
    for _, s in rows:
        for j in s.get("judges") or []:
            names.setdefault(j, None)
    for _, s in rows:
        for b in (s.get("benchmarks") or {}).values():
            for j in (b.get("by_judge") or {}) if isinstance(b, dict) else ():
                names.setdefault(j, None)
    return list(names)


def _resolve_judge(rows: Sequence[Row], judge: str | None) -> tuple[str | None, list[str]]:
    """The judge the main table uses, and every judge in display order (that one first)."""
    judges = _judges(rows)
    if judge is None:
        judge = next((p for p in (_primary(s) for _, s in rows) if p), judges[0] if judges else None)
    elif judges and judge not in judges:
        raise UserInputError(f"judge {judge!r} scored none of these summaries; judges present: {', '.join(judges)}")
    order = ([judge] if judge else []) + [j for j in judges if j != judge]
    return judge, order


def _rows(rows: Iterable[Row | dict[str, Any]]) -> list[Row]:
    out = []
    for i, r in enumerate(rows):
        if isinstance(r, dict):
            out.append((str(r.get("label") or f"model {i + 1}"), r))
        else:
            label, s = r
            out.append((str(label), s))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def fmt_metric(m: dict[str, Any] | None) -> str:
    """``12.3 [8.1–17.0]``: value and bootstrap interval in percent; ``—`` when missing."""
    v = _value(m)
    if v is None:
        return DASH
    lo, hi = m.get("ci_low"), m.get("ci_high")  # type: ignore[union-attr]
    if _is_num(lo) and _is_num(hi) and math.isfinite(lo) and math.isfinite(hi):
        return f"{_pct(v)} [{_pct(lo)}–{_pct(hi)}]"
    return _pct(v)


def _metric_name(metric: str | None) -> str:
    return _METRIC_NAMES.get(metric or "", metric or "")


def _utility_metric(rows: Sequence[Row], bench: str) -> str:
    for _, s in rows:
        b = (s.get("benchmarks") or {}).get(bench)
        if isinstance(b, dict) and b.get("metric"):
            return b["metric"]
    return "score"


def _n_range(rows: Sequence[Row], bench: str) -> str:
    ns = sorted({int(b["n"]) for _, s in rows
                 if isinstance(b := (s.get("benchmarks") or {}).get(bench), dict) and _is_num(b.get("n"))})
    if not ns:
        return "?"
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"


_UNDECIDED_AS = {
    ("harmful", True): "attack success", ("harmful", False): "no attack success",
    ("overrefusal", True): "refused", ("overrefusal", False): "not refused",
    ("utility", True): "correct", ("utility", False): "wrong",
}


def _undecided(rows: Sequence[Row], judge_order: list[str]) -> list[str]:
    """One line per row with any undecided verdicts: which benchmark, judge, how many, counted as what."""
    lines = []
    for label, s in rows:
        parts = []
        for name, b in (s.get("benchmarks") or {}).items():
            if not isinstance(b, dict):
                continue
            kind = b.get("kind")
            if kind == "utility":
                metrics = [(None, b.get("result"))]
            else:
                by = b.get("by_judge") or {}
                metrics = [(j, by[j]) for j in judge_order if j in by] + [(j, m) for j, m in by.items() if j not in judge_order]
            for j, m in metrics:
                k = m.get("n_undecided", 0) if isinstance(m, dict) else 0
                if _is_num(k) and k > 0:
                    as_ = _UNDECIDED_AS.get((kind, bool(m.get("undecided_as"))), str(m.get("undecided_as")))
                    who = f"{name} ({j})" if j else name
                    parts.append(f"{who} {int(k)} of {m.get('n', '?')}, counted as {as_}")
        if parts:
            lines.append(f"- {label}: " + "; ".join(parts))
    return lines
