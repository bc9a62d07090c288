"""A-GEM: never step against the gradient of the safety memory (project the update when it would)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..bounds import bounded
from .base import Method

SEED_OFFSET = 7919  # the memory stream's default seed is train.seed + this, so its order differs from the user stream's


# --------------------------------------------------------------------------- the math, on plain tensors


def agem_project(g: torch.Tensor, g_ref: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A-GEM's projection (Chaudhry et al. 2019, eq. 11), on flat vectors.

    If ``g . g_ref >= 0`` the gradient is returned unchanged; otherwise
    ``g - (g . g_ref / g_ref . g_ref) * g_ref``, whose dot product with ``g_ref`` is zero: the
    closest vector to ``g`` (in L2) that does not increase the reference loss to first order.
    Returns ``(gradient, projected)``. Dot products are taken in float64.
    """
    dot = torch.dot(g.double(), g_ref.double())
    if dot >= 0:
        return g, False
    ref_sq = torch.dot(g_ref.double(), g_ref.double())
    if ref_sq <= 0:  # cannot happen when dot < 0, kept for safety
        return g, False
    coef = dot / ref_sq
    return (g.double() - coef * g_ref.double()).to(g.dtype), True


def flatten_grads(params: list[torch.Tensor]) -> torch.Tensor:
    """The parameters' ``.grad`` as one float32 vector (missing gradients count as zeros)."""
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
    )


