"""Lisa: alternate alignment steps (safety data) and user steps, tied by a proximal term."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import torch

from ..bounds import bounded
from ..errors import ConfigError, UserInputError
from .base import Method

if TYPE_CHECKING:  # pragma: no cover
    from ..train.context import TrainContext

ALIGN, USER = "align", "user"


# --------------------------------------------------------------------------- pure functions


def cycle_lengths(alignment_steps: int, finetune_steps: int, cycle_steps: int | None = None) -> tuple[int, int]:
    """The (alignment, user) step counts of one cycle.

    Without ``cycle_steps`` these are the configured counts. With it, one cycle lasts
    ``cycle_steps`` optimizer steps split in the ratio ``alignment_steps : finetune_steps``
    (alignment rounded to nearest, at least 1 step for each state whose count is > 0), so a short
    run keeps the paper's 1:9 split: ``cycle_lengths(100, 900, 10) == (1, 9)``.
    """
    if cycle_steps is None:
        return alignment_steps, finetune_steps
    total = alignment_steps + finetune_steps
    k1 = int(cycle_steps * alignment_steps / total + 0.5)
    if alignment_steps > 0:
        k1 = max(k1, 1)
    if finetune_steps > 0:
        k1 = min(k1, cycle_steps - 1)
    return k1, cycle_steps - k1


def phase_at(step: int, k1: int, k2: int) -> str:
    """The state of optimizer step ``step`` (0-based): each cycle is ``k1`` alignment steps, then ``k2`` user steps.

    Lisa starts in the alignment state (as the reference code does when there is alignment data).
    ``k1 == 0``: user steps only; ``k2 == 0``: alignment steps only.
    """
    if k1 <= 0:
        return USER
    if k2 <= 0:
        return ALIGN
    return ALIGN if step % (k1 + k2) < k1 else USER


def switch_points(n_steps: int, k1: int, k2: int) -> list[int]:
    """Steps ``s`` in ``1..n_steps-1`` whose state differs from step ``s-1``'s (the anchor moves there)."""
    return [s for s in range(1, n_steps) if phase_at(s, k1, k2) != phase_at(s - 1, k1, k2)]


def proximal_penalty(params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor], rho: float) -> torch.Tensor:
    """``rho/2 * sum_i ||theta_i - anchor_i||^2``; its gradient w.r.t. ``theta_i`` is ``rho * (theta_i - anchor_i)``."""
    missing = [n for n in params if n not in anchor]
    if missing:
        raise KeyError(f"no anchor for parameters {missing[:5]}")
    total = None
    for n, p in params.items():
        d = (p - anchor[n].to(device=p.device, dtype=p.dtype)).pow(2).sum()
        total = d if total is None else total + d
    if total is None:
        return torch.zeros(())
    return 0.5 * rho * total


# --------------------------------------------------------------------------- the method


