"""Read a data source into records: files, Hugging Face datasets by name, shipped starter files.

Reading happens in three steps, each of which collects problems instead of stopping at the
first one, so a user fixing a file sees everything wrong with it at once:

1. ``read_source``: bytes -> raw rows (dicts), each with its position ("line 7", "row 3");
2. ``specs.apply_spec``: raw rows -> chat records (see ``schema.py``);
3. ``validate.validate_records``: the records against the schema.

``load_records`` raises one ``DataError`` listing every problem; ``try_load_records`` returns
them instead (for ``unforgotten data check``). No bad row is ever silently skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import DataError, UserInputError
from .schema import WHERE_KEY, RawTable, Record, type_name
from .specs import apply_spec
from .validate import validate_records

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
               ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
# An object-shaped JSON file holds its rows under the split name or one of these keys.
_JSON_LIST_KEYS = ("data", "rows", "examples")
MAX_LISTED = 20  # problems shown in an exception message; the rest are counted


def load_records(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    spec: str | None = None,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    require_response: bool | None = None,
) -> list[Record]:
    """Load a data source as chat records, or raise ``DataError`` listing every problem.

    ``source`` is a file path (format from the extension unless ``format`` is given),
    ``hf:<name>[:<config>]`` (a Hugging Face dataset, ``split`` chooses the split) or
    ``starter:<name>`` (a file shipped with the package). ``spec`` names how raw rows become
    records (see ``specs.SPECS``); None detects it from the columns. ``require_response``:
    True = training records (end with an assistant turn), False = prompts, None = either.
    ``limit`` takes a seeded random subsample of that size (the order is not kept).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise UserInputError(f"limit must be a non-negative integer or None, got {limit!r}")
    records, problems = try_load_records(
        source, format=format, spec=spec, split=split, require_response=require_response
    )
    if problems:
        raise DataError(_problems_message(problems), problems)
    if limit is not None:
        records = list(records)
        random.Random(seed).shuffle(records)
        records = records[:limit]
    return records


def try_load_records(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    spec: str | None = None,
    split: str = "train",
    require_response: bool | None = None,
) -> tuple[list[Record], list[str]]:
    """Like ``load_records`` without ``limit``, but returns ``(records, problems)``, never raising
    for bad data. Records are only meaningful when ``problems`` is empty."""
    table = read_source(source, format=format, split=split)
    if not table.rows:
        # unreadable file, unknown format, or nothing parsed: nothing more to check
        return [], table.problems or [f"{table.origin}: dataset is empty"]
    # Rows that did parse are still checked, so one pass lists every problem in the file.
    records, problems = apply_spec(table, spec)
    problems = table.problems + problems
    if records or not problems:  # no records because of a header problem: "empty" would mislead
        problems += validate_records(records, origin=table.origin, require_response=require_response)
    for r in records:
        r.pop(WHERE_KEY, None)
    if problems:
        problems.sort(key=_position)
        return [], problems
    return records, problems


def _position(problem: str) -> tuple[int, str]:
    """Sort problems by the line/row they name (file-level problems first)."""
    import re

    m = re.search(r"\b(?:line|row) (\d+)", problem)
    return (int(m.group(1)) if m else 0, problem)


def read_source(source: str | os.PathLike[str], *, format: str | None = None, split: str = "train") -> RawTable:
    """Read raw rows from a file, ``hf:`` dataset or ``starter:`` file; problems are collected."""
    text = os.fspath(source)
    if text.startswith("hf:"):
        return _read_hf(text[3:], split)
    if text.startswith("starter:"):
        name = text[len("starter:"):]
        res = _starter_dir().joinpath(f"{name}.jsonl")
        table = RawTable(origin=text, name=text, stem=name)
        if not res.is_file():
            known = sorted(p.name[: -len(".jsonl")] for p in _starter_dir().iterdir()
                           if p.name.endswith(".jsonl")) if _starter_dir().is_dir() else []
            table.problems.append(f"{text}: no starter dataset {name!r} (available: {', '.join(known) or 'none'})")
            return table
        _parse(res.read_bytes(), "jsonl", table, split)
        return table
    return _read_file(Path(text), format, split)


def _starter_dir() -> Traversable:
    """Where ``starter:<name>`` files live; a function so tests can point it elsewhere."""
    return resources.files("unforgotten").joinpath("starter")


def _read_file(path: Path, format: str | None, split: str) -> RawTable:
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    table = RawTable(origin=str(path), name=path.name, stem=plain.stem)
    fmt = format.lower().lstrip(".") if format else _EXTENSIONS.get(plain.suffix.lower())
    if fmt not in FORMATS:
        what = f"format {format!r}" if format else f"file extension {plain.suffix or '(none)'!r}"
        table.problems.append(
            f"{path}: unknown {what}; known formats: {', '.join(FORMATS)} (pass format= to choose one)"
        )
        return table
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except FileNotFoundError:
        table.problems.append(f"{path}: file not found")
        return table
    except (OSError, EOFError) as e:  # a directory, no permission, a broken .gz
        table.problems.append(f"{path}: cannot read file ({getattr(e, 'strerror', None) or e})")
        return table
    _parse(data, fmt, table, split)
    return table


