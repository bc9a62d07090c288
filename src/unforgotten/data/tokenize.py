"""Records -> token ids with assistant-only labels; length-grouped, dynamically padded batches.

Loss masking uses the tokenizer's own chat template: for every assistant turn we render the
conversation up to it with ``add_generation_prompt=True`` (the prompt) and including it (the
prompt + answer); the tokens in between are the answer's, and only those get labels. That holds
for any template whose rendering of a prefix is a prefix of the rendering of the whole, which we
check rather than assume.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from ..errors import DataError
from .schema import Record

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    index: int  # position in the source record list

    @property
    def n_label_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


@dataclass
class EncodeStats:
    total: int = 0
    truncated: int = 0
    dropped: int = 0
    dropped_indices: list[int] = field(default_factory=list)

    def describe(self, max_length: int) -> str:
        return (
            f"{self.total} records: {self.truncated} truncated to {max_length} tokens, "
            f"{self.dropped} dropped (no answer token left within {max_length})"
        )


def _render(tokenizer, messages, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    if isinstance(out, dict) or hasattr(out, "keys"):  # some versions return a BatchEncoding
        out = out["input_ids"]
    return list(out)


def encode_record(tokenizer, record: Record, index: int = 0) -> Encoded:
    """Token ids and labels (answer tokens only, prompt tokens = -100) for one record."""
    msgs = record["messages"]
    ids: list[int] = []
    labels: list[int] = []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        prompt = _render(tokenizer, msgs[:i], add_generation_prompt=True)
        full = _render(tokenizer, msgs[: i + 1], add_generation_prompt=False)
        if full[: len(prompt)] != prompt or prompt[: len(ids)] != ids:
            raise DataError(
                f"record {record.get('id', index)}: the chat template does not render prefixes consistently, "
                "so assistant tokens cannot be located for loss masking"
            )
        labels += [IGNORE] * (len(prompt) - len(ids)) + full[len(prompt) :]
        ids = full
    if not ids:
        raise DataError(f"record {record.get('id', index)}: no assistant turn to train on")
    return Encoded(ids, labels, index)


def encode_records(
    tokenizer, records: list[Record], max_length: int, truncation: str = "truncate"
) -> tuple[list[Encoded], EncodeStats]:
    """Encode all records; over-long ones are truncated (right) or dropped, and counted.

    A truncated sample that keeps no answer token is dropped too: it would add nothing to the
    loss. The caller shows ``stats.describe()``, so nothing is lost silently.
    """
    if truncation not in ("truncate", "drop"):
        raise DataError(f"truncation must be 'truncate' or 'drop', got {truncation!r}")
    stats = EncodeStats(total=len(records))
    out = []
    for i, r in enumerate(records):
        e = encode_record(tokenizer, r, i)
        if len(e.input_ids) > max_length:
            if truncation == "drop":
                stats.dropped += 1
                stats.dropped_indices.append(i)
                continue
            e = Encoded(e.input_ids[:max_length], e.labels[:max_length], i)
            stats.truncated += 1
            # labels are shifted by one in the loss: the first position's label is never used
            if not any(t != IGNORE for t in e.labels[1:]):
                stats.dropped += 1
                stats.dropped_indices.append(i)
                continue
        out.append(e)
    return out, stats


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest sample in the batch (dynamic padding), on the right."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "index": torch.tensor([e.index for e in batch])}


def pack(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A right-padded batch as one row holding every sequence back to back, without padding.

    Each sequence keeps its own position ids (0, 1, ...) and attends only to itself: the
    attention mask is 4-D and block-diagonal causal, so no token sees another sequence. The first
    label of each sequence is ignored (from the previous sequence's last token it would predict
    across the boundary; unpacked, position 0's label is never used either), so the loss sums
    over exactly the tokens the unpacked batch's does.
    """
    lengths = batch["attention_mask"].sum(1).tolist()
    ids = torch.cat([row[:n] for row, n in zip(batch["input_ids"], lengths)])
    labels = torch.cat([torch.cat([row[:1].new_full((1,), IGNORE), row[1:n]]) for row, n in zip(batch["labels"], lengths)])
    positions = torch.cat([torch.arange(n) for n in lengths])
    segment = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    mask = (segment[:, None] == segment[None, :]) & torch.ones(len(ids), len(ids), dtype=torch.bool).tril()
    return {"input_ids": ids[None], "labels": labels[None], "position_ids": positions[None],
            "attention_mask": mask[None, None], "index": batch["index"]}


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int, epoch: int, group_factor: int = 16
) -> list[list[int]]:
    """Shuffled batches of indices in which samples of similar length sit together.

    Shuffle, cut into mega-batches of ``group_factor`` batches, sort each by length, cut into
    batches, then shuffle the batch order: padding drops to near zero while the data order stays
    random across epochs. Deterministic in ``(seed, epoch)``, which is what makes resume exact.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    mega = batch_size * group_factor
    batches: list[list[int]] = []
    for start in range(0, len(idx), mega):
        chunk = sorted(idx[start : start + mega], key=lambda i: -lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class BatchStream:
    """An endless, resumable stream of collated micro-batches over encoded samples."""

    def __init__(self, samples: list[Encoded], batch_size: int, pad_id: int, seed: int, group_by_length: bool = True):
        if not samples:
            raise DataError("no training samples left after encoding")
        self.samples = samples
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.seed = seed
        self.group_by_length = group_by_length
        self.batches_per_epoch = math.ceil(len(samples) / batch_size)

    def _epoch(self, epoch: int) -> list[list[int]]:
        if self.group_by_length:
            return length_grouped_batches([len(s.input_ids) for s in self.samples], self.batch_size, self.seed, epoch)
        rng = random.Random(self.seed * 1_000_003 + epoch)
        idx = list(range(len(self.samples)))
        rng.shuffle(idx)
        return [idx[j : j + self.batch_size] for j in range(0, len(idx), self.batch_size)]

    def iterate(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """Micro-batches from position ``start`` (counted in micro-batches since the beginning)."""
        epoch, offset = divmod(start, self.batches_per_epoch)
        while True:
            for b in self._epoch(epoch)[offset:]:
                yield collate([self.samples[i] for i in b], self.pad_id)
            epoch, offset = epoch + 1, 0
