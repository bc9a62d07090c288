"""The method interface: hooks around the one training loop (see ``train/loop.py``).

Every hook is a no-op by default; a method overrides only what it needs. Methods never own the
optimizer step, and their hyperparameters are dataclass fields, so config validation, docs and
``--set train.method_args.NAME.KEY=VALUE`` all come from one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import torch

from ..bounds import check_fields
from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..data.schema import Record
    from ..train.context import StepOutputs, TrainContext


@dataclasses.dataclass
class Method:
    name: ClassVar[str] = "method"
    needs_safety_data: ClassVar[bool] = False  # the run must provide data.safety
    needs_hidden_states: ClassVar[bool] = False  # loop passes last hidden states to loss()
    replaces_model: ClassVar[bool] = False  # finalize() swaps ctx.model for a merged plain model: must run last
    # Trains correctly when FSDP / DeepSpeed ZeRO shard the weights. False for methods that take
    # their own gradients (autograd.grad), penalize or edit whole weights: the loop refuses them there.
    shardable: ClassVar[bool] = True
    # Trains correctly on packed batches (train.packing: every micro-batch one row of sequences
    # back to back). False for methods that need the rows: per-example shares, replay slices per
    # row, hidden states under a 2-D attention mask.
    packable: ClassVar[bool] = True

    def __post_init__(self) -> None:
        """Check every numeric hyperparameter against its declared bounds (``bounds.bounded``).
        A method with its own ``__post_init__`` (choices, runtime state) calls this first."""
        check_fields(self, f"{self.name}.")

    def uses_safety_data(self) -> bool:
        """Whether this configured instance trains with the safety buffer (default: the class flag;
        OGPSA needs it only when no other reference set is named)."""
        return self.needs_safety_data

    def prepare_data(self, ctx: "TrainContext", user_data: list["Record"], safety_data: list["Record"] | None) -> list["Record"]:
        """Return the records to train on (SafeInstr mixing, synthesis, sample selection)."""
        return user_data

    def setup(self, ctx: "TrainContext") -> None:
        """Once, before the first step, at the starting (aligned) weights: Fisher, anchors, buffers."""

    def start_step(self, ctx: "TrainContext") -> None:
        """Each optimizer step, once its micro-batches are drawn (``ctx.micro_batches``), before any
        forward: Refresh's unlearn update, subspace refreshes."""

    def loss(self, ctx: "TrainContext", batch: dict[str, torch.Tensor], outputs: "StepOutputs", task_loss: torch.Tensor) -> torch.Tensor:
        """Per micro-batch: return the loss to backpropagate.

        ``task_loss`` is this micro-batch's share of the step's token-mean loss. A per-step term
        (a penalty on weights) must be scaled by ``ctx.micro_fraction`` so that the step's total is
        independent of gradient accumulation.
        """
        return task_loss

    def batch_source(self, ctx: "TrainContext") -> Iterator[dict[str, torch.Tensor]] | None:
        """Per optimizer step: micro-batches to train on *instead of* the user data, or None.

        Lisa's alignment phases return a stream of safety batches here. The user stream does not
        advance during such steps, and its position is checkpointed, so resume stays exact.
        """
        return None

    def before_step(self, ctx: "TrainContext") -> None:
        """Gradients are accumulated (and reduced across processes), not yet clipped or applied."""

    def after_step(self, ctx: "TrainContext") -> None:
        """After the optimizer step; ``ctx.step`` counts optimizer steps done."""

    def finalize(self, ctx: "TrainContext") -> None:
        """After the last step, before saving: post-hoc weight edits."""

    def log_fields(self, ctx: "TrainContext") -> dict[str, Any]:
        """Extra fields for this step's record in train_log.jsonl (e.g. A-GEM's projection count)."""
        return {}

    # Resume support: whatever setup() computed that is not derivable from the config.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # Continual streams (``stream.py``): several fine-tunes in a row, each stage starting from the
    # previous stage's weights with a fresh instance of each method. ``carries`` says in words what
    # the method hands the next stage; the default carries nothing (it starts afresh every stage).
    carries: ClassVar[str] = "nothing: starts afresh at every stage"

    def carry_state(self) -> dict[str, Any] | None:
        """After a stage: what the next stage's instance needs (CPU tensors, records), or None."""
        return None

    def load_carry(self, state: dict[str, Any] | None) -> None:
        """Before the next stage's ``setup``: take over what the previous stage handed on."""

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> "Method":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in args or {}:
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(fields) or "none"
                raise ConfigError(f"method {cls.name!r}: unknown argument {key!r}{hint}; known: {known}")
        # Values are typed like the config's: YAML 1.1 reads "1e-3" as a string, "3" may be meant as 3.0.
        from ..config import _coerce

        hints = typing.get_type_hints(cls)
        typed = {k: _coerce(v, hints.get(k, Any), f"train.method_args.{cls.name}.{k}") for k, v in (args or {}).items()}
        return cls(**typed)

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        return out



def past_task_sample(records: list["Record"], n: int, seed: int) -> list["Record"]:
    """A seeded sample of ``n`` records of a finished stage's data, for methods whose memory grows
    with each past task (A-GEM, OGPSA) and for EWC's Fisher on it. Drawn from the stage's data as
    the user gave it: the provider cannot tell poison rows from task rows either."""
    import random

    picked = list(records)
    random.Random(seed).shuffle(picked)
    return picked[:n]
