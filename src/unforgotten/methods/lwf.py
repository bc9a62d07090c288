"""LwF: distil the aligned model's last hidden states on the user's own inputs while fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..bounds import bounded, one_of
from .base import Method

HIDDEN_REDUCTIONS = ("sum", "mean")


# --------------------------------------------------------------------------- the math, on plain tensors


def hidden_distillation_sum(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, hidden_reduction: str = "sum"
) -> torch.Tensor:
    """Sum over unmasked positions of the per-position squared distance of hidden states.

    ``student``, ``teacher``: (B, T, H); ``mask``: (B, T), nonzero where the position is a real
    token (``attention_mask``). Per position the distance is ``||s - t||_2^2`` (``"sum"`` over the
    hidden dimension) or its mean over the hidden dimension (``"mean"``, i.e. per-element MSE).
    Padding positions contribute nothing. The caller divides by the number of real positions.
    """
    if hidden_reduction not in HIDDEN_REDUCTIONS:
        raise ValueError(f"hidden_reduction must be one of {HIDDEN_REDUCTIONS}, got {hidden_reduction!r}")
    diff = (student.float() - teacher.float()).pow(2)
    per_pos = diff.sum(-1) if hidden_reduction == "sum" else diff.mean(-1)
    return (per_pos * (mask != 0).to(per_pos.dtype)).sum()


def hidden_distillation(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, hidden_reduction: str = "sum"
) -> torch.Tensor:
    """Mean over real (unmasked) positions of the squared hidden-state distance."""
    n = int((mask != 0).sum())
    return hidden_distillation_sum(student, teacher, mask, hidden_reduction) / max(n, 1)


# --------------------------------------------------------------------------- the method


@dataclass
class LwF(Method):
    """Learning without Forgetting: keep the last hidden states on user inputs close to the aligned model's.

    Paper: Li & Hoiem, 2017, "Learning without Forgetting", IEEE TPAMI 40(12) (arXiv:1606.09282),
    as adapted in Alssum et al., 2025, "Unforgotten Safety: Preserving Safety Alignment of Large
    Language Models with Continual Learning" (arXiv:2512.10150):
    loss = CE(user data) + beta * E_{x ~ D_user} ||h_theta(x) - h_safe(x)||_2^2, with h the last
    hidden states and the safety-aligned model as the teacher. (Li & Hoiem distil the old
    task's output probabilities; the study matches last hidden states instead, and so do we.)

    What we compute:
      * h = the last hidden state (after the final norm: what the LM head reads) at every real
        token of the user micro-batch (prompt and response; padding masked out with
        ``attention_mask``), for the model being trained (``outputs.hidden``) and for the teacher,
        the aligned model under ``ctx.reference()`` (the LoRA base with the adapter off: no copy;
        full fine-tuning keeps one frozen copy, made in ``setup``) under ``torch.no_grad``.
        The teacher's forward asks for logits at one position only, so its LM head costs nothing.
      * The term is ``||h - h_safe||_2^2`` summed over the hidden dimension, averaged over all real
        tokens of the optimizer step: each micro-batch adds its sum divided by the step's total
        count of real tokens, so results do not change with gradient accumulation.
      * At the start of a LoRA fine-tune (B = 0) student and teacher agree exactly: the term and
        its gradient are zero and grow as the adapter moves.

    Hyperparameters:
      beta = 0.1: our choice. The "Unforgotten Safety" value could not be retrieved from our
        sources (only its objective). With the literal squared L2 norm, ||h||^2 per token is the
        squared norm of the final RMSNorm weights (about 1.9e3 for SmolLM2-135M), so a 5%
        relative drift of the last hidden state costs about 0.5 with beta = 0.1: the order of the
        task cross-entropy, a real but not overriding pull towards the aligned model.
      hidden_reduction = "sum": the paper's squared L2 norm over the hidden dimension; "mean"
        divides by the hidden size (per-element MSE, as ``F.mse_loss`` would), in which case beta
        must be about hidden_size times larger for the same effect.
    """

    name: ClassVar[str] = "lwf"
    packable: ClassVar[bool] = False  # see Method.packable
    needs_hidden_states: ClassVar[bool] = True

    beta: float = bounded(0.1, ge=0)
    hidden_reduction: str = one_of("sum", HIDDEN_REDUCTIONS)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.last_term: float = 0.0

    def setup(self, ctx) -> None:
        ctx.snapshot_reference()  # no-op with LoRA; full fine-tuning keeps a frozen copy

    def teacher_hidden(self, ctx, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The aligned model's last hidden states (B, T, H) for ``batch``, without gradients."""
        b = ctx.to_device(batch)
        with ctx.reference() as ref, torch.no_grad():
            out = ref(
                input_ids=b["input_ids"],
                attention_mask=b["attention_mask"],
                output_hidden_states=True,
                logits_to_keep=1,
                use_cache=False,
            )
        return out.hidden_states[-1].detach()

    def loss(self, ctx, batch, outputs, task_loss):
        if outputs.hidden is None:
            raise RuntimeError("lwf: the loop passed no hidden states (needs_hidden_states is set, so this is a bug)")
        mask = batch["attention_mask"].to(outputs.hidden.device)
        teacher = self.teacher_hidden(ctx, batch)
        step_positions = ctx.sum_across(sum(int(b["attention_mask"].sum()) for b in ctx.micro_batches)) or int(mask.sum())
        term = hidden_distillation_sum(outputs.hidden, teacher, mask, self.hidden_reduction) / max(step_positions, 1)
        self.last_term = float(term.detach())
        return task_loss + self.beta * term.to(task_loss.device)