@dataclass
class Lisa(Method):
    """Lisa (Bi-State Optimization): alternate safety-data steps and user-data steps with a proximal pull.

    Paper: Tiansheng Huang, Sihao Hu, Fatih Ilhan, Selim Furkan Tekin, Ling Liu (2024). "Lisa: Lazy
    Safety Alignment for Large Language Models against Harmful Fine-tuning Attack". NeurIPS 2024,
    arXiv:2405.18641. Reference code: github.com/git-disl/Lisa (``trainer.py``, ``ADMMTrainer``).

    Training cycles through two states, counted in OPTIMIZER steps (``ctx.step``): ``alignment_steps``
    steps on batches of the safety data (the m-sample safety buffer), then ``finetune_steps`` steps
    on the user data, and again; it starts in the alignment state. In each state the loss gets the
    proximal term ``rho/2 * ||theta - theta_anchor||^2`` over the trainable parameters, where
    ``theta_anchor`` is the weights at the last state switch (the starting weights before the
    first switch): the anchor moves at every switch, as in the paper's Algorithm 1 and the reference
    ``switch_model()``.

    Hyperparameters:
        alignment_steps: 100, finetune_steps: 900 -- the paper's default step split K1/K2 (the
            released ``script/finetune/lisa_poison_ratio.sh``: ``align_step=100``,
            ``finetune_step=900``).
        rho: 1.0 -- the paper's default proximal intensity (the released script: ``RHO=1``).
        cycle_steps: None -- our addition for short runs: if set, one cycle lasts this many steps
            split in the ratio alignment_steps:finetune_steps (10 -> 1 alignment + 9 user steps),
            see :func:`cycle_lengths`. With the defaults a run shorter than 100 steps would do
            alignment steps only.
        proximal_delay_steps: 0 -- the paper's Algorithm 1 applies the proximal term from the
            first step. The released code skips it during the first 10% of training (a comment
            says it hurt convergence on GSM8K); set this to 10% of your step count to mirror that.
            Our choice of 0 follows the paper, and a step count because methods are not told the
            run's total steps.

    Deviations from the reference code, on purpose:
      * The schedule counts optimizer steps; the reference counts micro-batches (its ``clock``
        advances per ``training_step`` call), so with gradient accumulation its states switch
        mid-step and last ``1/grad_accum`` of the configured steps. Ours does not depend on
        accumulation.
      * The proximal term is added once per optimizer step (scaled by ``ctx.micro_fraction``
        across micro-batches), so accumulation 2 x batch 2 equals accumulation 1 x batch 4.
      * The safety stream is seeded and resumable (position + anchor are checkpointed); the
        reference draws from a fresh ``RandomSampler``.
    Cost: one extra copy of the trainable parameters (the anchor): small with LoRA, one model copy
    with full fine-tuning.
    """

    name = "lisa"
    carries: ClassVar[str] = "its safety data: the same buffer drives the alignment phases of every stage (the phase schedule restarts per stage)"
    shardable: ClassVar[bool] = False  # see Method.shardable
    packable: ClassVar[bool] = False  # see Method.packable
    needs_safety_data = True

    alignment_steps: int = bounded(100, ge=0)
    finetune_steps: int = bounded(900, ge=0)
    rho: float = bounded(1.0, ge=0)
    cycle_steps: int | None = bounded(None, ge=1)
    proximal_delay_steps: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alignment_steps + self.finetune_steps == 0:
            raise ConfigError("lisa.alignment_steps and lisa.finetune_steps cannot both be 0")
        if self.cycle_steps is not None and self.alignment_steps > 0 and self.finetune_steps > 0 and self.cycle_steps < 2:
            raise ConfigError(f"lisa.cycle_steps must be >= 2 to hold both states (got {self.cycle_steps!r})")
        # runtime state, not hyperparameters (so not dataclass fields)
        self._anchor: dict[str, torch.Tensor] = {}  # weights at the last state switch
        self._pos = 0  # safety micro-batches drawn so far
        self._stream: Any = None
        self._gen: Iterator[dict[str, torch.Tensor]] | None = None
        self._switches = 0

    # -- schedule

    @property
    def lengths(self) -> tuple[int, int]:
        return cycle_lengths(self.alignment_steps, self.finetune_steps, self.cycle_steps)

    def phase(self, step: int) -> str:
        return phase_at(step, *self.lengths)

    # -- hooks

    def setup(self, ctx: "TrainContext") -> None:

        if not ctx.safety_data:
            raise UserInputError("method 'lisa' needs safety data: set data.safety (and data.safety_size > 0)")
        cfg = ctx.config
        if not ctx.encode(ctx.safety_data):
            raise UserInputError("method 'lisa': no safety sample is left after encoding (all too long for max_length?)")
        # global batches and length grouping as the user stream's (the loop gives each process its
        # rows), so the accumulation and process-count equivalences hold
        self._stream = ctx.stream(ctx.safety_data, batch_size=cfg.batch_size * ctx.num_processes, seed=cfg.seed)
        self._pos = 0
        self._gen = self._take()
        self._anchor = {n: p.detach().clone() for n, p in ctx.trainable().items()}
        self._switches = 0

    def _take(self) -> Iterator[dict[str, torch.Tensor]]:
        it = self._stream.iterate(self._pos)
        while True:
            batch = next(it)
            self._pos += 1
            yield batch

    def batch_source(self, ctx: "TrainContext") -> Iterator[dict[str, torch.Tensor]] | None:
        return self._gen if self.phase(ctx.step) == ALIGN else None

    def loss(self, ctx, batch, outputs, task_loss):
        if self.rho == 0 or ctx.step < self.proximal_delay_steps:
            return task_loss
        return task_loss + ctx.micro_fraction * proximal_penalty(ctx.trainable(), self._anchor, self.rho)

    def after_step(self, ctx: "TrainContext") -> None:
        # ctx.step = steps done; the next step starts a new state -> move the anchor to here
        if ctx.step >= 1 and self.phase(ctx.step) != self.phase(ctx.step - 1):
            with torch.no_grad():
                for n, p in ctx.trainable().items():
                    self._anchor[n].copy_(p.detach())
            self._switches += 1

    # -- resume

    def state_dict(self) -> dict[str, Any]:
        return {
            "pos": self._pos,
            "switches": self._switches,
            "anchor": {n: t.detach().cpu().clone() for n, t in self._anchor.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pos = int(state["pos"])
        self._switches = int(state.get("switches", 0))
        anchor = state["anchor"]
        if self._anchor and set(anchor) != set(self._anchor):
            raise UserInputError("lisa checkpoint: anchor parameters differ from the model's trainable parameters")
        self._anchor = {n: t.to(self._anchor[n].device) if n in self._anchor else t for n, t in anchor.items()}
        if self._stream is not None:
            self._gen = self._take()
