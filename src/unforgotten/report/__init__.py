"""Reports from evaluation summaries: Markdown tables, a terminal table, a safety–utility plot.

Input is one or more ``summary.json`` files (one evaluated model each), or run directories
whose ``results.json`` lists several. :func:`collect` finds them, :func:`build_report` writes

* ``report.md``: the main table shaped like the study's tables (rows = models/methods; columns
  = each harmful benchmark's ASR, then each utility benchmark's metric; percent with bootstrap
  95% intervals) for the primary judge, the same ASR columns for every other judge, and a
  separate over-refusal table, followed by notes (judges, prompt counts, undecided verdicts);
* ``results.json``: the collected summaries, each with its (disambiguated) ``label``;
* ``safety_utility.png``: utility (x) against mean ASR (y), one labelled point per model.

Undecided verdicts are counted against the model by the evaluator, never dropped; every
non-zero ``n_undecided`` is listed in the notes so a reader can see how far a rate could move.

Modules: ``summaries`` (find and check summaries), ``tables`` (the numbers and cells a table
shows), ``render`` (Markdown and terminal tables), ``plot`` (the scatter plot); this file writes
them all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

from .plot import PLOT_HINT, MissingPlotDependency, scatter_plot
from .render import _markdown, markdown_report, rich_table
from .summaries import KINDS, Row, collect
from .tables import DASH, _resolve_judge, _rows, fmt_metric, headline

__all__ = [
    "DASH", "KINDS", "PLOT_HINT", "MissingPlotDependency", "Row", "build_report", "collect", "fmt_metric", "headline",
    "markdown_report", "rich_table", "scatter_plot", "write_report",
]


def build_report(paths: str | Path | Iterable[str | Path], out_dir: str | Path, *,
                 judge: str | None = None, title: str | None = None) -> dict[str, Path]:
    """Collect the summaries under ``paths`` (see :func:`collect`) and :func:`write_report` them
    into ``out_dir``: ``report.md``, ``results.json``, ``safety_utility.png``."""
    return write_report(collect(paths), out_dir, judge=judge, title=title)


def write_report(rows: Iterable[Row | dict[str, Any]], out_dir: str | Path, *,
                 judge: str | None = None, title: str | None = None) -> dict[str, Path]:
    """Write ``report.md`` (tables, plot link, notes), ``results.json`` (the rows, each with its
    ``label``) and ``safety_utility.png`` into ``out_dir`` (created); return
    ``{"report", "results", "plot"}`` -> path. Without matplotlib the plot is left out (the
    report says how to get it) rather than failing the whole report."""
    rows = _rows(rows)
    _resolve_judge(rows, judge)  # an unknown judge fails before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    results = out / "results.json"
    results.write_text(json.dumps([{"label": label, **{k: v for k, v in s.items() if k != "label"}} for label, s in rows], indent=2))
    written["results"] = results

    plot = out / "safety_utility.png"
    try:
        skipped = scatter_plot(rows, plot, judge=judge)
    except MissingPlotDependency as e:
        print(f"report: no plot: {e}", file=sys.stderr)
        figure = f"No plot: matplotlib is not installed ({PLOT_HINT})."
    else:
        written["plot"] = plot
        if len(skipped) == len(rows):
            figure = "No plot: no model has both an ASR and a utility number."
        else:
            figure = f"![Safety vs. utility]({plot.name})"
            if skipped:
                figure += "\n\nNot plotted (no ASR or no utility number): " + ", ".join(skipped) + "."
    report = out / "report.md"
    report.write_text(_markdown(rows, judge=judge, title=title, figure=figure))
    written["report"] = report
    return {k: written[k] for k in ("report", "results", "plot") if k in written}
