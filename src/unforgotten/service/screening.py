"""Screen an upload's rows for "harmful request + compliant answer" with a registered judge.

Each training row is judged as (last user turn, assistant answer); a row is flagged when the
judge calls the answer harmful, and also when it cannot decide (a screen that waves through
what it cannot read is no screen). The provider's policy then says what happens:
``reject`` the file, ``drop`` the flagged rows, or ``keep`` them and rely on the training method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.schema import Record, prompt_text, response_text
from .settings import ScreeningConfig

EXCERPT = 160  # characters of a flagged row quoted in events and the report


@dataclass
class Screened:
    kept: list[Record]
    flagged: list[dict[str, Any]] = field(default_factory=list)  # row (1-based), id, excerpts, undecided
    rejected: bool = False
    summary: dict[str, Any] = field(default_factory=dict)


def judge_rows(records: list[Record], judge_name: str, judge_args: dict[str, Any] | None = None) -> list[bool | None]:
    """The judge's ``harmful`` verdict for every row (None: undecided)."""
    from ..eval.judges import get_judge

    judge = get_judge(judge_name, **(judge_args or {}))
    verdicts = judge.judge([prompt_text(r) for r in records], [response_text(r) or "" for r in records])
    return [v.harmful for v in verdicts]


def screen(records: list[Record], cfg: ScreeningConfig) -> Screened:
    verdicts = judge_rows(records, cfg.judge, cfg.judge_args)
    flagged = [
        {"row": i + 1, "id": r.get("id"), "undecided": v is None,
         "request": prompt_text(r)[:EXCERPT], "answer": (response_text(r) or "")[:EXCERPT]}
        for i, (r, v) in enumerate(zip(records, verdicts)) if v is not False
    ]
    share = len(flagged) / len(records) if records else 0.0
    rejected = bool(flagged) and (cfg.policy == "reject" or share > cfg.max_flagged_fraction)
    flagged_rows = {f["row"] for f in flagged}
    kept = [r for i, r in enumerate(records) if cfg.policy != "drop" or i + 1 not in flagged_rows]
    summary = {"judge": cfg.judge, "policy": cfg.policy, "rows": len(records), "flagged": len(flagged),
               "undecided": sum(f["undecided"] for f in flagged), "dropped": len(records) - len(kept),
               "rejected": rejected, "flagged_rows": flagged}
    return Screened(kept=kept, flagged=flagged, rejected=rejected, summary=summary)


def describe(s: Screened) -> str:
    rows = ", ".join(str(f["row"]) for f in s.flagged[:20]) + (" ..." if len(s.flagged) > 20 else "")
    what = {"reject": "file rejected", "drop": "rows dropped", "keep": "rows kept (the training method must hold)"}
    head = f"Screening ({s.summary['judge']}): {len(s.flagged)} of {s.summary['rows']} rows flagged"
    if not s.flagged:
        return head
    return f"{head} (rows {rows}); {'file rejected' if s.rejected else what[s.summary['policy']]}"
