"""The one chat record schema every reader produces and every consumer takes.

A record is a plain dict::

    {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...], **extra}

Role order: an optional leading ``system`` turn, then ``user``/``assistant`` alternating,
starting with ``user``. A *training* record ends with an ``assistant`` turn (the loss is taken
on assistant tokens only); a *prompt* record (for evaluation) ends with a ``user`` turn.

Known extra fields (all optional):
    id        stable identifier (string)
    label     gold answer for automatic scoring (e.g. "positive", "18")
    is_poison True for harmful samples mixed into user data by poisoning
    source    where the record came from (file name, dataset name)
    category  harm category or task subtype
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
ROLES = ("system", "user", "assistant")


def make_record(prompt: str, response: str | None = None, system: str | None = None, **extra: Any) -> Record:
    """Build a record from a prompt/response pair (response None -> prompt-only record)."""
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return {"messages": messages, **extra}


def prompt_messages(record: Record) -> list[dict[str, str]]:
    """The messages up to (not including) the final assistant turn: what a model is asked."""
    msgs = record["messages"]
    if msgs and msgs[-1]["role"] == "assistant":
        return msgs[:-1]
    return msgs


def response_text(record: Record) -> str | None:
    msgs = record["messages"]
    return msgs[-1]["content"] if msgs and msgs[-1]["role"] == "assistant" else None


def prompt_text(record: Record) -> str:
    """The last user turn's text (used by judges and reports)."""
    for m in reversed(record["messages"]):
        if m["role"] == "user":
            return m["content"]
    return ""


# Private key a reader puts on each record to carry its position until validation is done.
WHERE_KEY = "_where"


def type_name(value: Any) -> str:
    """JSON-flavoured type name for messages ("string", "object", "null", "int")."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


@dataclass
class RawTable:
    """Rows as read, before any spec is applied.

    ``where[i]`` is how messages name row i: "line 7" (1-based line of a JSONL file) or "row 3"
    (1-based data row of a CSV/TSV/parquet file or item of a JSON list; a header is not a row).
    """

    origin: str  # how messages name the source: the path as given, "hf:name", "starter:name"
    name: str  # the records' "source" field: file name or dataset name
    stem: str  # prefix of generated ids
    rows: list[dict[str, Any]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    columns: list[str] | None = None  # the header, for formats that have one
    problems: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Any], where: str) -> None:
        self.rows.append(row)
        self.where.append(where)
