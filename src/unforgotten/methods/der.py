"""Dark Experience Replay: match the aligned model's logits on replayed safety examples.

Task 1 (the provider's safety alignment) is over before we start, so the buffer's "dark
knowledge" is the *aligned* model's output at each response token of the safety buffer,
computed once in ``setup``. Each optimizer step then replays as many buffer examples as it
has user examples and adds ``alpha`` x the MSE between the current logits and the stored ones.

The replay helpers (:class:`~.replay.StepReplay`) live in ``replay.py``, shared with ``refresh.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..bounds import bounded, one_of
from ..data.tokenize import Encoded, collate
from .base import Method
from .replay import StepReplay, micro_sizes, shifted_label_count

STORAGES = ("topk", "exact")


# --------------------------------------------------------------------------- pure math


def topk_logits(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest logits per row (fp32) and their vocabulary ids (int32)."""
    k = min(k, logits.shape[-1])
    values, indices = torch.topk(logits.float(), k, dim=-1)
    return values, indices.to(torch.int32)


def der_mse_sum(logits: torch.Tensor, target: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
    """DER's logit-matching term, summed over tokens: ``sum_t mean_c (h_tc - z_tc)^2``.

    ``logits`` (n, V) are the current model's, ``target`` the stored ones: (n, V) for the exact
    form (``indices`` None), or (n, k) with their vocabulary ``indices`` (n, k) for the top-k
    form, in which case the current logits are gathered at those ids first. The mean over the
    stored coordinates is ``F.mse_loss``'s, as in the authors' code (mammoth); the caller divides
    by the number of replayed tokens. With k = V the two forms are the same number.
    """
    h = logits.float()
    if indices is not None:
        h = h.gather(-1, indices.long())
    return (h - target.float()).pow(2).mean(-1).sum()


# --------------------------------------------------------------------------- the method


@dataclass
class DER(Method):
    """Dark Experience Replay: MSE to the aligned model's logits on replayed safety examples (DER / DER++).

    Paper: Buzzega, Boschini, Porrello, Abati, Calderara (2020), "Dark Experience for General
    Continual Learning: a Strong, Simple Baseline", NeurIPS 2020, arXiv:2004.07211. Loss:
    ``CE(user) + alpha * E_(x,z)~M ||z - h_theta(x)||^2 (+ beta * E_(x,y)~M CE(h_theta(x), y))``.
    "Unforgotten Safety" (arXiv:2512.10150) finds DER the best method for keeping safety.

    Here the buffer M is the safety data (``data.safety``, m samples): x = a safety record,
    y = its refusal, z = the ALIGNED model's logits at each response (label) position, computed
    once in ``setup`` (task 1 is over; the paper records z while training on the old task).
    Each optimizer step replays as many buffer examples as it has user examples (in the paper's
    best settings the replay minibatch equals the stream batch, 32), one slice per micro-batch.
    Replay terms are token means over the whole step's replayed response tokens (rather than
    per-micro-batch means weighted by ``ctx.micro_fraction``), so the step total does not depend
    on gradient accumulation at all, the same exactness the loop gives the task loss.

    Hyperparameters:
      alpha = 0.3: weight of the logit MSE; the paper's / mammoth's best value for
        seq-CIFAR-10 (buffer 500). The MSE is a mean over the stored coordinates (``F.mse_loss``
        in the authors' code), averaged over replayed tokens. Note the exact form averages
        over V coordinates and top-k over k, so an alpha tuned for one form is not the other's.
      beta = 0.0: weight of the DER++ CE on the buffer's labels; 0 = plain DER (the method
        "Unforgotten Safety" evaluates). DER++ uses e.g. beta = 0.5 (mammoth seq-CIFAR-100).
      storage = "topk": what the buffer keeps per response token.
        "exact": the paper's form, all V logits in fp32: V x 4 bytes a token, 192 KiB at
          SmolLM2's V = 49152, i.e. 539 MB (5.4 MB an example) for 100 starter refusals of ~27
          response tokens (``benchmarks/der_memory.py``); fp32 kept for exactness.
        "topk": only the k largest logits (fp32) and their ids (int32): 8k bytes a token,
          V / (2k) times less (192x at k = 128: 27.4 KiB an example). The loss is the exact DER
          loss restricted to those coordinates (the MSE between current logits gathered at the
          stored ids and the stored values). What it loses: logits outside the aligned model's
          top k are free, so the model may raise a token that was outside its top k (CE on the
          user data does exactly that for the user's target tokens) without this term seeing
          it, and the tail's shape is not kept.
      k = 128: our choice (the paper stores every logit). Measured on the aligned SmolLM2-135M
        at the starter refusals' response tokens, the top k ids hold on average 63% of the
        next-token probability at k = 1, 88% at 8, 94% at 32, 97.6% at 128 and 99.2% at 512
        (``benchmarks/der_memory.py --model ALIGNED_DIR``). At 128 the tail left out holds ~2%,
        for 1 KiB a token; memory is no reason to go lower at the study's m = 100. k >= V is
        clamped to V, which makes "topk" equal "exact".
      buffer_batch_size = 8: our choice; examples per forward when building the buffer
        (bounds the transient (tokens x V) logits).

    Deviations: z comes from the aligned model, not from the training trajectory (there is no
    task-1 training here); DER++'s two terms share one replayed batch (the paper draws two
    independent ones; sharing saves a forward of the LLM per micro-batch); the replay batch is
    drawn without replacement from a seeded, resumable stream over the buffer rather than
    uniformly with replacement.
    """

    name = "der"
    carries: ClassVar[str] = (
        "its memory: the aligned model's outputs on the safety buffer (a stream trains one adapter over "
        "the aligned model, so targets computed with the adapter off are the same at every stage); "
        "past tasks are not added"
    )
    packable: ClassVar[bool] = False  # see Method.packable
    needs_safety_data: ClassVar[bool] = True

    alpha: float = bounded(0.3, ge=0)
    beta: float = bounded(0.0, ge=0)
    storage: str = one_of("topk", STORAGES)
    k: int = bounded(128, ge=1)
    buffer_batch_size: int = bounded(8, ge=1)

    def __post_init__(self):
        super().__post_init__()
        self.values: torch.Tensor | None = None  # (N_tokens, V) exact or (N_tokens, k) top-k
        self.indices: torch.Tensor | None = None  # (N_tokens, k) int32, top-k only
        self.rows: dict[int, tuple[int, int]] = {}  # sample index -> its rows in values
        self.replay: StepReplay | None = None
        self.build_seconds = 0.0
        self._mse = 0.0

    # ---------------------------------------------------------------- buffer

    def setup(self, ctx) -> None:
        self.replay = StepReplay(ctx, ctx.safety_data or [])
        if ctx.num_processes == 1:
            self.build_buffer(ctx, self.replay.samples)
            return
        # each process computes the targets of its block of the buffer; the blocks are joined in order
        samples = self.replay.samples
        if len(samples) < ctx.num_processes:
            from ..errors import UserInputError

            raise UserInputError(f"der: the safety buffer has {len(samples)} samples, fewer than the {ctx.num_processes} processes")
        self.build_buffer(ctx, ctx.local_share(samples))
        self.values = ctx.cat_across(self.values)
        self.indices = ctx.cat_across(self.indices) if self.indices is not None else None
        self.rows, start = {}, 0
        for e in samples:
            c = shifted_label_count(e)
            self.rows[e.index] = (start, start + c)
            start += c

    @torch.no_grad()
    def build_buffer(self, ctx, samples: list[Encoded]) -> None:
        """z for every buffer sample, in batches of ``buffer_batch_size``, under the aligned model."""
        from ..train.context import forward_with_labels

        t0 = time.perf_counter()
        counts = [shifted_label_count(e) for e in samples]
        total = sum(counts)
        values = indices = None  # allocated at the first batch (V known), filled in place: no 2x peak
        rows, start = {}, 0
        with ctx.setup_reference() as model:
            for i in range(0, len(samples), self.buffer_batch_size):
                chunk = samples[i : i + self.buffer_batch_size]
                out = forward_with_labels(model, ctx.to_device(collate(chunk, ctx.tokenizer.pad_token_id)))
                n = out.logits.shape[0]
                if n != sum(counts[i : i + len(chunk)]):  # pragma: no cover - a loop/encoder mismatch
                    raise RuntimeError("der: label positions do not match the forward's logits")
                if self.storage == "exact":
                    v, ix = out.logits.float(), None
                else:
                    v, ix = topk_logits(out.logits, self.k)
                if values is None:
                    values = torch.empty(total, v.shape[1], dtype=torch.float32)
                    indices = torch.empty(total, v.shape[1], dtype=torch.int32) if ix is not None else None
                values[start : start + n] = v.cpu()
                if ix is not None:
                    indices[start : start + n] = ix.cpu()
                for e, c in zip(chunk, counts[i : i + len(chunk)]):
                    rows[e.index] = (start, start + c)
                    start += c
                del out, v, ix
        self.values = values if values is not None else torch.zeros(0, 0)
        self.indices = indices
        self.rows = rows
        self.build_seconds = time.perf_counter() - t0

    def buffer_bytes(self) -> int:
        """Bytes held by the stored outputs (logit values, and ids for top-k)."""
        n = self.values.numel() * self.values.element_size() if self.values is not None else 0
        if self.indices is not None:
            n += self.indices.numel() * self.indices.element_size()
        return n

    def targets(self, encs: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stored z for these samples' response tokens, in the order the forward returns logits."""
        idx = torch.cat([torch.arange(*self.rows[e.index]) for e in encs])
        return self.values[idx], (self.indices[idx] if self.indices is not None else None)

    # ---------------------------------------------------------------- training

    def start_step(self, ctx) -> None:
        self.replay.draw_step(micro_sizes(ctx))
        self._mse = 0.0

    def loss(self, ctx, batch, outputs, task_loss):
        encs, rb = self.replay.next_slice()
        if self.alpha == 0 and self.beta == 0:
            return task_loss
        out = ctx.forward(rb)
        n = self.replay.tokens
        z, ix = self.targets(encs)
        dev = out.logits.device
        mse = der_mse_sum(out.logits, z.to(dev), ix.to(dev) if ix is not None else None) / n
        self._mse += float(mse.detach())
        loss = task_loss + self.alpha * mse
        if self.beta:
            loss = loss + self.beta * out.loss_sum / n
        return loss

    def log_fields(self, ctx) -> dict[str, Any]:
        """The step's replay MSE (per replayed token, before alpha): 0 at the aligned weights."""
        return {"der_mse": self._mse}

    def state_dict(self) -> dict[str, Any]:
        # z is recomputed in setup from the starting weights (deterministic); only the stream moves
        return {"replay_pos": self.replay.pos if self.replay else 0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replay.seek(state.get("replay_pos", 0))