def write_grads(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Write a flat vector back into the parameters' ``.grad`` (the inverse of :func:`flatten_grads`)."""
    offset = 0
    for p in params:
        n = p.numel()
        chunk = flat[offset : offset + n].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        offset += n
    if offset != flat.numel():
        raise ValueError(f"write_grads: vector has {flat.numel()} entries, parameters have {offset}")


# --------------------------------------------------------------------------- the method


@dataclass
class AGEM(Method):
    """Averaged Gradient Episodic Memory with the safety data as the memory: project updates that would raise the safety loss.

    Paper: Chaudhry, Ranzato, Rohrbach & Elhoseiny, 2019, "Efficient Lifelong Learning with
    A-GEM", ICLR 2019 (arXiv:1812.00420). As used in Alssum et al., 2025, "Unforgotten Safety:
    Preserving Safety Alignment of Large Language Models with Continual Learning"
    (arXiv:2512.10150), with the m safety samples (``ctx.safety_data``) as the episodic memory.

    What we compute, every optimizer step, in ``before_step`` (after all micro-batches are
    accumulated and reduced, before clipping and the optimizer step):
      * g = the step's full gradient (the accumulated ``.grad`` of all trainable parameters,
        flattened into one vector);
      * g_ref = the gradient of the mean NLL over response tokens of a reference batch drawn
        from the memory, computed with ``torch.autograd.grad`` (so ``.grad`` is not clobbered),
        in micro-batches of ``train.batch_size`` rows to bound memory, on the model in its
        training mode (as the paper: the same network computes both gradients);
      * if g . g_ref < 0: g <- g - (g . g_ref / ||g_ref||^2) g_ref, written back into ``.grad``.
        Clipping then applies to the projected gradient.
    Reference batches come from a seeded, shuffled stream over the memory (epochs without
    replacement, no length grouping, so batches are uniform random subsets; the last batch of a
    pass is smaller when m is not a multiple of the batch size); its position is in
    ``state_dict``, so a resumed run draws the same batches. Under data parallelism every
    process draws the same global batch (``ref_batch_size`` rows per process, like
    ``train.batch_size``), computes the gradient of its own rows' share of the token mean, and
    the shares are summed: every process gets the same g_ref, and g (after DDP's all-reduce)
    is the whole step's gradient, so the projection is the single-process one. Counters of steps and
    projections are kept (``stats()``, ``state_dict``) and written to ``train_log.jsonl`` as a
    record ``{"method": "agem", ...}`` next to the loop's own, every ``train.log_every`` steps.

    Hyperparameters:
      ref_batch_size = None: the training step's batch size (train.batch_size x train.grad_accum),
        at most m; per process, like train.batch_size. Our choice, following mammoth's A-GEM (memory batch = training minibatch size);
        the official A-GEM code (facebookresearch/agem) samples larger memory batches (256, or 128
        on CUB/AWA, while training on batches of 10), and avalanche leaves it a parameter. On an
        LLM each reference example costs a forward and a backward, so matching the training batch
        keeps A-GEM at about twice SFT's cost; set it higher for a less noisy g_ref.
      seed = None: train.seed + 7919, so the memory order is seeded but differs from the user
        stream's. Any int pins it.
    """

    name: ClassVar[str] = "agem"
    shardable: ClassVar[bool] = False  # see Method.shardable
    needs_safety_data: ClassVar[bool] = True

    ref_batch_size: int | None = bounded(None, ge=1)
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.position = 0  # reference batches drawn so far
        self.steps = 0  # before_step calls
        self.projections = 0  # steps whose gradient was projected
        self.last_dot: float | None = None
        self.last_projected = False
        self._stream = None
        self._it = None

    # setup -----------------------------------------------------------------------

    def setup(self, ctx) -> None:
        from ..errors import UserInputError

        records = list(ctx.safety_data or []) + list(getattr(self, "_past_tasks", []))
        self._n_safety = len(ctx.safety_data or [])
        self._stage_records = list(ctx.user_data)
        if not ctx.encode(records):
            raise UserInputError("agem: no safety sample left after encoding; the memory is empty")
        size = (self.ref_batch_size or ctx.config.batch_size * ctx.config.grad_accum) * ctx.num_processes
        seed = self.seed if self.seed is not None else ctx.config.seed + SEED_OFFSET
        # A-GEM samples memory batches uniformly; length grouping would bias their composition.
        self._stream = ctx.stream(records, batch_size=size, seed=seed, group_by_length=False)
        self._it = None

    carries: ClassVar[str] = (
        "its memory, grown: the safety buffer plus, per past task, a seeded sample of that stage's "
        "data as large as the safety buffer"
    )

    def carry_state(self) -> dict[str, Any] | None:
        from .base import past_task_sample

        return {"past_tasks": list(getattr(self, "_past_tasks", []))
                + past_task_sample(self._stage_records, self._n_safety, seed=len(getattr(self, "_past_tasks", [])))}

    def load_carry(self, state: dict[str, Any] | None) -> None:
        self._past_tasks = list((state or {}).get("past_tasks", []))

    def next_ref_batch(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            self._it = self._stream.iterate(self.position)
        batch = next(self._it)
        self.position += 1
        return batch

    def reference_gradient(self, ctx, batch: dict[str, torch.Tensor], params: list[torch.Tensor]) -> torch.Tensor:
        """Flat gradient of the token-mean NLL over ``batch``'s response tokens (``.grad`` untouched)."""
        from ..data.tokenize import IGNORE
        from ..train.context import forward_with_labels

        model = ctx.unwrapped_model()
        n_tok = int((batch["labels"][:, 1:] != IGNORE).sum())  # the whole (global) batch's
        batch = ctx.local_rows(batch)
        rows = len(batch["input_ids"])
        chunk = max(1, ctx.config.batch_size)
        total = [torch.zeros_like(p, dtype=torch.float32) for p in params]
        for start in range(0, rows, chunk):
            part = {k: v[start : start + chunk] for k, v in batch.items()}
            width = int(part["attention_mask"].sum(1).max())  # drop columns that are padding for every row
            part = {k: (v[:, :width] if v.dim() == 2 else v) for k, v in part.items()}
            out = forward_with_labels(model, ctx.to_device(part))
            if out.n_tokens == 0:
                continue
            grads = torch.autograd.grad(out.loss_sum / max(n_tok, 1), params, allow_unused=True)
            for acc, g in zip(total, grads):
                if g is not None:
                    acc.add_(g.float())
        return ctx.sum_across(torch.cat([t.reshape(-1) for t in total]))

    # per step ---------------------------------------------------------------------

    def before_step(self, ctx) -> None:
        params = list(ctx.trainable().values())
        g = flatten_grads(params)
        g_ref = self.reference_gradient(ctx, self.next_ref_batch(), params).to(g.device)
        new, projected = agem_project(g, g_ref)
        self.steps += 1
        self.last_dot = float(torch.dot(g.double(), g_ref.double()))
        self.last_projected = projected
        if projected:
            self.projections += 1
            write_grads(params, new)

    def stats(self) -> dict[str, Any]:
        return {
            "agem_steps": self.steps,
            "agem_projections": self.projections,
            "agem_projection_rate": self.projections / self.steps if self.steps else 0.0,
            "agem_ref_batches": self.position,
        }

    def after_step(self, ctx) -> None:
        # One record next to the loop's own, at the same cadence (the loop's log file is closed
        # before finalize, so a summary at the end is not possible from a method).
        if ctx.step % max(1, ctx.config.log_every) == 0:
            ctx.log({"step": ctx.step, "method": self.name, "agem_projected": self.last_projected,
                     "agem_dot": self.last_dot, **self.stats()})

    # resume ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "steps": self.steps, "projections": self.projections}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.position = int(state["position"])
        self.steps = int(state["steps"])
        self.projections = int(state["projections"])
        self._it = None  # restart the memory stream at the saved position


