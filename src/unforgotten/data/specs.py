"""Declarative specs: how the rows of a known data layout become chat records.

A spec names the fields it reads (with aliases, matched case-insensitively) and a function from
those fields to a record. Declaring the fields lets the loader report a missing column by name,
and lets ``detect_spec`` pick a spec from a file's columns, so common benchmark files load
without configuration. Add a layout with ``register_spec(Spec(...))`` (the ``SPECS`` registry).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..registry import Registry
from .schema import WHERE_KEY, RawTable, Record, make_record, type_name

# Row fields copied onto a record when a spec does not set them itself (see schema.py).
PASSTHROUGH = ("id", "label", "category", "is_poison", "source")

SST2_PROMPT = "Classify the sentiment of this review as positive or negative.\nReview: {sentence}"


class RowError(ValueError):
    """A row's field has a bad value; the loader adds the file and line/row."""

    def __init__(self, field: str, message: str):
        super().__init__(f'field "{field}" {message}')


@dataclass(frozen=True)
class Field:
    name: str  # canonical name, used in messages and as the key handed to ``convert``
    aliases: tuple[str, ...] = ()
    required: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Spec:
    name: str
    fields: tuple[Field, ...]
    # (values by canonical field name, the whole raw row) -> record
    convert: Callable[[dict[str, Any], dict[str, Any]], Record]
    doc: str
    # Extra condition for auto-detection, on the first row, beyond "all required fields present".
    detect: Callable[[dict[str, Any]], bool] | None = None
    # Detection tries specs from low to high priority: the first whose required fields are all
    # present wins, so a layout whose fields are a superset of another's needs the lower number.
    priority: int = 50

    @property
    def needs(self) -> str:
        return " + ".join(_field_names(f) for f in self.fields if f.required)


def _text(v: dict[str, Any], name: str, *, strip: bool = False) -> str:
    value = v[name]
    if not isinstance(value, str):
        raise RowError(name, f"must be a string, got {type_name(value)}")
    return value.strip() if strip else value


def _opt_text(v: dict[str, Any], name: str) -> str:
    value = v.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(name, f"must be a string, got {type_name(value)}")
    return value.strip()


# --- chat / generic -------------------------------------------------------------------------

def _chat(v: dict[str, Any], row: dict[str, Any]) -> Record:
    return dict(row)  # already in the schema; validation checks it


def _prompt_response(v: dict[str, Any], row: dict[str, Any]) -> Record:
    return make_record(_text(v, "prompt"), _text(v, "response"), system=_opt_text(v, "system") or None)


def _prompt_only(v: dict[str, Any], row: dict[str, Any]) -> Record:
    return make_record(_text(v, "prompt"), system=_opt_text(v, "system") or None)


# --- alpaca, including Lisa-style prepared files ----------------------------------------------

# Lisa-style files put the whole Alpaca prompt template in "instruction"; we want the parts.
_ALPACA_TEMPLATE = re.compile(
    r"### Instruction:[ \t]*\n(?P<instruction>.*?)"
    r"(?:\n[ \t]*### Input:[ \t]*\n(?P<input>.*?))?"
    r"\n[ \t]*### Response:[ \t]*$",
    re.S,
)
_FLAGS = {"finetune": False, "unsafe": True}


def split_alpaca_template(text: str) -> tuple[str, str] | None:
    """``(instruction, input)`` from a filled-in Alpaca prompt template, or None if it isn't one."""
    m = _ALPACA_TEMPLATE.search(text.rstrip())
    if m is None or "### Instruction:" not in text:
        return None
    return m["instruction"].strip(), (m["input"] or "").strip()


def _alpaca(v: dict[str, Any], row: dict[str, Any]) -> Record:
    instruction, inp = _text(v, "instruction").strip(), _opt_text(v, "input")
    parts = split_alpaca_template(instruction)
    if parts is not None:
        instruction, template_input = parts
        inp = "\n\n".join(p for p in (template_input, inp) if p)
    if not instruction:
        raise RowError("instruction", "is empty")
    output = _text(v, "output")
    record = make_record(f"{instruction}\n\n{inp}" if inp else instruction, output)
    flag = v.get("flag")
    if flag is not None:
        if flag not in _FLAGS:
            raise RowError("flag", f'must be "finetune" or "unsafe", got {flag!r}')
        record["is_poison"] = _FLAGS[flag]
        if flag == "finetune":
            record["label"] = output.strip()
    return record


# --- benchmarks -------------------------------------------------------------------------------

