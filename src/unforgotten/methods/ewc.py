"""EWC: a quadratic penalty holding the weights that matter for safety near their aligned values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import torch

from ..bounds import bounded, one_of
from .base import Method

NORMALIZE_MODES = ("none", "max", "mean")


# --------------------------------------------------------------------------- the math, on plain tensors


def empirical_fisher(
    sample_losses: Iterable[Callable[[], torch.Tensor]], params: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: ``F_i = mean over samples of (d loss_s / d theta_i)^2``.

    ``sample_losses`` yields one closure per sample that computes that sample's loss (here: the
    mean NLL over its response tokens). Each sample gets its own backward pass, so the squares
    are of per-sample gradients (squaring a batch gradient would give a different, smaller
    quantity). ``torch.autograd.grad`` is used, so no ``.grad`` is touched. Parameters that a
    sample's loss does not reach get a zero gradient for it.
    """
    names = list(params)
    tensors = [params[n] for n in names]
    acc = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    count = 0
    for loss_fn in sample_losses:
        loss = loss_fn()
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                acc[n].add_(g.detach().float().pow(2))
        count += 1
    if count == 0:
        raise ValueError("empirical_fisher: no samples")
    return {n: a / count for n, a in acc.items()}


def normalize_fisher(fisher: dict[str, torch.Tensor], mode: str) -> dict[str, torch.Tensor]:
    """Rescale the Fisher by one global scalar: ``none``, ``max`` (largest entry -> 1) or ``mean``
    (average entry over all parameters -> 1). An all-zero Fisher is returned unchanged."""
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {mode!r}")
    if mode == "none" or not fisher:
        return dict(fisher)
    if mode == "max":
        scale = max(float(f.max()) for f in fisher.values())
    else:
        total = sum(float(f.double().sum()) for f in fisher.values())
        scale = total / sum(f.numel() for f in fisher.values())
    if scale <= 0:
        return dict(fisher)
    return {n: f / scale for n, f in fisher.items()}


def ewc_penalty(
    params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor], lam: float
) -> torch.Tensor:
    """``sum_i lam/2 * F_i * (theta_i - theta*_i)^2`` over the parameters named in ``fisher``.

    Its gradient is ``lam * F * (theta - theta*)``; it is exactly zero at ``theta = theta*``.
    """
    total = None
    for n, f in fisher.items():
        p = params[n]
        term = (f * (p.float() - anchor[n]).pow(2)).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return 0.5 * lam * total


# --------------------------------------------------------------------------- the method


