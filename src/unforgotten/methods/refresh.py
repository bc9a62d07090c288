"""Refresh learning: before each step, unlearn the step's data (Fisher-preconditioned noisy
gradient ascent), then relearn it with the normal step; on top of safety-buffer replay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..data.tokenize import collate
from ..bounds import bounded
from .base import Method
from .replay import StepReplay, micro_sizes

# --------------------------------------------------------------------------- pure math


def damped_inverse(fisher: torch.Tensor, eps: float, scale: float = 1.0) -> torch.Tensor:
    """The preconditioner ``(F / scale + eps)^-1`` (diagonal, elementwise)."""
    return 1.0 / (fisher / scale + eps)


def unlearn_delta(
    grad: torch.Tensor, precond: torch.Tensor, gamma: float, temperature: float, noise: torch.Tensor
) -> torch.Tensor:
    """One unlearning step's change to the weights (paper eq.: Langevin ascent on the loss).

    ``theta <- theta + gamma * F^-1 grad + N(0, 2 * gamma * T * F^-1)`` with ``precond`` =
    F^-1 (diagonal) and ``noise`` standard normal of the weight's shape; T = 1 is the paper.
    """
    return gamma * precond * grad + torch.sqrt(2.0 * gamma * temperature * precond) * noise


def empirical_fisher(weighted_grads) -> list[torch.Tensor]:
    """Diagonal Fisher ``mean_i w_i * g_i^2`` from an iterable of ``(w_i, [g_i per tensor])``.

    Streams: one example's gradient at a time is held, not all of them.
    """
    fisher: list[torch.Tensor] | None = None
    n = 0
    for w, grads in weighted_grads:
        sq = [float(w) * g.pow(2) for g in grads]
        fisher = sq if fisher is None else [f.add_(q) for f, q in zip(fisher, sq)]
        n += 1
    if fisher is None:
        raise ValueError("no examples to estimate the Fisher from")
    return [f / n for f in fisher]


def step_noise_generator(seed: int, step: int, j: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, step, unlearning substep): resume-exact, and
    the same however the step is split into micro-batches."""
    mixed = (seed * 1_000_003 + step * 7_919 + j) % (2**63 - 1)
    return torch.Generator(device="cpu").manual_seed(mixed)


# --------------------------------------------------------------------------- the method


