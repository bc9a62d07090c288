"""Judges: decide whether a response refused and whether it is harmful.

Entries are lazy ``"module:attr"`` strings, so an LLM judge's heavy dependencies load only when
it is used. ``get_judge("keyword")`` builds one; unknown names fail with a did-you-mean hint.
"""

from __future__ import annotations

from typing import Any

from ...registry import Registry
from .base import Judge, Verdict

JUDGES: Registry[type[Judge]] = Registry("judge")
JUDGES.register("keyword", "unforgotten.eval.judges.keyword:KeywordJudge")
JUDGES.register("learned", "unforgotten.eval.judges.learned:LearnedJudge")
JUDGES.register("classifier", "unforgotten.eval.judges.classifier:ClassifierJudge")
JUDGES.register("llama-guard", "unforgotten.eval.judges.llama_guard:LlamaGuardJudge")
JUDGES.register("wildguard", "unforgotten.eval.judges.wildguard:WildGuardJudge")
JUDGES.register("openai", "unforgotten.eval.judges.openai_compat:OpenAIJudge")


def get_judge(name: str, **kwargs: Any) -> Judge:
    """Instantiate the judge registered as ``name`` with ``kwargs``."""
    return JUDGES.get(name)(**kwargs)


__all__ = ["JUDGES", "Judge", "Verdict", "get_judge"]
