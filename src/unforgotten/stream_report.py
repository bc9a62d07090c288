"""The stream report: ``streams.md`` (per method, the continual-learning matrix and summaries for
each ordering, then mean and worst ordering) and ``streams.png`` (ASR and general capability
after each stage, one line per method and ordering)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DASH = "—"


def _pct(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:.1f}"


def _pts(x: float | None) -> str:
    """A difference of two rates, in percentage points with its sign."""
    return DASH if x is None else f"{100 * x:+.1f}"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
            *("| " + " | ".join(row) + " |" for row in body)]


def ordering_section(name: str, s: dict[str, Any]) -> list[str]:
    tasks = s["tasks"]
    general = sorted({g for row in [s.get("general_start") or {}] + list(s.get("general") or []) for g in row})
    header = ["after stage", *[f"{t} ↑" for t in tasks], "ASR ↓", "ASR forgetting", "over-refusal ↓", *[f"{g} ↑" for g in general]]
    body = [["start (aligned)", *[_pct(v) for v in s["start"]], _pct(s["safety_start"]["asr"]), DASH,
             _pct(s["safety_start"]["over_refusal"]), *[_pct((s.get("general_start") or {}).get(g)) for g in general]]]
    for k, row in enumerate(s["matrix"]):
        trained = tasks[s["order"][k]]
        body.append([f"{k + 1} ({trained})", *[_pct(v) for v in row], _pct(s["safety"][k]["asr"]),
                     _pts(s["asr_forgetting"][k]), _pct(s["safety"][k]["over_refusal"]),
                     *[_pct(s["general"][k].get(g)) for g in general]])
    out = [f"#### {name}: {' → '.join(tasks[t] for t in s['order'])}", "", *_table(header, body), ""]
    if "average_accuracy" in s:
        forgetting = ", ".join(f"{t} {_pts(f)}" for t, f in s["forgetting"].items()) or DASH
        out += [f"Average accuracy {_pct(s['average_accuracy'])}, backward transfer {_pts(s['backward_transfer'])}, "
                f"forward transfer {_pts(s.get('forward_transfer'))}, forgetting per task: {forgetting}.", ""]
    return out


def markdown(results: dict[str, Any]) -> str:
    out = ["# Continual stream", "",
           f"Tasks: {', '.join(f'{n} ({src})' for n, src in zip(results['tasks'], results['sources']))}. "
           "Cells are percentages after each stage (rows) on each task and safety set; ASR forgetting is the "
           "change in ASR since the aligned model (percentage points, > 0 = alignment lost).", ""]
    summary_rows = []
    for method, m in results["methods"].items():
        mean, worst = m["across"].get("mean", {}), m["across"].get("worst", {})

        def w(key: str, fmt=_pct) -> str:
            return f"{fmt(worst[key]['value'])} ({worst[key]['ordering']})" if key in worst else DASH

        summary_rows.append([method, _pct(mean.get("average_accuracy")), w("average_accuracy"),
                             _pts(mean.get("backward_transfer")), w("backward_transfer", _pts),
                             _pts(mean.get("mean_forgetting")), _pct(mean.get("final_asr")), w("final_asr")])
    out += ["## Methods over orderings", "",
            *_table(["method", "avg acc ↑ (mean)", "avg acc (worst)", "BWT ↑ (mean)", "BWT (worst)",
                     "forgetting ↓ (mean)", "final ASR ↓ (mean)", "final ASR (worst)"], summary_rows), ""]
    for method, m in results["methods"].items():
        out += [f"## {method}", ""]
        for name, s in m["orderings"].items():
            out += ordering_section(name, s)
    return "\n".join(out).rstrip() + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """ASR (left) and mean general capability (right) after each stage (0 = the aligned model)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    ax_asr, ax_gen = fig.subplots(1, 2)
    start = results["start"]
    i = 0
    for method, m in results["methods"].items():
        for name, s in m["orderings"].items():
            color = f"C{i % 10}"
            i += 1
            xs = list(range(len(s["safety"]) + 1))
            asr = [start["asr"]] + [x["asr"] for x in s["safety"]]
            ax_asr.plot(xs, [None if a is None else 100 * a for a in asr], "o-", color=color, label=f"{method} {name}")
            gens = [s.get("general_start") or {}] + list(s.get("general") or [])
            means = [sum(g.values()) / len(g) if g and None not in g.values() else None for g in gens]
            if any(v is not None for v in means):
                ax_gen.plot(xs, [None if v is None else 100 * v for v in means], "o-", color=color, label=f"{method} {name}")
    ax_asr.set(xlabel="stage (0 = aligned)", ylabel="ASR (%) — lower is better", title="Safety along the stream")
    ax_gen.set(xlabel="stage (0 = aligned)", ylabel="mean general capability (%) — higher is better",
               title="General capability along the stream")
    for ax in (ax_asr, ax_gen):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.savefig(path, dpi=140, bbox_inches="tight")


def write_stream_report(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    written = {"markdown": out / "streams.md"}
    written["markdown"].write_text(markdown(results))
    try:
        plot(results, out / "streams.png")
        written["plot"] = out / "streams.png"
    except ImportError:
        print("streams: no plot (pip install 'unforgotten[plot]')", file=sys.stderr)
    return written