@dataclass
class Refresh(Method):
    """Refresh learning: unlearn (Fisher-preconditioned Langevin ascent) then relearn each step, over safety replay.

    Paper: Zhenyi Wang, Yan Li, Li Shen, Heng Huang (2024), "A Unified and General Framework
    for Continual Learning", ICLR 2024, arXiv:2403.13249; code: joey-wang123/CL-refresh-learning.
    Per optimizer step: UNLEARN ``theta <- theta + gamma F^-1 grad L(theta) + N(0, 2 gamma F^-1)``
    (gradient ascent preconditioned by the inverse diagonal Fisher of the previous tasks, plus
    Langevin noise), then RELEARN: the normal optimizer step, taken at the unlearned weights.
    Refresh is a plug-in on a continual-learning method (the released code puts it on DER++);
    we put it on experience replay: a CE term on safety examples (``data.safety``) each step.

    How it runs here: in ``start_step`` (before any forward) we compute the gradient of the
    step's token-mean CE over ALL its user micro-batches (``loss_sum / step_tokens``, as the
    loop), apply the unlearning update in place, and the loop then forwards/backwards at the
    unlearned weights. The ascent uses the user data's CE only, as the authors' code does (not
    the replay term: unlearning the safety data would be the opposite of the goal). The noise
    comes from a generator seeded by (seed, step), so the result is deterministic, resumes
    exactly and is the same for any gradient accumulation.

    The Fisher F (diagonal, trainable weights only) is the previous task's: computed once in
    ``setup`` at the aligned weights on the safety data, as the authors' code does at each task
    end: mean over examples of ``p(y|x) * g^2`` with g the gradient of the example's log-likelihood
    and p(y|x) = exp(-loss) (their weighting; for a response we use the token-mean NLL, so p is the
    per-token geometric-mean probability). Their online accumulation over tasks (F <- tau F + F_new,
    tau = 1e-5) reduces to that single Fisher with one previous task; the code updates F only at
    task ends, so we do not update it during fine-tuning (no EMA within the task).

    Hyperparameters:
      gamma = 0.01: unlearning rate. Our choice. The paper's experiments are SGD on CIFAR-10/100
        and Tiny-ImageNet, whose step sizes do not transfer to AdamW on an LLM (we could not check
        its appendix values when writing this), and the released code does not use a gamma: it
        rescales the ascent direction per tensor to 1e-5 of the weight's norm (so a zero-init
        LoRA B would never move). Calibrated on SmolLM2-135M + LoRA (r=8, alpha=4): the
        token-mean CE gradient has RMS ~8e-4 per adapter weight, so the drift is ~8e-6 per weight
        per step, ~1/10 of an AdamW step at lr 1e-4: a refresh, not a reset. With F normalised
        (below) the preconditioner is <= 1.
      temperature = 1e-8: T in the noise N(0, 2 gamma T F^-1); T = 1 is the paper's formula. Our
        choice: with a mean (not summed) loss, T = 1 gives noise of std sqrt(2 gamma) = 0.14 per
        weight per step, which destroys the model; the authors' code also scales its noise far
        down (1e-3 of its step). T = 1e-8 gives std 1.4e-5, the same order as the drift.
        Measured with both defaults (SmolLM2-135M, default LoRA: 2.4M adapter weights, lr 1e-4,
        batch 4): the unlearning change has norm ~0.02 a step against ~0.16 for an AdamW step
        (1/8), and the step's user loss at the unlearned weights is 0.003-0.014 above plain
        replay's over the first steps.
      fisher_damping = 1.0: eps in F^-1 ~ (F / mean(F) + eps)^-1. With the normalisation this is the
        authors' code's form (1 + c F)^-1 with c = 1 / mean(F) (they use c = 1e-3 on CIFAR):
        weights with no Fisher mass move at the full rate, those at mean importance at half.
      normalize_fisher = True: divide F by its mean over trainable weights first, so gamma and
        eps mean the same for any model size or loss scale (F's raw scale is that of squared
        per-example gradients, tiny for an LLM). False: (F + eps)^-1 as written in the paper.
      every = 1: unlearn before every optimizer step, as the released code does (each batch).
      unlearn_steps = 1: unlearning iterations per refresh (the released code does one); each
        recomputes the gradient at the current weights and draws its own noise.
      replay_weight = 1.0: weight of the CE on replayed safety examples (the authors' ER
        default, beta = 1.0). The replay draws as many safety examples per step as the step has
        user examples, and is a token mean over the step's replayed tokens.
      fisher_samples = None: safety examples used for the Fisher (None: all of them, as the
        released code uses all of the old task's training data). Each costs one forward + backward at batch 1.

    Cost per step: one extra forward + backward over the step's user micro-batches (the ascent
    gradient), plus the replay forward + backward: about 3x plain fine-tuning. Memory: the
    preconditioner, one tensor per trainable weight.

    Deviations: gamma / T / normalisation above; the relearning step is the loop's AdamW step,
    not SGD; the Fisher is computed once at the aligned weights on the safety buffer (the only
    task-1 data we have); the ascent uses the paper's formula, not the code's per-tensor
    normalised direction.
    """

    name = "refresh"
    shardable: ClassVar[bool] = False  # see Method.shardable
    packable: ClassVar[bool] = False  # see Method.packable
    needs_safety_data: ClassVar[bool] = True

    gamma: float = bounded(0.01, ge=0)
    temperature: float = bounded(1e-8, ge=0)
    fisher_damping: float = bounded(1.0, gt=0)
    normalize_fisher: bool = True
    every: int = bounded(1, ge=1)
    unlearn_steps: int = bounded(1, ge=1)
    replay_weight: float = bounded(1.0, ge=0)
    fisher_samples: int | None = bounded(None, ge=1)

    def __post_init__(self):
        super().__post_init__()
        self.precond: dict[str, torch.Tensor] = {}
        self.replay: StepReplay | None = None
        self.seed = 0
        self._moved = 0.0

    # ---------------------------------------------------------------- setup: the task-1 Fisher

    def setup(self, ctx) -> None:
        self.seed = ctx.config.seed
        self.replay = StepReplay(ctx, ctx.safety_data or [])
        fisher = self.safety_fisher(ctx)
        scale = 1.0
        if self.normalize_fisher:
            total = sum(float(f.sum()) for f in fisher.values())
            count = sum(f.numel() for f in fisher.values())
            mean = total / max(count, 1)
            scale = mean if mean > 0 else 1.0
        self.precond = {n: damped_inverse(f, self.fisher_damping, scale) for n, f in fisher.items()}

    def safety_fisher(self, ctx) -> dict[str, torch.Tensor]:
        """Diagonal Fisher of the trainable weights at the aligned model, on the safety data."""
        import random

        from ..train.context import forward_with_labels

        params = ctx.trainable()
        names, tensors = list(params), list(params.values())
        samples = list(self.replay.samples)
        if self.fisher_samples is not None and self.fisher_samples < len(samples):
            samples = random.Random(ctx.config.seed).sample(samples, self.fisher_samples)
        n_all, samples = len(samples), ctx.local_share(samples)  # each process its block, summed below
        pad = ctx.tokenizer.pad_token_id

        def weighted_grads():
            # ctx.model at the starting weights IS the aligned model (a fresh LoRA adapter is a
            # no-op), and we need gradients w.r.t. its trainable weights; eval mode: no dropout
            with _eval(ctx.unwrapped_model()) as model:
                for e in samples:
                    out = forward_with_labels(model, ctx.to_device(collate([e], pad)))
                    nll = out.loss_sum / max(out.n_tokens, 1)  # token-mean NLL of this response
                    g = torch.autograd.grad(nll, tensors, allow_unused=True)
                    yield math.exp(-float(nll.detach())), [
                        torch.zeros_like(t) if gi is None else gi.detach() for gi, t in zip(g, tensors)
                    ]

        local = empirical_fisher(weighted_grads()) if samples else [torch.zeros_like(t) for t in tensors]
        return {n: ctx.sum_across(f * len(samples)) / n_all for n, f in zip(names, local)}

    # ---------------------------------------------------------------- per step

    def start_step(self, ctx) -> None:
        self.replay.draw_step(micro_sizes(ctx))
        self._moved = 0.0
        if ctx.step % self.every != 0 or self.gamma == 0:
            return
        from ..train.context import forward_with_labels

        params = ctx.trainable()
        names, tensors = list(params), list(params.values())
        # the plain model: this gradient is ours (autograd.grad), not a DDP backward
        model = ctx.unwrapped_model()
        for j in range(self.unlearn_steps):
            grads = [torch.zeros_like(t) for t in tensors]
            for mb in ctx.micro_batches:
                out = forward_with_labels(model, ctx.to_device(mb))
                g = torch.autograd.grad(out.loss_sum / ctx.step_tokens, tensors, allow_unused=True)
                for total, gi in zip(grads, g):
                    if gi is not None:
                        total.add_(gi)
            # each process's share of the whole step's token mean (ctx.step_tokens counts all processes)
            grads = [ctx.sum_across(g) for g in grads]
            gen = step_noise_generator(self.seed, ctx.step, j)
            with torch.no_grad():
                for name, t, g in zip(names, tensors, grads):
                    noise = torch.randn(t.shape, generator=gen, dtype=torch.float32).to(t.device, t.dtype)
                    delta = unlearn_delta(g, self.precond[name].to(t.device), self.gamma, self.temperature, noise)
                    t.add_(delta)
                    self._moved += float(delta.float().pow(2).sum())

    def loss(self, ctx, batch, outputs, task_loss):
        _, rb = self.replay.next_slice()
        if self.replay_weight == 0:
            return task_loss
        out = ctx.forward(rb)
        return task_loss + self.replay_weight * out.loss_sum / self.replay.tokens

    def log_fields(self, ctx) -> dict[str, Any]:
        """L2 norm of this step's unlearning change to the trainable weights (all substeps)."""
        return {"unlearn_norm": math.sqrt(self._moved)}

    def state_dict(self) -> dict[str, Any]:
        # the Fisher is recomputed in setup at the starting weights; the noise is seeded by step
        return {"replay_pos": self.replay.pos if self.replay else 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replay.seek(state.get("replay_pos", 0))


class _eval:
    """Eval mode (no dropout) for the Fisher pass, restoring the previous mode after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was = self.model.training
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was)