def _sst2(v: dict[str, Any], row: dict[str, Any]) -> Record:
    raw = v["label"]
    label = {"0": "negative", "1": "positive"}.get(str(raw).strip()) if not isinstance(raw, bool) else None
    if label is None:
        raise RowError("label", f"must be 0 or 1, got {raw!r}")
    prompt = SST2_PROMPT.format(sentence=_text(v, "sentence", strip=True))
    return make_record(prompt, label, label=label)


_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.S)


def _gsm8k(v: dict[str, Any], row: dict[str, Any]) -> Record:
    answer = _text(v, "answer")
    m = _GSM8K_ANSWER.search(answer)
    if m is None:
        raise RowError("answer", 'has no final answer after "####"')
    return make_record(_text(v, "question"), answer, label=m[1].replace(",", ""))


def _advbench(v: dict[str, Any], row: dict[str, Any]) -> Record:
    record = make_record(_text(v, "goal"), category="advbench")
    if v.get("target"):
        record["target"] = _text(v, "target")
    return record


def _directharm4(v: dict[str, Any], row: dict[str, Any]) -> Record:
    return make_record(_text(v, "goal"), category=_text(v, "category", strip=True))


def _xstest(v: dict[str, Any], row: dict[str, Any]) -> Record:
    label = _text(v, "label", strip=True)
    if label not in ("safe", "unsafe"):
        raise RowError("label", f'must be "safe" or "unsafe", got {label!r}')
    if not isinstance(v["id"], (str, int)) or isinstance(v["id"], bool):
        raise RowError("id", f"must be a string or integer, got {type_name(v['id'])}")
    return make_record(_text(v, "prompt"), id=str(v["id"]).strip(), label=label, type=_text(v, "type", strip=True))


# The instruction an instruct model gets for a HumanEval problem (EvalPlus's instruct prompt).
HUMANEVAL_PROMPT = (
    "Please provide a self-contained Python script that solves the following problem in a "
    "markdown code block:\n```python\n{prompt}\n```"
)


def _humaneval(v: dict[str, Any], row: dict[str, Any]) -> Record:
    code_prompt = _text(v, "prompt")
    return make_record(
        HUMANEVAL_PROMPT.format(prompt=code_prompt.strip()),
        id=_text(v, "task_id", strip=True),
        code_prompt=code_prompt,
        test=_text(v, "test"),
        entry_point=_text(v, "entry_point", strip=True),
    )


_PROMPT = Field("prompt", ("question", "query", "instruction", "input"))
_SYSTEM = Field("system", ("system_prompt",), required=False)

SPECS: Registry[Spec] = Registry("data spec")


def register_spec(spec: Spec) -> Spec:
    """Add a layout: ``load_records(..., spec=NAME)`` uses it, and detection tries it in
    ``priority`` order (lower = more specific = tried first)."""
    SPECS.register(spec.name, spec)
    return spec


for _spec in (
    Spec("chat", (Field("messages"),), _chat, "rows already holding a chat \"messages\" list", priority=0),
    Spec("humaneval", (Field("task_id"), Field("prompt"), Field("test"), Field("entry_point"),
                       Field("canonical_solution", required=False)), _humaneval,
         "HumanEval task_id/prompt/test/entry_point, prompt-only; tests kept for pass@1", priority=10),
    Spec("xstest", (Field("id"), Field("prompt"), Field("type"), Field("label")), _xstest,
         "XSTest id/prompt/type/label (safe|unsafe), prompt-only", priority=20),
    Spec("directharm4", (Field("goal"), Field("category")), _directharm4,
         "DirectHarm4 Goal + Category, prompt-only", priority=30),
    Spec("sst2", (Field("sentence"), Field("label")), _sst2, "SST-2 sentence + 0/1 label", priority=40),
    Spec("gsm8k", (Field("question"), Field("answer")), _gsm8k, 'GSM8K question + answer ending "#### N"',
         detect=lambda row: isinstance(row.get("answer"), str) and "####" in row["answer"], priority=50),
    Spec("alpaca", (Field("instruction"), Field("input", required=False), Field("output"),
                    Field("flag", required=False)),
         _alpaca, "Alpaca instruction/input/output, incl. Lisa-style templated files with a flag", priority=60),
    Spec("prompt_response",
         (_PROMPT, Field("response", ("answer", "output", "completion")), _SYSTEM),
         _prompt_response, "a prompt and a response column (common aliases accepted)", priority=70),
    Spec("advbench", (Field("goal"), Field("target", required=False)), _advbench,
         "AdvBench harmful behaviors (goal[, target]), prompt-only", priority=80),
    Spec("prompt_only", (Field("prompt", ("goal", "question", "instruction")), _SYSTEM), _prompt_only,
         "one prompt column (prompt/goal/question/instruction), prompt-only", priority=90),
):
    register_spec(_spec)


