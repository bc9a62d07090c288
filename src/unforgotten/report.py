"""Side-by-side tables of evaluated models (Markdown for files, rich for the terminal)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from .eval.evaluate import headline

COLUMNS = (("asr", "ASR ↓"), ("benign_refusal", "Benign refusal ↓"), ("task_accuracy", "Task acc ↑"))


def _fmt(summary: dict[str, Any], key: str) -> str:
    value = headline(summary)[key]
    if value is None:
        return "-"
    # The interval of the first set of that kind (the headline averages sets; CIs are per set).
    block = {"asr": summary["harmful"], "benign_refusal": summary["benign"]}.get(key)
    metric = next(iter(block.values())) if block else summary.get("task")
    if metric and len(block or [1]) == 1:
        return f"{100 * value:.1f} [{100 * metric['ci_low']:.0f}–{100 * metric['ci_high']:.0f}]"
    return f"{100 * value:.1f}"


def markdown_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = "| model | " + " | ".join(c for _, c in COLUMNS) + " |"
    sep = "|---|" + "---|" * len(COLUMNS)
    lines = [head, sep] + ["| " + label + " | " + " | ".join(_fmt(s, k) for k, _ in COLUMNS) + " |" for label, s in rows]
    return "\n".join(lines) + "\n\nPercentages with bootstrap 95% intervals; judge: " + (rows[0][1]["judge"] if rows else "-") + "\n"


def rich_table(rows: list[tuple[str, dict[str, Any]]], title: str = "unforgotten") -> Table:
    t = Table(title=title)
    t.add_column("model")
    for _, c in COLUMNS:
        t.add_column(c, justify="right")
    for label, s in rows:
        t.add_row(label, *(_fmt(s, k) for k, _ in COLUMNS))
    return t
