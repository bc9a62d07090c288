"""What the loop shares with methods: the model, the data, the step counter, the forward pass."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..data.schema import Record
from ..data.tokenize import IGNORE, BatchStream, Encoded, encode_records
from ..models import is_peft, reference as peft_reference


@dataclass
class StepOutputs:
    """A micro-batch's forward results, computed only where they are needed.

    ``logits`` has one row per label token (the LM head runs only at positions that have a
    label, which for chat data with long prompts saves most of the head's work); ``hidden`` is
    the last hidden state for all positions, present only when a method asks for it.
    """

    loss_sum: torch.Tensor  # summed CE over label tokens of this micro-batch
    n_tokens: int
    logits: torch.Tensor  # (n_label_tokens, vocab)
    targets: torch.Tensor  # (n_label_tokens,)
    label_mask: torch.Tensor  # (B, T-1) bool: which shifted positions have labels
    hidden: torch.Tensor | None = None  # (B, T, H)


MIN_SHARED_PREFIX = 16  # below this, a separate prefix pass costs more than it saves


def shared_prefix_length(batch: dict[str, torch.Tensor]) -> int:
    """Tokens every row of the batch starts with (no padding among them)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    same = (ids == ids[:1]).all(0) & mask.bool().all(0)
    return int(same.long().cumprod(0).sum())


def forward_with_labels(model, batch: dict[str, torch.Tensor], want_hidden: bool = False,
                        share_prefix: bool = False) -> StepOutputs:
    """Causal-LM forward computing logits only at positions whose next token has a label.

    We ask the model for logits at the union of label positions over the batch
    (``logits_to_keep`` as an index tensor), which keeps the call on the model's own forward (so
    wrappers such as DDP still see it), then select each row's own label positions.

    ``share_prefix``: when every row starts with the same tokens (a chat template's default
    system prompt, an instruction template), run that prefix once at batch size 1 and let every
    row attend to its keys and values through the cache. Gradients flow through the cache, so
    loss and gradients equal the plain forward's (tested to float tolerance); the only
    difference is that LoRA dropout draws one mask for the shared prefix instead of one per row.
    """
    labels = batch["labels"]
    shift = labels[:, 1:]
    mask = shift != IGNORE
    keep = mask.any(0).nonzero().squeeze(1)
    n_rows, width = batch["input_ids"].shape
    # Share all but the last common token, whose hidden state predicts the first differing one.
    shared = shared_prefix_length(batch) - 1 if share_prefix and n_rows > 1 and not want_hidden else 0
    if shared >= MIN_SHARED_PREFIX and (keep.numel() == 0 or int(keep.min()) >= shared):
        prefix = model(input_ids=batch["input_ids"][:1, :shared], attention_mask=batch["attention_mask"][:1, :shared],
                       use_cache=True, logits_to_keep=1)
        cache = prefix.past_key_values
        cache.batch_repeat_interleave(n_rows)  # differentiable: gradients of all rows reach the prefix
        positions = torch.arange(shared, width, device=keep.device).unsqueeze(0).expand(n_rows, -1)
        out = model(input_ids=batch["input_ids"][:, shared:], attention_mask=batch["attention_mask"],
                    past_key_values=cache, position_ids=positions, logits_to_keep=keep - shared, use_cache=True)
    else:
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],  # 4-D block-diagonal for a packed batch
            position_ids=batch.get("position_ids"),
            logits_to_keep=keep,
            output_hidden_states=want_hidden,
            use_cache=False,
        )
    sel_targets = shift[:, keep]
    sel_mask = sel_targets != IGNORE
    logits = out.logits[sel_mask]
    targets = sel_targets[sel_mask]
    loss_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
    hidden = out.hidden_states[-1] if want_hidden else None
    return StepOutputs(loss_sum, int(targets.numel()), logits, targets, mask, hidden)


