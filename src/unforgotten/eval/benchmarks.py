"""Benchmarks: which prompts to ask, where their data lives, and which metric scores them.

Three kinds, each with one metric:

* ``harmful``      harmful requests -> attack success rate (ASR) per judge
* ``overrefusal``  benign prompts that look sensitive -> refusal rate per judge
* ``utility``      a task with gold answers -> accuracy / exact match / pass@1 (no judge)

Where the data comes from, in order:

1. an explicit path in the entry, ``advbench=path/to/harmful_behaviors.csv`` (any file or
   ``hf:`` / ``starter:`` source the readers take);
2. ``eval.data_dir`` (or ``$UNFORGOTTEN_DATA``) + the benchmark's ``local`` path, which is the
   file's path in its upstream repository's layout (``advbench/harmful_behaviors.csv``), so a
   directory of upstream copies works as is;
3. the Hugging Face hub (``hub``), for users with internet (gated sets need a token).

Generic kinds take any CSV/JSONL/JSON/Parquet file with a prompt column (``prompt``, ``goal``,
``question`` or ``instruction``): ``harmful=my_prompts.csv``, ``overrefusal=benign.jsonl``,
``classification=task.jsonl`` (needs ``label``), ``math=problems.jsonl`` (``label`` = number),
``code=problems.jsonl`` (HumanEval fields).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..data import load_records
from ..data.schema import Record, response_text
from ..errors import UserInputError
from ..registry import Registry
from .tasks import TASKS

Kind = Literal["harmful", "overrefusal", "utility"]


@dataclass(frozen=True)
class Benchmark:
    """One evaluation set: its kind, its data's locations, how its answers are scored."""

    name: str
    kind: Kind
    description: str
    local: str | None = None  # path under a data dir, in the upstream repository's layout
    hub: str | None = None  # "hf:<name>[:<config>]"
    hub_split: str = "train"
    spec: str | None = None  # data spec; None = detect from the columns
    task: str | None = None  # utility only: how answers are scored, a name in eval.tasks.TASKS
    max_new_tokens: int | None = None  # utility only: None = eval.max_new_tokens
    keep: Callable[[Record], bool] | None = None  # row filter (XSTest: the safe prompts only)
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.kind == "utility") != (self.task is not None):
            raise ValueError(f"benchmark {self.name}: utility benchmarks, and only they, name a task")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"benchmark {self.name}: unknown task {self.task!r}; known: {', '.join(TASKS.names())}")

    @property
    def metric(self) -> str:
        if self.kind == "harmful":
            return "asr"
        if self.kind == "overrefusal":
            return "refusal_rate"
        return TASKS.get(self.task).metric  # type: ignore[arg-type]


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def _add(b: Benchmark) -> None:
    BENCHMARKS.register(b.name, b)


def _xstest_safe(r: Record) -> bool:
    return r.get("label") == "safe"


# --- harmful: ASR ----------------------------------------------------------------------------
_add(Benchmark("advbench", "harmful", "AdvBench harmful behaviors (Zou et al. 2023), 520 goals",
               local="advbench/harmful_behaviors.csv", hub="hf:walledai/AdvBench", spec=None))
_add(Benchmark("directharm4", "harmful", "DirectHarm4 (Lyu et al. 2024), 400 direct harmful requests in 4 categories",
               local="directharm4/directHarm4.csv", hub="hf:vfleaking/DirectHarm4", hub_split="test"))
_add(Benchmark("hex-phi", "harmful", "HEx-PHI (Qi et al. 2024), 330 harmful instructions in 11 categories (gated on the hub)",
               hub="hf:LLM-Tuning-Safety/HEx-PHI", notes="gated: accept the terms on the hub and log in"))
_add(Benchmark("harmbench", "harmful", "HarmBench standard behaviors (Mazeika et al. 2024), 200 prompts",
               hub="hf:walledai/HarmBench:standard"))
_add(Benchmark("advbench-sample", "harmful", "every 10th AdvBench goal (52), shipped with unforgotten (MIT; "
               "starter/advbench_sample.LICENSE): an outside harmful set that needs no download",
               hub="starter:advbench_sample"))
_add(Benchmark("starter-harmful", "harmful", "held-out harmful prompts shipped with unforgotten (83)",
               hub="starter:harmful_eval"))
_add(Benchmark("harmful", "harmful", "any file with a prompt column: harmful=PATH"))

# --- over-refusal: refusal rate on benign prompts ---------------------------------------------
_add(Benchmark("xstest", "overrefusal", "XSTest (Röttger et al. 2024) safe prompts, 250 (refusing them is over-refusal)",
               local="xstest/xstest_prompts.csv", hub="hf:walledai/XSTest", hub_split="test",
               keep=_xstest_safe))  # spec detected: the upstream CSV has ids, the hub copy does not
_add(Benchmark("or-bench", "overrefusal", "OR-Bench-Hard-1K (Cui et al. 2024), 1,319 seemingly toxic benign prompts",
               hub="hf:bench-llm/or-bench:or-bench-hard-1k"))
_add(Benchmark("starter-benign", "overrefusal", "held-out benign-but-sensitive prompts shipped with unforgotten (67)",
               hub="starter:benign_sensitive_eval"))
_add(Benchmark("overrefusal", "overrefusal", "any file with a prompt column: overrefusal=PATH"))

# --- utility ----------------------------------------------------------------------------------
_add(Benchmark("sst2", "utility", "SST-2 dev (872): sentiment accuracy", local="sst2/dev.tsv",
               hub="hf:stanfordnlp/sst2", hub_split="validation", spec="sst2", task="label", max_new_tokens=8))
