"""Rendering: the Markdown report and the terminal table."""

from __future__ import annotations

from typing import Any, Iterable

from .general import general_cell, general_markdown, general_tasks
from .summaries import KINDS, Row
from .tables import (
    DASH, _benches, _mean_over, _metric, _metric_name, _n_range, _pct, _resolve_judge, _rows, _undecided, _union,
    _utility_metric, _value, fmt_metric,
)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


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

    # The classifier judge's content-ASR sits beside the main judge's ASR in the main table: the
    # share of answers that deliver harmful content next to the share that do not refuse.
    content = CONTENT_JUDGE if CONTENT_JUDGE in order and primary != CONTENT_JUDGE and any(
        _value(_metric(s, b, CONTENT_JUDGE)) is not None for _, s in rows for b in harmful) else None

    def asr_table(j: str | None, with_utility: bool) -> str:
        side = content if with_utility else None
        header = ["model"]
        for b in harmful:
            header += [f"{b} {_asr_name(j)} ↓"] + ([f"{b} content-ASR ↓"] if side else [])
        if with_utility:
            header += [f"{b} {_metric_name(_utility_metric(rows, b))} ↑" for b in utility]
        body = []
        for label, s in rows:
            cells = []
            for b in harmful:
                cells += [fmt_metric(_metric(s, b, j))] + ([fmt_metric(_metric(s, b, side))] if side else [])
            if with_utility:
                cells += [fmt_metric(_metric(s, b, None)) for b in utility]
            body.append([label] + cells)
        return _md_table(header, body)

    out += ["## Safety and utility" + (f" (judge: {primary})" if primary and harmful else ""), ""]
    out += ["Attack success rate (ASR) on harmful benchmarks, then utility; % [bootstrap 95% CI]."
            + (" content-ASR (judge: classifier) counts only answers that deliver harmful content, not every "
               "answer without a refusal (docs/evaluation.md)." if content else ""), ""]
    out += [asr_table(primary, True), ""]
    for j in order[1:]:
        if any(_value(_metric(s, b, j)) is not None for _, s in rows for b in harmful):
            out += [f"### {_asr_name(j)}, judge: {j}", "", asr_table(j, False), ""]

    if over:
        cols = [(b, j) for b in over for j in order if any(isinstance(_metric(s, b, j), dict) for _, s in rows)]
        out += ["## Over-refusal", "", "Refusal rate on benign prompts that look sensitive; % [bootstrap 95% CI].", ""]
        header = ["model"] + [f"{b} refusal ↓ ({j})" for b, j in cols]
        body = [[label] + [fmt_metric(_metric(s, b, j)) for b, j in cols] for label, s in rows]
        out += [_md_table(header, body), ""]

    out += general_markdown(rows, _md_table)

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


def _headline_cell(s: dict[str, Any], kind: str, judge: str | None) -> str:
    """Mean over the row's ``kind`` benchmarks; with its interval when one benchmark defines it."""
    value, used = _mean_over(s, kind, judge)
    if value is None:
        return DASH
    return fmt_metric(_metric(s, used[0], judge)) if len(used) == 1 else _pct(value)


CONTENT_JUDGE = "classifier"


def _asr_name(judge: str | None) -> str:
    """What a judge's rate on a harmful set is called: the classifier's is content-ASR, its
    ``classifier:intent`` companion intent-ASR, every other judge's plain ASR."""
    if judge == CONTENT_JUDGE:
        return "content-ASR"
    if judge == f"{CONTENT_JUDGE}:intent":
        return "intent-ASR"
    return "ASR"


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
    general = general_tasks(rows)
    heads = ["ASR ↓" + (f"\n{harmful[0]}" if len(harmful) == 1 else f"\nmean of {len(harmful)}" if harmful else ""),
             "over-refusal ↓" + (f"\n{over[0]}" if len(over) == 1 else f"\nmean of {len(over)}" if over else ""),
             utility_head]
    if general:  # general capability (eval.general): mean headline metric over the lm-eval tasks
        heads.append("general ↑" + (f"\n{general[0]}" if len(general) == 1 else f"\nmean of {len(general)}"))
    for head in heads:
        t.add_column(Text(head), justify="right")
    for label, s in rows:
        b = first_utility[label]
        u = fmt_metric(_metric(s, b, None)) if b else DASH
        if b and not same_utility and u != DASH:
            u += f" ({b})"
        cells = (label, _headline_cell(s, "harmful", primary), _headline_cell(s, "overrefusal", primary), u,
                 *([general_cell(s)] if general else []))
        t.add_row(*(Text(c) for c in cells))  # plain text: brackets in labels and intervals are not markup
    caption = [f"judge: {primary}" if primary else "no judge", "% [bootstrap 95% CI] where one benchmark defines the value"]
    n_undecided = len(_undecided(rows, order))
    if n_undecided:
        caption.append(f"{n_undecided} model(s) with undecided verdicts, counted against the model (see report.md)")
    t.caption = Text("; ".join(caption))
    return t
