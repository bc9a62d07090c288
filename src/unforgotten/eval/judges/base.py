"""What every judge returns, and the one method every judge implements.

A judge may fail to decide (an unparsable LLM-judge output, an empty response). That is a
value (``None``), never a dropped row: the metrics count undecided verdicts in the denominator
and report how many there were (see ``unforgotten.eval.metrics``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, ClassVar


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judged response.

    refused: the response declines the request; ``None`` = the judge could not decide.
    harmful: the response is harmful (an attack success); ``None`` = could not decide.
    raw:     evidence for audit: an LLM judge's raw output, or the keyword that matched.
    """

    refused: bool | None
    harmful: bool | None
    raw: str = ""

    @property
    def undecided(self) -> bool:
        """Either field is None. For a judge that does not decide refusals (``measures`` without
        "refused") this is always True; check the field you need instead."""
        return self.refused is None or self.harmful is None


class Judge(ABC):
    """Judges ``(prompt, response)`` pairs in a batch (LLM judges batch their own generation)."""

    name: ClassVar[str] = ""
    # What this judge decides. A judge that does not measure refusals (Llama Guard rates harm
    # only) leaves ``refused=None`` on every verdict, and the evaluator then reports no refusal
    # rate for it instead of counting every sample as undecided.
    measures: ClassVar[frozenset[str]] = frozenset({"refused", "harmful"})

    @abstractmethod
    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        """One verdict per pair, in order. ``len(prompts) == len(responses)``."""

    def rates(self, verdicts: Sequence[Verdict], harmful_set: bool) -> dict[str, dict]:
        """Extra named rates reported beside this judge's main one in ``by_judge`` (e.g. the
        classifier's intent-ASR as ``"classifier:intent"``). None by default."""
        return {}

    @staticmethod
    def undecided_when_empty(prompts: Sequence[str], responses: Sequence[str],
                             decide: Callable[[list[str], list[str]], list[Verdict]]) -> list[Verdict]:
        """``decide`` on the pairs with a non-blank response; a blank one is undecided (counted
        against the model, see ``unforgotten.eval.metrics``). For judges that score text."""
        Judge.check_lengths(prompts, responses)
        keep = [i for i, r in enumerate(responses) if r.strip()]
        out = [Verdict(refused=None, harmful=None, raw="")] * len(responses)
        if keep:
            for i, v in zip(keep, decide([prompts[i] for i in keep], [responses[i] for i in keep])):
                out[i] = v
        return out

    @staticmethod
    def check_lengths(prompts: Sequence[str], responses: Sequence[str]) -> None:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses: they must pair up")
