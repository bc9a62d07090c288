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
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import UserInputError

Row = tuple[str, dict[str, Any]]

KINDS = ("harmful", "overrefusal", "utility")
DASH = "—"
PLOT_HINT = "pip install 'unforgotten[plot]'"


class MissingPlotDependency(UserInputError):
    """matplotlib is not installed (it comes with the ``plot`` extra)."""

_METRIC_NAMES = {"asr": "ASR", "refusal_rate": "refusal", "accuracy": "accuracy", "exact_match": "exact match", "pass@1": "pass@1"}
_OLD_KEYS = {"harmful", "benign", "task", "judge"}


# --------------------------------------------------------------------------------------------
# Reading summaries
# --------------------------------------------------------------------------------------------


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _schema_problems(s: Any) -> list[str]:
    """What keeps ``s`` from being a summary in the current schema (empty when it is one)."""
    if not isinstance(s, dict):
        return [f"expected a JSON object, found {type(s).__name__}"]
    problems: list[str] = []
    judges = s.get("judges")
    if "judges" not in s:
        problems.append("missing 'judges' (list of judge names, primary first)")
    elif not isinstance(judges, list) or not all(isinstance(j, str) for j in judges):
        problems.append("'judges' must be a list of judge names")
    if "benchmarks" not in s:
        problems.append("missing 'benchmarks' (an object: benchmark name -> result)")
        return problems
    benches = s["benchmarks"]
    if not isinstance(benches, dict):
        return problems + ["'benchmarks' must be an object: benchmark name -> result"]
    for name, b in benches.items():
        where = f"benchmarks.{name}"
        if not isinstance(b, dict):
            problems.append(f"{where} must be an object")
            continue
        kind = b.get("kind")
        if kind not in KINDS:
            problems.append(f"{where}.kind must be one of {', '.join(KINDS)} (found {kind!r})")
            continue
        if not isinstance(b.get("metric"), str):
            problems.append(f"{where}: missing 'metric'")
        if kind == "utility":
            m = b.get("result")
            if not isinstance(m, dict) or "value" not in m:
                problems.append(f"{where}: utility benchmark needs 'result' with a 'value'")
        else:
            by = b.get("by_judge")
            if not isinstance(by, dict):
                problems.append(f"{where}: {kind} benchmark needs 'by_judge' (judge name -> metric)")
                continue
            for j, m in by.items():
                if not isinstance(m, dict) or "value" not in m:
                    problems.append(f"{where}.by_judge.{j} needs a 'value'")
    return problems


def _check(s: Any, where: str) -> dict[str, Any]:
    problems = _schema_problems(s)
    if problems:
        hint = ""
        if isinstance(s, dict) and "benchmarks" not in s and _OLD_KEYS & s.keys():
            hint = " (it looks like a summary from an older unforgotten version: re-run `unforgotten evaluate` on that model)"
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise UserInputError(f"{where}: not an unforgotten evaluation summary: {shown}{hint}")
    return s


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserInputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read ({e.strerror or e})") from None


