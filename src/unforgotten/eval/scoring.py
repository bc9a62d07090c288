"""Pull a task answer out of free-form model text, and score it against a record's label.

Deliberately simple, documented rules (so a score can be reproduced by hand):

* labels (classification): the choice word that occurs *first* as a whole word,
  case-insensitive. No negation handling: "not positive ... negative" gives "positive".
* numbers (GSM8K-style): the number after the last ``####`` if there is one, else the last
  number in the text; thousands separators, ``$`` and a sentence-final ``.`` are dropped and the
  value is normalized (``18.0`` -> ``18``, ``0.50`` -> ``0.5``) so equal numbers compare equal.

An answer that cannot be extracted is ``None``. ``score_task`` counts it as wrong; to report how
many there were, pass the extracted answers to ``metrics.accuracy`` (``n_undecided``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal

from ..data.schema import Record
from ..errors import DataError

DEFAULT_CHOICES: tuple[str, ...] = ("positive", "negative")

# A number not glued to a preceding word/number ("Q3", "1.2.3"); an optional minus that is not a
# range dash ("3-5"); either 1,234,567 with thousands groups or plain digits; optional decimals;
# or a bare decimal like ".5".
_NUMBER = re.compile(r"(?<![\w.])-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")


def extract_label(response: str, choices: Sequence[str] = DEFAULT_CHOICES) -> str | None:
    """The choice (as spelled in ``choices``) whose whole-word match comes first; ``None`` if none."""
    if not choices:
        raise ValueError("choices must not be empty")
    by_lower = {c.casefold(): c for c in choices}
    # Longest first, so a choice that is a prefix of another ("not", "not sure") cannot shadow it.
    alternatives = "|".join(re.escape(c) for c in sorted(choices, key=len, reverse=True))
    m = re.search(rf"(?<!\w)(?:{alternatives})(?!\w)", response, flags=re.IGNORECASE)
    return by_lower[m.group(0).casefold()] if m else None


def normalize_number(token: str) -> str | None:
    """``"1,234.50"`` -> ``"1234.5"``, ``"$5.00"`` -> ``"5"``, ``"-0"`` -> ``"0"``; ``None`` if not a number."""
    cleaned = token.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    text = format(value.normalize(), "f")  # "f" avoids "1E+2" for 100
    return "0" if text in ("-0", "0") else text


def extract_number(text: str) -> str | None:
    """The GSM8K final answer: after the last ``####`` if present, else the last number."""
    if "####" in text:
        found = _NUMBER.search(text.rsplit("####", 1)[1])
        return normalize_number(found.group(0)) if found else None
    found = _NUMBER.findall(text)
    return normalize_number(found[-1]) if found else None


def extract_answer(
    response: str, kind: Literal["label", "number"] = "label", choices: Sequence[str] = DEFAULT_CHOICES
) -> str | None:
    """:func:`extract_label` or :func:`extract_number`, by ``kind``."""
    if kind == "label":
        return extract_label(response, choices)
    if kind == "number":
        return extract_number(response)
    raise ValueError(f"kind must be 'label' or 'number', got {kind!r}")


def answers_and_labels(
    responses: Sequence[str],
    records: Sequence[Record],
    kind: Literal["label", "number"] = "label",
    choices: Sequence[str] | None = DEFAULT_CHOICES,
) -> tuple[list[str | None], list[str]]:
    """Each response's extracted answer and the label it is compared with (a number label
    normalized like the answers). ``choices=None``: the distinct labels themselves (how the
    evaluator scores a classification set whatever its label words)."""
    if len(responses) != len(records):
        raise ValueError(f"{len(responses)} responses but {len(records)} records: they must pair up")
    for i, record in enumerate(records):
        if record.get("label") is None:
            where = f"id {record['id']!r}" if "id" in record else f"index {i}"
            raise DataError(f"Record at {where} has no 'label' field, so it cannot be scored.")
    labels = [str(r["label"]) for r in records]
    if kind == "number":
        return [extract_number(s) for s in responses], [normalize_number(lab) or lab.strip() for lab in labels]
    if kind != "label":
        raise ValueError(f"kind must be 'label' or 'number', got {kind!r}")
    choices = sorted({lab.strip() for lab in labels}) if choices is None else choices
    return [extract_label(s, choices) for s in responses], labels


def is_correct(answer: str | None, label: str) -> bool:
    """An extracted answer against its label: case-insensitive, surrounding space ignored; no answer is wrong."""
    return answer is not None and answer.strip().casefold() == label.strip().casefold()


def score_task(
    responses: Sequence[str],
    records: Sequence[Record],
    kind: Literal["label", "number"] = "label",
    choices: Sequence[str] | None = DEFAULT_CHOICES,
) -> list[bool]:
    """Per-response correctness against ``record["label"]``; an unextractable answer is wrong."""
    answers, labels = answers_and_labels(responses, records, kind, choices)
    return [is_correct(a, lab) for a, lab in zip(answers, labels)]
