"""Replayed examples for methods that rehearse a buffer alongside the user data (DER, Refresh).

Not a method: a helper several methods share, so that no method imports another.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from ..data.tokenize import IGNORE, Encoded, collate


class StepReplay:
    """Replayed safety examples, drawn per optimizer step so accumulation cannot change them.

    Each step draws as many examples as the step has user examples, from a seeded, resumable
    stream (``ctx.stream(...).iterate(pos)``, one sample per position), and cuts them into one
    slice per user micro-batch, of the same sizes. Batch 4 x accumulation 1 and batch 2 x
    accumulation 2 thus replay the same examples, and a term normalised by the step's replay
    tokens (:attr:`tokens`) has the same total either way. ``pos`` is all the state.

    With several processes the draw is for the whole step on all processes (the same on each),
    every process replays its own block of it, and :attr:`tokens` counts the whole draw's.
    """

    def __init__(self, ctx, records, seed: int | None = None):
        self.ctx = ctx
        self.stream = ctx.stream(records, batch_size=1, seed=seed, group_by_length=False)  # a plain seeded shuffle
        self.samples = self.stream.samples
        self.by_index: dict[int, Encoded] = {s.index: s for s in self.samples}
        self.pad_id = ctx.tokenizer.pad_token_id
        self.pos = 0
        self._it: Iterator[dict[str, Any]] | None = None
        self.slices: list[list[Encoded]] = []
        self.tokens = 0
        self._next = 0

    def seek(self, pos: int) -> None:
        self.pos = int(pos)
        self._it = None

    def draw_step(self, sizes: list[int]) -> None:
        if self._it is None:
            self._it = self.stream.iterate(self.pos)
        per_process = self.ctx.cat_across(torch.tensor([sum(sizes)])).tolist()  # [n] in one process
        n = sum(per_process)
        picked = [self.by_index[int(next(self._it)["index"][0])] for _ in range(n)]
        self.pos += n
        self.tokens = sum(shifted_label_count(e) for e in picked)
        start = sum(per_process[: self.ctx.process_index])  # this process's block of the draw
        self.slices = []
        for s in sizes:
            self.slices.append(picked[start : start + s])
            start += s
        self._next = 0

    def next_slice(self) -> tuple[list[Encoded], dict[str, torch.Tensor]]:
        """The replay slice for the loop's next micro-batch of this step, and its collated batch."""
        if self._next >= len(self.slices):
            raise RuntimeError("replay: more micro-batches than drawn in start_step")
        encs = self.slices[self._next]
        self._next += 1
        return encs, collate(encs, self.pad_id)


def shifted_label_count(e: Encoded) -> int:
    """Label tokens the loss sees (labels are shifted by one: the first position never counts)."""
    return sum(1 for t in e.labels[1:] if t != IGNORE)


def micro_sizes(ctx) -> list[int]:
    """Examples per micro-batch of the current step (``ctx.micro_batches``)."""
    return [len(b["input_ids"]) for b in ctx.micro_batches]
