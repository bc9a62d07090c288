"""SafeInstr: mix safety demonstrations (harmful request -> refusal) into the user's training data."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import UserInputError
from .base import Method

if TYPE_CHECKING:  # pragma: no cover
    from ..data.schema import Record
    from ..train.context import TrainContext


def mix_safety(user_data: list["Record"], safety_data: list["Record"], seed: int) -> list["Record"]:
    """``user_data + safety_data`` in one list shuffled by ``random.Random(seed)``.

    Safety records are shallow copies marked ``safety_mix=True`` (user records get
    ``safety_mix=False`` only if they lack the key); no input record is modified, none is dropped
    or duplicated.
    """
    mixed: list[Record] = [r if "safety_mix" in r else {**r, "safety_mix": False} for r in user_data]
    mixed += [{**r, "safety_mix": True} for r in safety_data]
    random.Random(seed).shuffle(mixed)
    return mixed


@dataclass
class SafeInstr(Method):
    """Safety-tuning: train on the user data with m safety demonstrations mixed in.

    Paper: Federico Bianchi, Mirac Suzgun, Giuseppe Attanasio, Paul Röttger, Dan Jurafsky,
    Tatsunori Hashimoto, James Zou (2024). "Safety-Tuned LLaMAs: Lessons From Improving the Safety
    of Large Language Models that Follow Instructions". ICLR 2024, arXiv:2309.07875.

    The method is data-only: the m safety samples (harmful instruction -> refusal, the pipeline's
    ``data.safety`` buffer, already sampled to ``data.safety_size`` = m records) are added to the
    user's training records and the union is shuffled; training is then plain SFT on the mix. The
    paper adds 100-2000 safety examples to 20k instruction samples (its main finding: a few hundred
    suffice); "Unforgotten Safety" uses the same m-sample safety buffer for every method that needs
    one, so m is set once in ``data.safety_size`` (default 100), not here.

    Hyperparameters:
        seed: the shuffle seed; default ``None`` = the run's ``train.seed`` (our choice: one seed
            per run keeps runs reproducible without another knob). The loop shuffles batches
            again with its own seed, so this only fixes the order of the returned list (and so the
            run's fingerprint).

    Each mixed-in safety record carries ``safety_mix: True`` (user records ``safety_mix: False``)
    so reports can tell them apart. Deviation: none.
    """

    name = "safeinstr"
    carries: ClassVar[str] = "its safety data: the same buffer is mixed into every stage's data"
    needs_safety_data = True

    seed: int | None = None

    def prepare_data(self, ctx: "TrainContext", user_data: list["Record"], safety_data: list["Record"] | None) -> list["Record"]:
        if not safety_data:
            raise UserInputError("method 'safeinstr' needs safety data: set data.safety (and data.safety_size > 0)")
        seed = ctx.config.seed if self.seed is None else self.seed
        return mix_safety(list(user_data), list(safety_data), seed)

    def state_dict(self) -> dict[str, Any]:
        return {}
