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