def specs_in_detection_order() -> list[Spec]:
    return sorted((SPECS.get(n) for n in SPECS.names()), key=lambda s: (s.priority, s.name))


def _lookup(row: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The row's key for the first of ``names`` present: exact match first, then any case."""
    for n in names:
        if n in row:
            return n
    lowered = {str(k).lower(): k for k in row}
    for n in names:
        if n.lower() in lowered:
            return lowered[n.lower()]
    return None


def _has_fields(spec: Spec, keys: dict[str, Any]) -> bool:
    return all(_lookup(keys, f.names) is not None for f in spec.fields if f.required)


def detect_spec(columns: list[str], first_row: dict[str, Any]) -> Spec | None:
    """The most specific spec whose required fields are all among ``columns``, or None."""
    keys = dict.fromkeys(columns)
    for spec in specs_in_detection_order():
        if _has_fields(spec, keys) and (spec.detect is None or spec.detect(_canonical(spec, first_row))):
            return spec
    return None


def _canonical(spec: Spec, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for f in spec.fields:
        key = _lookup(row, f.names)
        if key is not None:
            out[f.name] = row[key]  # may be None: a short CSV row, or JSON null
    return out


def describe_specs() -> str:
    return "; ".join(f"{s.name} needs {s.needs}" for s in specs_in_detection_order())


def apply_spec(table: RawTable, spec_name: str | None) -> tuple[list[Record], list[str]]:
    """Turn a table's raw rows into records with ``source``, ``id`` and the private position key.

    Problems name the source, the row's position and the field; every row is tried, so all
    problems are reported together.
    """
    origin = table.origin
    columns = table.columns if table.columns is not None else list(table.rows[0])
    if spec_name is None:
        spec = detect_spec(columns, table.rows[0])
        if spec is None:
            return [], [f"{origin}: cannot tell how to read rows with columns {', '.join(map(repr, columns))}; "
                        f"pass a spec: {describe_specs()}"]
    elif spec_name in SPECS:
        spec = SPECS.get(spec_name)
    else:
        known = ", ".join(s.name for s in specs_in_detection_order())
        return [], [f"{origin}: unknown spec {spec_name!r}; known specs: {known}"]

    if table.columns is not None:  # a header: check it once rather than on every row
        missing = [f for f in spec.fields if f.required and _lookup(dict.fromkeys(columns), f.names) is None]
        if missing:
            return [], [f"{origin}: missing column {_field_names(f)} for spec {spec.name!r} "
                        f"(found columns: {', '.join(map(repr, columns))})" for f in missing]
    noun = "column" if table.columns is not None else "field"

    records: list[Record] = []
    problems: list[str] = []
    for index, (row, where) in enumerate(zip(table.rows, table.where)):
        values = _canonical(spec, row)
        # A short CSV row reads as None ("missing"); a JSON null is a wrong type, reported by convert.
        bad = [f"missing {noun} {_field_names(f)}" for f in spec.fields if f.required
               and (f.name not in values or (values[f.name] is None and table.columns is not None))]
        bad += [f'field "{f.name}" is empty' for f in spec.fields
                if f.required and isinstance(values.get(f.name), str) and not values[f.name].strip()]
        if not bad:
            try:
                record = spec.convert(values, row)
            except RowError as e:
                bad.append(str(e))
        if bad:
            problems.extend(f"{origin} {where}: {b}" for b in bad)
            continue
        used = {key for f in spec.fields if (key := _lookup(row, f.names)) is not None}
        for key in PASSTHROUGH:
            if key in row and key not in record and key not in used and row[key] is not None:
                record[key] = row[key]
        if isinstance(record.get("id"), int) and not isinstance(record["id"], bool):
            record["id"] = str(record["id"])
        record.setdefault("id", f"{table.stem}-{index}")
        record.setdefault("source", table.name)
        record[WHERE_KEY] = where
        records.append(record)
    return records, problems


def _field_names(f: Field) -> str:
    alts = f" (or {', '.join(repr(a) for a in f.aliases)})" if f.aliases else ""
    return f'"{f.name}"{alts}'
