"""The safety–utility scatter plot (matplotlib, from the ``plot`` extra)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserInputError
from .summaries import Row, _is_num
from .tables import _mean_over, _metric, _metric_name, _resolve_judge, _rows, _union, _utility_metric, _value

PLOT_HINT = "pip install 'unforgotten[plot]'"


class MissingPlotDependency(UserInputError):
    """matplotlib is not installed (it comes with the ``plot`` extra)."""


def _err(m: dict[str, Any] | None, v: float) -> tuple[float, float] | None:
    if not isinstance(m, dict):
        return None
    lo, hi = m.get("ci_low"), m.get("ci_high")
    if not (_is_num(lo) and _is_num(hi) and math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (max(0.0, 100 * (v - lo)), max(0.0, 100 * (hi - v)))


def scatter_plot(rows: Iterable[Row | dict[str, Any]], path: str | Path, *, judge: str | None = None) -> list[str]:
    """Write a safety–utility scatter PNG to ``path``; return the labels of rows left out.

    x: the first utility benchmark (first seen over the rows), in percent; y: mean ASR over the
    harmful benchmarks for ``judge`` (default: primary), in percent. One labelled point per
    row, with 95% CI error bars on an axis defined by a single benchmark. Rows lacking either
    number are left out (and returned). The file is written even when every row is left out.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingPlotDependency(f"the safety–utility plot needs matplotlib: {PLOT_HINT}") from None

    rows = _rows(rows)
    primary, _ = _resolve_judge(rows, judge)
    harmful, utility = _union(rows, "harmful"), _union(rows, "utility")
    ubench = utility[0] if utility else None
    umetric = _metric_name(_utility_metric(rows, ubench)) if ubench else "utility"

    points, skipped = [], []
    for label, s in rows:
        asr, used = _mean_over(s, "harmful", primary)
        um = _metric(s, ubench, None) if ubench else None
        u = _value(um)
        if asr is None or u is None:
            skipped.append(label)
            continue
        xerr = _err(um, u)
        yerr = _err(_metric(s, used[0], primary), asr) if len(harmful) == 1 else None
        points.append((label, 100 * u, 100 * asr, xerr, yerr))

    fig = Figure(figsize=(7, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(points))]
    for i, ((label, x, y, xerr, yerr), color) in enumerate(zip(points, colors)):
        ax.errorbar(
            x, y,
            xerr=[[xerr[0]], [xerr[1]]] if xerr else None,
            yerr=[[yerr[0]], [yerr[1]]] if yerr else None,
            fmt="o", color=color, ecolor=color, elinewidth=1, capsize=3, alpha=0.9,
        )
        # methods often land on the same spot (e.g. several at 0% ASR): stack their labels
        stack = sum(abs(x - px) < 3 and abs(y - py) < 3 for _, px, py, _, _ in points[:i])
        ax.annotate(label, (x, y), xytext=(5, 5 + 10 * stack), textcoords="offset points", fontsize=8, color=color)
    if not points:
        ax.text(0.5, 0.5, "no model has both an ASR and a utility number", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    ax.margins(0.15)
    if points:  # percentages: keep the padding from running far past 0 or 100
        for get, set_ in ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim)):
            lo, hi = get()
            set_(max(lo, -2.0), min(hi, 102.0))
    x_bench = f"{ubench} {umetric}" if ubench else "utility"
    y_bench = (harmful[0] if len(harmful) == 1 else "mean of " + ", ".join(harmful)) if harmful else "no harmful benchmark"
    ax.set_xlabel(f"{x_bench} (%) — higher is better")
    ax.set_ylabel(f"ASR on {y_bench} (%, judge: {primary or '—'}) — lower is better")
    ax.set_title("Safety vs. utility" + (" (bars: bootstrap 95% CI)" if any(p[3] or p[4] for p in points) else ""))
    ax.grid(True, alpha=0.3)
    ax.annotate("better", xy=(0.98, 0.03), xycoords="axes fraction", xytext=(0.82, 0.18), textcoords="axes fraction",
                ha="center", va="center", color="green", fontsize=10,
                arrowprops=dict(arrowstyle="->", color="green"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return skipped