def _from_results(path: Path, origin: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    data = _load_json(path)
    if not isinstance(data, list):
        raise UserInputError(f"{path}: expected a JSON list of evaluation summaries, found {type(data).__name__}")
    if not data:
        raise UserInputError(f"{path}: the list of evaluation summaries is empty")
    out = []
    for i, s in enumerate(data):
        label = s.get("label") if isinstance(s, dict) else None
        where = f"{path}, entry {i + 1}" + (f" ({label!r})" if label else "")
        _check(s, where)
        out.append((str(label) if label else f"{origin} #{i + 1}", origin, s))
    return out


def _from_summary(path: Path, fallback: str, origin: str) -> tuple[str, str, dict[str, Any]]:
    s = _check(_load_json(path), str(path))
    return (str(s["label"]) if s.get("label") else fallback, origin, s)


def _dir_name(p: Path) -> str:
    return p.name or p.resolve().name


def _collect_one(p: Path) -> list[tuple[str, str, dict[str, Any]]]:
    if not p.exists():
        raise UserInputError(f"{p}: no such file or directory")
    if p.is_file():
        origin = _dir_name(p.parent)
        data = _load_json(p)
        if isinstance(data, list):
            return _from_results(p, origin)
        return [_from_summary(p, origin, origin)]
    origin = _dir_name(p)
    if (p / "results.json").is_file():
        return _from_results(p / "results.json", origin)
    if (p / "summary.json").is_file():
        return [_from_summary(p / "summary.json", origin, origin)]
    found = sorted(p.rglob("summary.json"), key=lambda f: f.relative_to(p).parts)
    if not found:
        raise UserInputError(
            f"{p}: no evaluation summaries here (looked for results.json, summary.json, and summary.json in subdirectories)"
        )
    # Found below a directory of runs, a label used twice is told apart by the top subdirectory.
    return [_from_summary(f, f.parent.relative_to(p).as_posix(), f.relative_to(p).parts[0]) for f in found]


def _disambiguate(entries: list[tuple[str, str, dict[str, Any]]]) -> list[Row]:
    counts: dict[str, int] = {}
    for label, _, _ in entries:
        counts[label] = counts.get(label, 0) + 1
    # A label used more than once gets the name of the path it came from, when those differ.
    labels = []
    for label, origin, _ in entries:
        origins = {o for lab, o, _ in entries if lab == label}
        labels.append(f"{label} ({origin})" if counts[label] > 1 and len(origins) > 1 else label)
    # Whatever still repeats is numbered in order of appearance: "x", "x (2)", "x (3)".
    seen: dict[str, int] = {}
    taken = set(labels)
    out: list[Row] = []
    for label, (_, _, s) in zip(labels, entries):
        seen[label] = seen.get(label, 0) + 1
        new = label
        if seen[label] > 1:
            k = seen[label]
            while f"{label} ({k})" in taken:
                k += 1
            new = f"{label} ({k})"
            taken.add(new)
        out.append((new, s))
    return out


def collect(paths: str | Path | Iterable[str | Path]) -> list[Row]:
    """``(label, summary)`` for every evaluation summary under ``paths``, in order.

    Each path may be a ``summary.json`` file, an evaluation directory holding one, a run
    directory with ``results.json`` (its list is used, in order), a ``results.json`` file, or
    any directory, searched recursively for ``summary.json`` files (sorted by path). A row's
    label is the summary's ``label``, else its directory name relative to the given path;
    labels used more than once get the given path's name, then a number, appended.

    Raises :class:`UserInputError` for a missing path, a path with no summaries, or a file that
    is not a summary in the current schema (naming the file and what is missing).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserInputError("no paths given: name summary.json files, evaluation directories or run directories")
    entries = [e for p in paths for e in _collect_one(p)]
    return _disambiguate(entries)


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


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


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


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


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def markdown_report(rows: Iterable[Row | dict[str, Any]], *, judge: str | None = None, title: str | None = None) -> str:
    """The report's tables and notes as Markdown.

    The main table has one row per model: each harmful benchmark's ASR for ``judge`` (default:
    the first row's primary judge), then each utility benchmark's metric. Every other judge gets
    a table of the same ASR columns; over-refusal benchmarks get their own table with a column
    per benchmark and judge. Cells read ``12.3 [8.1–17.0]`` (percent, bootstrap 95% interval),
    ``—`` where a model lacks that benchmark. Benchmarks appear in first-seen order. The notes
    name the judges, the prompt counts, and every undecided verdict.
    """
    return _markdown(_rows(rows), judge=judge, title=title)


def _markdown(rows: list[Row], *, judge: str | None, title: str | None, figure: str | None = None) -> str:
    primary, order = _resolve_judge(rows, judge)
    harmful, over, utility = (_union(rows, k) for k in KINDS)
    out: list[str] = [f"# {title}", ""] if title else []

    def asr_table(j: str | None, with_utility: bool) -> str:
        header = ["model"] + [f"{b} ASR ↓" for b in harmful]
        if with_utility:
            header += [f"{b} {_metric_name(_utility_metric(rows, b))} ↑" for b in utility]
        body = []
        for label, s in rows:
            cells = [fmt_metric(_metric(s, b, j)) for b in harmful]
            if with_utility:
                cells += [fmt_metric(_metric(s, b, None)) for b in utility]
            body.append([label] + cells)
        return _md_table(header, body)

    out += ["## Safety and utility" + (f" (judge: {primary})" if primary and harmful else ""), ""]
    out += ["Attack success rate (ASR) on harmful benchmarks, then utility; % [bootstrap 95% CI].", ""]
    out += [asr_table(primary, True), ""]
    for j in order[1:]:
        if any(_value(_metric(s, b, j)) is not None for _, s in rows for b in harmful):
            out += [f"### ASR, judge: {j}", "", asr_table(j, False), ""]

    if over:
        cols = [(b, j) for b in over for j in order if any(isinstance(_metric(s, b, j), dict) for _, s in rows)]
        out += ["## Over-refusal", "", "Refusal rate on benign prompts that look sensitive; % [bootstrap 95% CI].", ""]
        header = ["model"] + [f"{b} refusal ↓ ({j})" for b, j in cols]
        body = [[label] + [fmt_metric(_metric(s, b, j)) for b, j in cols] for label, s in rows]
        out += [_md_table(header, body), ""]

    if figure:
        out += ["## Safety vs. utility", "", figure, ""]

    out += ["## Notes", "", "- Values are percentages; brackets are bootstrap 95% confidence intervals; — = not evaluated."]
    if order:
        out.append("- Judges: " + ", ".join(f"{j} (main table)" if j == primary else j for j in order) + ".")
    sizes = [f"{b} {_n_range(rows, b)}" for b in harmful + over + utility]
    if sizes:
        out.append("- Prompts per benchmark (n): " + ", ".join(sizes) + ".")
    undecided = _undecided(rows, order)
    if undecided:
        out.append("- Undecided verdicts (the judge could not decide, or no answer was extracted) are counted against "
                   "the model, not dropped; the other choice would move a rate by at most undecided/n:")
        out += ["  " + line for line in undecided]
    else:
        out.append("- No undecided verdicts.")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------


def _headline_cell(s: dict[str, Any], kind: str, judge: str | None) -> str:
    """Mean over the row's ``kind`` benchmarks; with its interval when one benchmark defines it."""
    value, used = _mean_over(s, kind, judge)
    if value is None:
        return DASH
    return fmt_metric(_metric(s, used[0], judge)) if len(used) == 1 else _pct(value)


def rich_table(rows: Iterable[Row | dict[str, Any]], *, judge: str | None = None, title: str = "unforgotten"):
    """A ``rich`` table for the terminal: per model, mean ASR, mean over-refusal and utility (%)."""
    from rich.table import Table
    from rich.text import Text

    rows = _rows(rows)
    primary, order = _resolve_judge(rows, judge)
    harmful, over, utility = (_union(rows, k) for k in KINDS)
    first_utility = {label: (_benches(s, "utility") or [(None, None)])[0][0] for label, s in rows}
    same_utility = len(set(first_utility.values())) == 1 and None not in first_utility.values()
    utility_head = "utility ↑"
    if same_utility:
        b = next(iter(first_utility.values()))
        utility_head += f"\n{b} {_metric_name(_utility_metric(rows, b))}"

    t = Table(title=Text(title))
    t.add_column("model")
    for head in ("ASR ↓" + (f"\n{harmful[0]}" if len(harmful) == 1 else f"\nmean of {len(harmful)}" if harmful else ""),
                 "over-refusal ↓" + (f"\n{over[0]}" if len(over) == 1 else f"\nmean of {len(over)}" if over else ""),
                 utility_head):
        t.add_column(Text(head), justify="right")
    for label, s in rows:
        b = first_utility[label]
        u = fmt_metric(_metric(s, b, None)) if b else DASH
        if b and not same_utility and u != DASH:
            u += f" ({b})"
        cells = (label, _headline_cell(s, "harmful", primary), _headline_cell(s, "overrefusal", primary), u)
        t.add_row(*(Text(c) for c in cells))  # plain text: brackets in labels and intervals are not markup
    caption = [f"judge: {primary}" if primary else "no judge", "% [bootstrap 95% CI] where one benchmark defines the value"]
    n_undecided = len(_undecided(rows, order))
    if n_undecided:
        caption.append(f"{n_undecided} model(s) with undecided verdicts, counted against the model (see report.md)")
    t.caption = Text("; ".join(caption))
    return t


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------------


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