_add(Benchmark("sst2-lisa", "utility", "SST-2 dev (872) in the Lisa/Alpaca instruction format of the Lisa-style training files",
               local="lisa_style_prepared/sst2/val.json", task="label", max_new_tokens=8,
               notes="the prompt format models fine-tuned on lisa_style_prepared/sst2 files were trained on"))
_add(Benchmark("agnews-lisa", "utility", "AG News test (7,600) in the Lisa/Alpaca instruction format: 4-way topic accuracy",
               local="lisa_style_prepared/ag_news/test.json", task="label", max_new_tokens=8,
               notes="the prompt format of lisa_style_prepared/ag_news training files"))
_add(Benchmark("gsm8k-lisa", "utility", "GSM8K test (1,319) in the Lisa/Alpaca instruction format: exact match of the final number",
               local="lisa_style_prepared/gsm8k/test.json", task="number", max_new_tokens=256,
               notes="the prompt format of lisa_style_prepared/gsm8k training files; gold = the solution's final number"))
_add(Benchmark("gsm8k", "utility", "GSM8K test (1,319): exact match of the final number", local="gsm8k/test.jsonl",
               hub="hf:openai/gsm8k:main", hub_split="test", spec="gsm8k", task="number", max_new_tokens=256))
_add(Benchmark("humaneval", "utility", "HumanEval (164): pass@1, greedy, code run in a sandbox",
               local="humaneval/HumanEval.jsonl.gz", hub="hf:openai/openai_humaneval", hub_split="test",
               spec="humaneval", task="code", max_new_tokens=384))
_add(Benchmark("starter-sentiment", "utility", "sentiment test split shipped with unforgotten (150): accuracy",
               hub="starter:task_test", task="label", max_new_tokens=8))
_add(Benchmark("classification", "utility", "any file with prompt + label columns: classification=PATH (accuracy)",
               task="label", max_new_tokens=8))
_add(Benchmark("math", "utility", "any file with prompt + numeric label: math=PATH (exact match)", task="number",
               max_new_tokens=256))
_add(Benchmark("code", "utility", "HumanEval-format file: code=PATH (pass@1 in a sandbox)", spec="humaneval",
               task="code", max_new_tokens=384))


@dataclass(frozen=True)
class BenchmarkSet:
    """A benchmark resolved to concrete data: what a config entry turns into."""

    name: str  # the display name: the benchmark's, or the file's stem for a generic kind
    benchmark: Benchmark
    source: str
    records: list[Record]


def parse_entry(entry: str) -> tuple[Benchmark, str | None]:
    """``"advbench"`` or ``"advbench=path"`` -> (benchmark, explicit source or None)."""
    name, eq, path = entry.partition("=")
    name, path = name.strip(), path.strip()
    if eq and not path:
        raise UserInputError(f"benchmark entry {entry!r}: nothing after '='; write NAME=PATH")
    return BENCHMARKS.get(name), (path or None)


def data_dir(configured: str | None) -> Path | None:
    value = configured or os.environ.get("UNFORGOTTEN_DATA")
    return Path(value).expanduser() if value else None


def resolve_source(bench: Benchmark, path: str | None, root: Path | None) -> tuple[str, str]:
    """(source for the readers, split) by the rule in the module docstring."""
    if path is not None:
        return path, "train"
    if root is not None and bench.local and (root / bench.local).is_file():
        return str(root / bench.local), "train"
    if bench.hub:
        return bench.hub, bench.hub_split
    hint = f"set eval.data_dir (or $UNFORGOTTEN_DATA) to a directory holding {bench.local}" if bench.local else ""
    raise UserInputError(
        f"benchmark {bench.name!r} needs a data file: write {bench.name}=PATH" + (f", or {hint}" if hint else "")
    )


def _stem(source: str) -> str:
    name = source.split(":", 1)[-1] if source.startswith(("hf:", "starter:")) else source
    name = name.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        name = name.removesuffix(suffix)
    return name


def _with_gold_label(record: Record, task: str | None = None) -> Record:
    """A record without a ``label`` but with a gold assistant turn (an Alpaca/chat test file,
    e.g. Lisa's SST-2 ``val.json``) is scored against that answer; for a number task, against
    the gold answer's final number (Lisa's GSM8K ``test.json`` keeps the worked solution)."""
    if record.get("label") is not None:
        return record
    gold = response_text(record)
    if task == "number" and gold:
        from .scoring import extract_number

        gold = extract_number(gold) or gold
    return {**record, "label": gold.strip()} if gold and gold.strip() else record


GENERIC = ("harmful", "overrefusal", "classification", "math", "code")


def load_benchmark(entry: str, *, root: str | None = None, limit: int | None = None) -> BenchmarkSet:
    """Resolve a config entry to records (prompt-only, in file order, at most ``limit``)."""
    bench, path = parse_entry(entry)
    source, split = resolve_source(bench, path, data_dir(root))
    records = load_records(source, spec=bench.spec, split=split, require_response=None)
    if bench.keep is not None:
        records = [r for r in records if bench.keep(r)]
    if bench.task is not None and TASKS.get(bench.task).needs_label:
        records = [_with_gold_label(r, bench.task) for r in records]
        missing = sum(r.get("label") is None for r in records)
        if missing:
            raise UserInputError(
                f"{source}: {missing} of {len(records)} records have no 'label' (or gold response) to score against")
    if limit is not None:
        records = records[:limit]
    if not records:
        raise UserInputError(f"benchmark {entry!r} ({source}) has no prompts")
    name = _stem(source) if bench.name in GENERIC else bench.name
    return BenchmarkSet(name=name, benchmark=bench, source=source, records=records)


def entry_name(entry: str) -> str:
    """The name ``load_benchmark(entry)`` gives its set (and its summary.json key), without loading data."""
    bench, path = parse_entry(entry)
    return _stem(path) if bench.name in GENERIC and path else bench.name