@dataclass
class EWC(Method):
    """Elastic Weight Consolidation against forgetting the safety alignment (a diagonal-Fisher quadratic penalty).

    Paper: Kirkpatrick et al., 2017, "Overcoming catastrophic forgetting in neural networks",
    PNAS 114(13) (arXiv:1612.00796). As used in Alssum et al., 2025, "Unforgotten Safety:
    Preserving Safety Alignment of Large Language Models with Continual Learning"
    (arXiv:2512.10150): loss = CE(user data) + sum_i lam/2 * F_i * (theta_i - theta_safe_i)^2.

    What we compute:
      * theta_safe = the trainable parameters' values when training starts (the aligned model).
      * F = the diagonal *empirical* Fisher at theta_safe on the safety data (``ctx.safety_data``,
        the m-sample buffer): F_i = mean over samples of (d NLL_s / d theta_i)^2, where NLL_s is
        the sample's mean negative log-likelihood over its response tokens (the loss the task
        uses). Per-sample gradients come from one forward/backward per sample (batch of one, so
        no padding and no torch.func tracing of the HF model), in eval mode (no dropout), with
        ``torch.autograd.grad`` so no ``.grad`` is touched. Cost: m forward/backward passes once.
      * The penalty is a per-step term: each micro-batch adds ``ctx.micro_fraction`` of it, so the
        step's total is the same for any gradient accumulation.

    With LoRA (the default) only the adapter is trainable, so EWC works in adapter space: it
    penalizes the adapter's departure from its initial values, i.e. from the aligned model
    (LoRA's B starts at 0, so theta_safe gives exactly the aligned weights). A consequence worth
    knowing: at B = 0 the gradient with respect to every A matrix is zero, so A gets F = 0 and is
    free; B is anchored to 0 where it matters, which pins the weight update B @ A along the
    directions the safety data depends on. With full fine-tuning every weight is anchored (the
    Fisher and the anchor each cost one model-size float32 copy).

    Hyperparameters:
      lam = 1.0: our choice. The "Unforgotten Safety" value could not be retrieved from our
        sources (only its objective). With the default Fisher normalization (mean entry = 1),
        lam is the strength of an L2-to-anchor spring on a parameter of average safety
        importance: its penalty gradient is lam * (theta - theta_safe), so with lam = 1 it
        matches a per-parameter task gradient of size d once the parameter has drifted by d
        (small: the token-mean loss spreads a gradient of norm ~1 over millions of adapter
        entries), while the parameters with far-below-average Fisher stay nearly free. Not
        tuned on a real model; raise it for more safety, lower it for utility.
      normalize = "mean": our choice ("none" is the original paper's raw Fisher; "max" scales the
        largest entry to 1). Raw empirical-Fisher values of an LLM are tiny and depend on the
        model, the data and the sequence lengths, so a fixed raw-scale lam would not transfer;
        dividing by one global scalar keeps EWC's relative weighting and makes lam portable.
      fisher_samples = None: use all m safety samples (the brief's buffer); an int caps the
        estimate at the first n samples to bound setup cost.

    Resume: the Fisher and the anchor are saved in ``state_dict`` (CPU tensors), so a resumed run
    uses exactly the same penalty even if the fresh model's initial adapter differs.
    """

    name: ClassVar[str] = "ewc"
    shardable: ClassVar[bool] = False  # see Method.shardable
    packable: ClassVar[bool] = False  # see Method.packable
    needs_safety_data: ClassVar[bool] = True

    lam: float = bounded(1.0, ge=0)
    normalize: str = one_of("mean", NORMALIZE_MODES)
    fisher_samples: int | None = bounded(None, ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.last_penalty: float = 0.0

    # setup ---------------------------------------------------------------

    def setup(self, ctx) -> None:
        from ..errors import UserInputError

        params = ctx.trainable()
        samples = ctx.encode(ctx.safety_data or [])
        if self.fisher_samples is not None:
            samples = samples[: self.fisher_samples]
        if not samples:
            raise UserInputError("ewc: no safety sample left after encoding; the Fisher needs at least one")
        self._n_safety = len(samples)
        self._stage_records = list(ctx.user_data)
        carried = getattr(self, "_carry", None)
        if carried and set(carried["fisher"]) == set(params):
            # a later stage of a stream: the accumulated Fisher plus the last task's, at these weights
            # (= where that task's stage ended); the anchor moves here (online EWC)
            task = normalize_fisher(self.fisher_at(ctx, ctx.encode(carried["past_task"])), self.normalize)
            device = next(iter(params.values())).device
            self.fisher = {n: carried["fisher"][n].to(device) + task[n] for n in params}
        else:
            self.fisher = normalize_fisher(self.fisher_at(ctx, samples), self.normalize)
        self.anchor = {n: p.detach().float().clone() for n, p in params.items()}

    def fisher_at(self, ctx, samples) -> dict[str, torch.Tensor]:
        """Empirical Fisher of ``samples`` (encoded) at the current weights, in eval mode; under
        several processes each computes its block of the samples and the blocks are summed."""
        from ..data.tokenize import collate
        from ..train.context import forward_with_labels

        params = ctx.trainable()
        n_all, samples = len(samples), ctx.local_share(samples)
        model = ctx.unwrapped_model()
        pad = ctx.tokenizer.pad_token_id

        def sample_loss(enc):
            def fn():
                out = forward_with_labels(model, ctx.to_device(collate([enc], pad)))
                return out.loss_sum / max(out.n_tokens, 1)

            return fn

        was_training = model.training
        model.eval()
        try:
            fisher = empirical_fisher((sample_loss(e) for e in samples), params) if samples else None
        finally:
            model.train(was_training)
        return {n: ctx.sum_across(fisher[n] * len(samples) if fisher else torch.zeros_like(p, dtype=torch.float32)) / n_all
                for n, p in params.items()}

    # continual streams -----------------------------------------------------------

    carries: ClassVar[str] = (
        "the Fisher, accumulated: the aligned model's on the safety buffer plus each past task's "
        "(as many of its samples as the safety Fisher used) at the end of that task's stage, each "
        "normalized; the anchor moves to each stage's start (online EWC)"
    )

    def carry_state(self) -> dict[str, Any] | None:
        from .base import past_task_sample

        return {"fisher": {n: f.detach().cpu() for n, f in self.fisher.items()},
                "past_task": past_task_sample(self._stage_records, self._n_safety, seed=0)}

    def load_carry(self, state: dict[str, Any] | None) -> None:
        self._carry = state

    # per micro-batch ----------------------------------------------------------

    def loss(self, ctx, batch, outputs, task_loss):
        penalty = ewc_penalty(ctx.trainable(), self.anchor, self.fisher, self.lam)
        self.last_penalty = float(penalty.detach())
        return task_loss + ctx.micro_fraction * penalty.to(task_loss.device)

    # resume --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "fisher": {n: f.detach().cpu() for n, f in self.fisher.items()},
            "anchor": {n: a.detach().cpu() for n, a in self.anchor.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        device = next(iter(self.fisher.values())).device if self.fisher else None
        self.fisher = {n: f.to(device) if device is not None else f for n, f in state["fisher"].items()}
        self.anchor = {n: a.to(device) if device is not None else a for n, a in state["anchor"].items()}


