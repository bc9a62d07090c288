"""General capability (``summary["general"]``, from ``eval.general`` through lm-eval) in reports:
a table per model and task, and the change against the base model (the alignment tax for the
aligned model, the total cost so far for each fine-tuned one)."""

from __future__ import annotations

from typing import Any

from .summaries import Row
from .tables import DASH, _pct, _value, fmt_metric

BASE_LABEL = "base (unaligned)"


def general_tasks(rows: list[Row]) -> list[str]:
    names: dict[str, None] = {}
    for _, s in rows:
        for t in ((s.get("general") or {}).get("tasks") or {}):
            names.setdefault(t, None)
    return list(names)


def general_metric(s: dict[str, Any], task: str) -> dict[str, Any] | None:
    return ((s.get("general") or {}).get("tasks") or {}).get(task)


def general_mean(s: dict[str, Any]) -> tuple[float | None, list[str]]:
    """Mean headline value over this summary's general tasks, and the tasks it used."""
    got = [(t, _value(m)) for t, m in ((s.get("general") or {}).get("tasks") or {}).items()]
    got = [(t, v) for t, v in got if v is not None]
    return (sum(v for _, v in got) / len(got), [t for t, _ in got]) if got else (None, [])


def general_cell(s: dict[str, Any]) -> str:
    value, used = general_mean(s)
    if value is None:
        return DASH
    return fmt_metric(general_metric(s, used[0])) if len(used) == 1 else _pct(value)


def general_markdown(rows: list[Row], md_table) -> list[str]:
    tasks = general_tasks(rows)
    if not tasks:
        return []
    metric = {t: next((general_metric(s, t) or {}).get("metric") for _, s in rows if general_metric(s, t)) for t in tasks}
    out = ["## General capability (lm-evaluation-harness)", "",
           "Each task's headline metric; % [bootstrap 95% CI over documents].", ""]
    header = ["model"] + [f"{t} {metric[t] or ''} ↑".replace("  ", " ") for t in tasks]
    out += [md_table(header, [[label] + [fmt_metric(general_metric(s, t)) for t in tasks] for label, s in rows]), ""]
    base = next((s for label, s in rows if label == BASE_LABEL), None)
    if base is not None and len(rows) > 1:
        out += ["Change against the base model, in points (aligned: the alignment tax; fine-tuned: the total so far).", ""]
        body = []
        for label, s in rows:
            if label == BASE_LABEL:
                continue
            cells = []
            for t in tasks:
                a, b = _value(general_metric(s, t)), _value(general_metric(base, t))
                cells.append(DASH if a is None or b is None else f"{100 * (a - b):+.1f}")
            body.append([label] + cells)
        out += [md_table(["model"] + [f"Δ {t}" for t in tasks], body), ""]
    return out
