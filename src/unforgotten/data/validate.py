"""Check records against the chat schema and say exactly what is wrong, and where.

Every problem is one string naming the source, the record's position ("line 7" in a JSONL file,
"row 3" in a CSV) and the field, e.g.
``data.jsonl line 7: field "messages[1].content" must be a string, got int``, so a user can fix
a file without reading our code. Checks collect all problems rather than stopping at the first.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .schema import ROLES, WHERE_KEY, Record, type_name

def validate_records(
    records: list[Record], *, origin: str = "<records>", require_response: bool | None = None
) -> list[str]:
    """All schema problems of ``records`` (empty list = valid).

    ``require_response``: True = training records (must end with an assistant turn), False =
    prompt records (must end with a user turn), None = either. A record's position comes from
    its ``_where`` key when a reader set one, else "record N" (1-based).
    """
    if not records:
        return [f"{origin}: dataset is empty"]
    problems: list[str] = []
    first_seen: dict[str, str] = {}
    for i, rec in enumerate(records):
        where = rec.get(WHERE_KEY) if isinstance(rec, dict) else None
        where = where or f"record {i + 1}"
        problems.extend(f"{origin} {where}: {p}" for p in _record_problems(rec, require_response))
        rid = rec.get("id") if isinstance(rec, dict) else None
        if isinstance(rid, str):
            if rid in first_seen:
                problems.append(f'{origin} {where}: field "id" duplicates id {rid!r} (first at {first_seen[rid]})')
            else:
                first_seen[rid] = where
    return problems


_SURROGATE = re.compile("[\ud800-\udfff]")


def _record_problems(rec: Any, require_response: bool | None) -> list[str]:
    if not isinstance(rec, dict):
        return [f"expected a record object, got {type_name(rec)}"]
    out = []
    if "id" in rec and (not isinstance(rec["id"], str) or not rec["id"]):
        out.append(f'field "id" must be a non-empty string, got {type_name(rec["id"])}')
    if "is_poison" in rec and not isinstance(rec["is_poison"], bool):
        out.append(f'field "is_poison" must be true or false, got {type_name(rec["is_poison"])}')
    if "messages" not in rec:
        return out + ['field "messages" is missing']
    msgs = rec["messages"]
    if not isinstance(msgs, list):
        return out + [f'field "messages" must be a list, got {type_name(msgs)}']
    if not msgs:
        return out + ['field "messages" is empty']

    roles: list[str | None] = []
    for j, m in enumerate(msgs):
        f = f"messages[{j}]"
        if not isinstance(m, dict):
            out.append(f'field "{f}" must be an object with "role" and "content", got {type_name(m)}')
            roles.append(None)
            continue
        role = m.get("role")
        if "role" not in m:
            out.append(f'field "{f}.role" is missing')
        elif not isinstance(role, str):
            out.append(f'field "{f}.role" must be a string, got {type_name(role)}')
        elif role not in ROLES:
            out.append(f'field "{f}.role": unknown role {role!r} (expected one of {", ".join(ROLES)})')
        roles.append(role if role in ROLES else None)
        if "content" not in m:
            out.append(f'field "{f}.content" is missing')
        elif not isinstance(m["content"], str):
            out.append(f'field "{f}.content" must be a string, got {type_name(m["content"])}')
        elif not m["content"].strip():
            out.append(f'field "{f}.content" is empty')
        elif _SURROGATE.search(m["content"]):  # JSON "\ud800" decodes to one; no tokenizer can encode it
            at = _SURROGATE.search(m["content"]).start()
            out.append(f'field "{f}.content": a lone UTF-16 surrogate at character {at} (not valid Unicode text)')
    if None not in roles:  # order only makes sense once every role is known
        out.extend(_order_problems(roles, require_response))
    return out


def _order_problems(roles: list[str], require_response: bool | None) -> list[str]:
    """Optional system, then user/assistant alternating from user; then the required ending."""
    start = 1 if roles[0] == "system" else 0
    if start == len(roles):
        return ['field "messages": only a system turn; a "user" turn must follow']
    for j in range(start, len(roles)):
        expected = "user" if (j - start) % 2 == 0 else "assistant"
        if roles[j] != expected:
            after = f'after "{roles[j - 1]}"' if j > 0 else 'first (after an optional "system")'
            return [f'field "messages[{j}].role": roles out of order: expected "{expected}" {after}, '
                    f'got "{roles[j]}"']
    last = roles[-1]
    if require_response is True and last != "assistant":
        return [f'field "messages": a training record must end with an "assistant" turn, ends with "{last}"']
    if require_response is False and last != "user":
        return [f'field "messages": a prompt record must end with a "user" turn, ends with "{last}"']
    return []


def summarize(records: list[Record]) -> dict[str, Any]:
    """Counts a user checks before training: size, turn roles, responses, poison, lengths, sources."""
    roles: Counter[str] = Counter()
    prompt_chars = response_chars = with_response = poison = 0
    sources: Counter[str] = Counter()
    for r in records:
        msgs = r["messages"]
        roles.update(m["role"] for m in msgs)
        has_response = bool(msgs) and msgs[-1]["role"] == "assistant"
        with_response += has_response
        response_chars += len(msgs[-1]["content"]) if has_response else 0
        prompt_chars += sum(len(m["content"]) for m in (msgs[:-1] if has_response else msgs))
        poison += r.get("is_poison") is True
        sources[str(r.get("source", "?"))] += 1
    n = len(records)
    return {
        "count": n,
        "roles": dict(roles),
        "with_response": with_response,
        "prompt_only": n - with_response,
        "poison": poison,
        "avg_prompt_chars": round(prompt_chars / n, 1) if n else 0.0,
        "avg_response_chars": round(response_chars / with_response, 1) if with_response else 0.0,
        "sources": dict(sources),
    }