@dataclass
class TrainContext:
    model: torch.nn.Module
    tokenizer: Any
    config: TrainConfig
    output_dir: Path
    user_data: list[Record] = field(default_factory=list)
    safety_data: list[Record] | None = None
    base_source: str | None = None  # the pre-alignment model, for MagMax / SafeLoRA
    accelerator: Any = None
    optimizer: torch.optim.Optimizer | None = None
    step: int = 0  # optimizer steps done
    total_steps: int = 0  # optimizer steps this run will take
    progress: bool = True  # show progress bars (methods' long setup work follows the loop's flag)
    resuming: bool = False  # a checkpoint will be loaded: prepare_data may reuse what it wrote before
    user_micro_batches: int = 0  # user-data micro-batches consumed (not counting method-supplied ones)
    micro_fraction: float = 1.0  # this micro-batch's share of the step (for per-step terms)
    micro_batches: list[dict[str, torch.Tensor]] = field(default_factory=list)  # this step's, on CPU
    step_tokens: int = 0  # label tokens in this step's micro-batches (the task loss's denominator)
    log: Callable[[dict[str, Any]], None] = lambda rec: None
    last_record: dict[str, Any] = field(default_factory=dict)  # the latest step's log record (loss, lr, tokens)
    stop_requested: bool = False  # set by an on_step callback: checkpoint now and stop (see loop.TrainingStopped)
    _frozen_copy: torch.nn.Module | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, records: list[Record]) -> list[Encoded]:
        samples, _ = encode_records(self.tokenizer, records, self.config.max_length, self.config.truncation)
        return samples

    def stream(self, records: list[Record], batch_size: int | None = None, seed: int | None = None,
               group_by_length: bool | None = None) -> BatchStream:
        """A resumable batch stream over other records (replay buffers, safety data)."""
        pad = self.tokenizer.pad_token_id
        return BatchStream(
            self.encode(records), batch_size or self.config.batch_size, pad,
            self.config.seed if seed is None else seed,
            self.config.group_by_length if group_by_length is None else group_by_length,
        )

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, batch: dict[str, torch.Tensor], want_hidden: bool = False) -> StepOutputs:
        return forward_with_labels(self.model, self.to_device(batch), want_hidden, self.share_prefix)

    @property
    def share_prefix(self) -> bool:
        """``train.share_prefix``; when null, on for a CPU and off for a GPU (where the extra prefix
        pass cost more than it saved: issue 17). Off under gradient checkpointing, which keeps no
        key/value cache to share, and with several processes: whether a batch has a long enough
        shared prefix depends on each process's rows, and DDP needs the same forward calls on all."""
        if getattr(self.config, "gradient_checkpointing", False) or self.num_processes > 1:
            return False
        setting = self.config.share_prefix
        return self.device.type == "cpu" if setting is None else bool(setting)

    @contextlib.contextmanager
    def reference(self) -> Iterator[torch.nn.Module]:
        """The model before this fine-tune: the LoRA base with the adapter off, or a frozen copy."""
        model = self.unwrapped_model()
        if is_peft(model):
            with peft_reference(model) as m:
                yield m
            return
        if self._frozen_copy is None:
            raise RuntimeError("full fine-tuning: call ctx.snapshot_reference() in setup() before training")
        yield self._frozen_copy

    def snapshot_reference(self) -> None:
        """Full fine-tuning only: keep a frozen copy of the starting weights (costs one model)."""
        model = self.unwrapped_model()
        if not is_peft(model) and self._frozen_copy is None:
            self._frozen_copy = copy.deepcopy(model).eval().requires_grad_(False)

    @contextlib.contextmanager
    def setup_reference(self) -> Iterator[torch.nn.Module]:
        """The starting (aligned) model in eval mode, for targets computed in ``setup()``.

        LoRA: :meth:`reference` (the base with the adapter off, no copy). Full fine-tuning: the
        frozen copy when a method already snapshotted one, else the trainable model itself, which
        *is* the starting model while ``setup`` runs (so no copy is kept for the whole run). Use it
        only before the first step; afterwards use :meth:`reference`.
        """
        model = self.unwrapped_model()
        if is_peft(model) or self._frozen_copy is not None:
            with self.reference() as m:
                yield m
            return
        was_training = model.training
        model.eval()
        try:
            yield model
        finally:
            model.train(was_training)

    def base_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of the pre-alignment base model (``base_source``), by plain HF parameter name.

        For MagMax and SafeLoRA, which need the alignment's task vector ``W_aligned - W_base``.
        Loaded on demand and not kept: callers take what they need.
        """
        if not self.base_source:
            raise RuntimeError("this method needs the pre-alignment base model, but no base_source was given")
        from ..models import load_model

        base, _ = load_model(self.base_source)
        return {k: v.detach() for k, v in base.state_dict().items()}

    def aligned_state_dict(self) -> dict[str, torch.Tensor]:
        """The starting (aligned) weights by plain HF parameter name, without LoRA layers."""
        model = self.unwrapped_model()
        if is_peft(model):
            base = model.get_base_model()
            out = {}
            for k, v in base.state_dict().items():
                if "lora_" in k:
                    continue
                out[k.replace(".base_layer", "")] = v.detach()
            return out
        if self._frozen_copy is not None:
            return {k: v.detach() for k, v in self._frozen_copy.state_dict().items()}
        raise RuntimeError("full fine-tuning: call ctx.snapshot_reference() in setup() to keep the aligned weights")

    def unwrapped_model(self) -> torch.nn.Module:
        """The model without a DDP wrapper: methods' own forwards (Fisher, reference gradients)
        must not go through DDP's reducer."""
        return self.accelerator.unwrap_model(self.model) if self.accelerator is not None else self.model

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        """Trainable parameters by their name in the unwrapped model (the same in any process count)."""
        return {n: p for n, p in self.unwrapped_model().named_parameters() if p.requires_grad}

    # ---- several processes (accelerate launch / torchrun). Every process sees the same global
    # batches and trains on its own rows of them; whatever is computed over a whole buffer
    # (Fisher, stored targets, per-sample scores) is split into one block per process and joined.

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes if self.accelerator is not None else 1

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index if self.accelerator is not None else 0

    @property
    def is_main(self) -> bool:
        """The process that writes files (logs, checkpoints, weights, method reports)."""
        return self.process_index == 0

    def local_share(self, items: list) -> list:
        """This process's contiguous block of ``items``; the blocks, in process order, are ``items``."""
        n, w, r = len(items), self.num_processes, self.process_index
        return items[n * r // w : n * (r + 1) // w]

    def local_rows(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This process's rows of a global batch. A process left without a row (a global batch
        smaller than the process count) gets a copy of row 0 with no labels: it adds nothing to
        any loss, and the gradient all-reduce still finds every process."""
        rows = self.local_share(list(range(len(batch["input_ids"]))))
        if rows:
            return {k: v[rows] for k, v in batch.items()}
        out = {k: v[:1].clone() for k, v in batch.items()}
        out["labels"].fill_(IGNORE)
        return out

    @contextlib.contextmanager
    def main_process_first(self) -> Iterator[None]:
        """The main process runs the block first (writing a cache), then the others (reading it)."""
        if self.num_processes == 1:
            yield
            return
        with self.accelerator.main_process_first():
            yield

    def sum_across(self, x):
        """``x`` (a number or a tensor) summed over processes; ``x`` itself in one process."""
        if self.num_processes == 1:
            return x
        t = torch.as_tensor(x).to(self.device)
        total = self.accelerator.reduce(t, reduction="sum")
        return total.to(x.device) if isinstance(x, torch.Tensor) else total.item()

    def cat_across(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate every process's ``t`` along dim 0, in process order (inverse of :meth:`local_share`)."""
        if self.num_processes == 1:
            return t
        acc, home = self.accelerator, t.device
        sizes = acc.gather(torch.tensor([t.shape[0]], device=self.device)).tolist()
        padded = acc.pad_across_processes(t.to(self.device), dim=0)
        joined = acc.gather(padded.contiguous())
        width = padded.shape[0]
        return torch.cat([joined[i * width : i * width + s] for i, s in enumerate(sizes)]).to(home)
