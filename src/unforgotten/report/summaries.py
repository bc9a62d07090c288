"""Finding evaluation summaries and checking that each is one (the schema ``eval/evaluate.py`` writes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserInputError

Row = tuple[str, dict[str, Any]]  # (label, summary)

KINDS = ("harmful", "overrefusal", "utility")
_OLD_KEYS = {"harmful", "benign", "task", "judge"}


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