def _parse(data: bytes, fmt: str, table: RawTable, split: str) -> None:
    if fmt == "parquet":
        _parse_parquet(data, table)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        table.problems.append(f"{table.origin}: not UTF-8 text (byte {e.start}: {e.reason})")
        return
    if fmt == "jsonl":
        _parse_jsonl(text, table)
    elif fmt == "json":
        _parse_json(text, table, split)
    else:
        _parse_delimited(text, table, "\t" if fmt == "tsv" else ",")


def _parse_jsonl(text: str, table: RawTable) -> None:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) hold no row
        where = f"line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            table.problems.append(f"{table.origin} {where}: malformed JSON ({e.msg}: line 1 column {e.colno})")
            continue
        except RecursionError:
            table.problems.append(f"{table.origin} {where}: JSON nested too deeply to be a data row")
            continue
        if not isinstance(row, dict):
            table.problems.append(f"{table.origin} {where}: expected a JSON object, got {type_name(row)}")
            continue
        table.add(row, where)


def _parse_json(text: str, table: RawTable, split: str) -> None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        table.problems.append(f"{table.origin}: malformed JSON ({e.msg}: line {e.lineno} column {e.colno})")
        return
    except RecursionError:
        table.problems.append(f"{table.origin}: JSON nested too deeply to be a data file")
        return
    if isinstance(doc, dict):
        key = next((k for k in (split, *_JSON_LIST_KEYS) if isinstance(doc.get(k), list)), None)
        if key is None:
            table.problems.append(
                f"{table.origin}: expected a JSON list of objects, or an object with a list under "
                f"{', '.join(repr(k) for k in (split, *_JSON_LIST_KEYS))}; "
                f"found an object with keys {', '.join(map(repr, list(doc)[:10])) or '(none)'}"
            )
            return
        doc = doc[key]
    if not isinstance(doc, list):
        table.problems.append(f"{table.origin}: expected a JSON list of objects, got {type_name(doc)}")
        return
    for i, row in enumerate(doc, start=1):
        if isinstance(row, dict):
            table.add(row, f"row {i}")
        else:
            table.problems.append(f"{table.origin} row {i}: expected a JSON object, got {type_name(row)}")


def _parse_delimited(text: str, table: RawTable, delimiter: str) -> None:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        table.columns = list(reader.fieldnames or [])
        for i, row in enumerate(reader, start=1):
            if None in row:  # DictReader puts surplus fields under the key None
                n = len(table.columns) + len(row[None])
                table.problems.append(
                    f"{table.origin} row {i}: {n} fields but the header has {len(table.columns)} columns"
                )
                continue
            table.add(row, f"row {i}")  # missing trailing fields read as None: a spec reports them
    except csv.Error as e:
        table.problems.append(f"{table.origin} row {reader.line_num}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({e})")


def _parse_parquet(data: bytes, table: RawTable) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        table.problems.append(f"{table.origin}: reading parquet needs pyarrow (pip install 'unforgotten[datasets]')")
        return
    try:
        arrow = pq.read_table(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        table.problems.append(f"{table.origin}: cannot read parquet ({e})")
        return
    table.columns = list(arrow.column_names)
    for i, row in enumerate(arrow.to_pylist(), start=1):
        table.add(row, f"row {i}")


def _read_hf(spec: str, split: str) -> RawTable:
    """``hf:<name>[:<config>]`` -> the rows of that split, via ``datasets.load_dataset``."""
    name, _, config = spec.partition(":")
    origin = f"hf:{spec}" + (f" [{split}]" if split else "")
    table = RawTable(origin=origin, name=f"hf:{name}", stem=f"{name.rsplit('/', 1)[-1]}-{split}")
    if not name:
        table.problems.append("hf:: missing dataset name (use hf:<name> or hf:<name>:<config>)")
        return table
    try:
        import datasets  # heavy; only needed for this kind of source
    except ImportError:
        table.problems.append(f"{origin}: loading Hugging Face datasets needs `pip install 'unforgotten[datasets]'`")
        return table
    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # not found, gated, offline, bad config/split: report, don't crash
        table.problems.append(f"{origin}: cannot load dataset ({type(e).__name__}: {e})")
        return table
    table.columns = list(getattr(ds, "column_names", None) or [])
    for i, row in enumerate(ds, start=1):
        table.add(dict(row), f"row {i}")
    return table


def _problems_message(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    shown = problems[:MAX_LISTED]
    more = len(problems) - len(shown)
    head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the data:"
    return "\n  ".join([head, *shown]) + (f"\n  ... and {more} more" if more else "")


def check_file(
    path: str | os.PathLike[str],
    format: str | None = None,
    spec: str | None = None,
    require_response: bool | None = None,
) -> list[str]:
    """Every problem with a data source (file, ``hf:``, ``starter:``); [] if it loads cleanly.

    Backs ``unforgotten data check FILE`` (exit 0 when clean, 2 with the problems listed); for a
    summary of a clean file use ``try_load_records`` + ``summarize``.
    """
    return try_load_records(path, format=format, spec=spec, require_response=require_response)[1]
