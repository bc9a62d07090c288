"""Plain supervised fine-tuning: the token-mean cross-entropy on assistant tokens, nothing added."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Method


@dataclass
class SFT(Method):
    """Plain fine-tuning on the user data (the baseline every other method is compared to)."""

    name = "sft"
