"""THE training loop. Every method runs inside it through hooks; nothing else steps an optimizer.

Read top to bottom:
  1. methods prepare the data, records are encoded (over-long ones truncated or dropped, counted)
  2. AdamW + cosine schedule with warmup, on HF accelerate
  3. methods set up (Fisher, anchors, buffers) at the starting weights; a resumed run then loads
     its checkpoint over that, so setup never sees half-trained weights
  4. per optimizer step: accumulate micro-batches (loss = token mean over the whole step, so
     accumulation 2 x batch 2 equals accumulation 1 x batch 4), method losses, backward;
     before_step hooks see the full, unclipped, reduced gradient; clip; step; after_step hooks
  5. checkpoints every ``save_every`` steps; the final adapter / model in safetensors

Several processes (``accelerate launch``): every process draws the same global batches of
``batch_size x processes`` rows and trains on its own rows; the token mean is over the whole
step on all processes, so 2 processes x batch 2 equal 1 process x batch 4. Only the main
process writes files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import TrainConfig, to_dict
from ..data.schema import Record
from ..data.tokenize import IGNORE, BatchStream, EncodeStats, encode_records, pack
from ..errors import TrainingDiverged, UserInputError
from ..models import is_peft
from ..progress import progress_bar
from . import checkpoint
from .context import TrainContext

if TYPE_CHECKING:  # pragma: no cover
    from ..methods.base import Method  # methods import train/context.py; the loop only runs them

console = Console(stderr=True)


class TrainingStopped(Exception):
    """Raised after ``on_step`` set ``ctx.stop_requested``: a checkpoint at ``step`` was kept, so
    a later ``resume=True`` run continues exactly there (a paused or cancelled service job)."""

    def __init__(self, step: int):
        super().__init__(f"training stopped at step {step} on request; checkpoint kept")
        self.step = step


@dataclass
class TrainResult:
    output_dir: Path
    weights_dir: Path  # adapter/ (LoRA) or model/ (full fine-tuning)
    steps: int
    final_loss: float
    tokens_per_s: float
    encode_stats: EncodeStats
    resumed_from: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None  # the trained model as saved (finalize hooks may have replaced it)


def _fingerprint(cfg: TrainConfig, records: list[Record]) -> str:
    """Identifies the run a checkpoint belongs to: resuming with other settings or data is refused."""
    h = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True, default=str).encode())
    for r in records:
        h.update(json.dumps(r["messages"], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _label_tokens(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def _labelled_rows(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE).any(1).sum())


def _refuse_unshardable(accelerator, params: list[torch.Tensor], methods: list[Method]) -> None:
    from accelerate.utils import DistributedType

    sharded = accelerator.distributed_type == DistributedType.DEEPSPEED or any(hasattr(p, "device_mesh") for p in params)
    refused = [m.name for m in methods if not m.shardable]
    if sharded and refused:
        raise UserInputError(
            f"method(s) {', '.join(refused)} cannot train with sharded weights (FSDP / DeepSpeed ZeRO): they take "
            "their own gradients or penalize / edit whole weights; launch them with data parallelism "
            "(configs/accelerate/ddp.yaml), which every method supports"
        )


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log records of steps up to ``step`` (the checkpoint resumed from); atomic."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except ValueError:
            continue  # a line cut short by the kill
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)


def _grad_norm(params) -> float:
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def _diverged(output_dir: Path, step: int, what: str, value: Any) -> None:
    last = checkpoint.latest(output_dir)
    kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written before it"
    raise TrainingDiverged(
        f"training diverged at step {step}: {what} is not finite ({value}); stopped before the "
        f"optimizer step, no weights saved; {kept}. Lower train.lr or check the data and method arguments")


def mixed_precision(precision: str) -> str:
    """accelerate's mixed_precision for ``train.precision`` (its autocast wraps the model's forward;
    fp16 adds a loss scaler, whose scale A-GEM's and OGPSA's projections do not depend on)."""
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


def _accelerator(precision: str):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate fixes the precision for the process's life; one process may train at several
    # (the align step, then a fine-tune): start its state over, keeping the process group
    if AcceleratorState._shared_state.get("_mixed_precision", precision) != precision:
        AcceleratorState._reset_state()
    # accelerate joins CPU processes (gloo) only when told it runs on the CPU
    cpu_launch = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(mixed_precision=precision, cpu=cpu_launch)


def total_steps(cfg: TrainConfig, n_batches_per_epoch: int) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * n_batches_per_epoch / cfg.grad_accum))


def train(
    model,
    tokenizer,
    records: list[Record],
    cfg: TrainConfig,
    output_dir: str | Path,
    *,
    methods: list[Method] | None = None,
    safety_data: list[Record] | None = None,
    base_source: str | None = None,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[TrainContext], None] | None = None,
    on_start: Callable[[], None] | None = None,
    accelerator=None,
) -> TrainResult:
    """Fine-tune ``model`` (already LoRA-wrapped, or fully trainable) on ``records``.

    ``methods``: the hooks to run, built by the caller (``methods.build_methods(cfg.methods,
    cfg.method_args)``); None = plain SFT, which has no hooks.

    ``on_start`` runs once every check has passed (a resumed checkpoint's settings included),
    right before the first step: the caller writes its own records there, so a refused run
    changes nothing on disk.

    ``accelerator``: an ``accelerate.Accelerator`` set up by the caller; by default one is made
    from the environment (``accelerate launch`` configures DDP, FSDP or DeepSpeed through it).
    """
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if methods is None:
        if list(cfg.methods) != ["sft"]:  # the loop never builds methods: a silent SFT would be wrong
            raise UserInputError(f"train(): cfg.methods is {cfg.methods} but no methods= were passed; build them "
                                 "with unforgotten.methods.build_methods(cfg.methods, cfg.method_args)")
        methods = []
    for m in methods:
        if m.uses_safety_data() and not safety_data:
            raise UserInputError(f"method {m.name!r} needs safety data: set data.safety (and data.safety_size > 0)")
    set_seed(cfg.seed)
    accelerator = accelerator or _accelerator(mixed_precision(cfg.precision))
    ctx = TrainContext(model, tokenizer, cfg, output_dir, list(records), safety_data, base_source, accelerator)
    ctx.progress = progress and ctx.is_main
    ckpt = checkpoint.latest(output_dir) if resume else None
    ctx.resuming = ckpt is not None

    # 1. data
    data = list(records)
    for m in methods:
        data = m.prepare_data(ctx, data, safety_data)
    samples, stats = encode_records(tokenizer, data, cfg.max_length, cfg.truncation)
    if (stats.truncated or stats.dropped) and ctx.is_main:
        console.print(f"[yellow]max_length={cfg.max_length}: {stats.describe(cfg.max_length)}[/]")
    if not samples:
        raise UserInputError("no training samples left after encoding (all dropped as too long?)")
    # global batches (batch_size rows per process); each process takes its rows with ctx.local_rows
    stream = BatchStream(samples, cfg.batch_size * ctx.num_processes, tokenizer.pad_token_id, cfg.seed, cfg.group_by_length)
    n_steps = total_steps(cfg, stream.batches_per_epoch)
    ctx.total_steps = n_steps

    # 2. optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserInputError("the model has no trainable parameters")
    for p in params:  # fp32 master weights (a bf16 base's adapter included); autocast does the rest
        p.data = p.data.float()
    if cfg.gradient_checkpointing:  # non-reentrant: works with a frozen base and no input grads
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, math.ceil(cfg.warmup_ratio * n_steps), n_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    ctx.model, ctx.optimizer = model, optimizer
    params = [p for p in model.parameters() if p.requires_grad]  # FSDP replaced them by sharded ones
    _refuse_unshardable(accelerator, params, methods)
    if cfg.packing and any(not m.packable for m in methods):
        raise UserInputError(f"train.packing: method(s) {', '.join(m.name for m in methods if not m.packable)} "
                             "need the batch's rows; set train.packing: false for them")

    # 3. setup, then resume over it
    for m in methods:
        m.setup(ctx)
    fingerprint = _fingerprint(cfg, data)
    start = 0
    if ckpt is not None:
        meta = checkpoint.load(ckpt, model, optimizer, scheduler, methods, accelerator)
        if meta["fingerprint"] != fingerprint:
            raise UserInputError(
                f"{ckpt} belongs to a run with other settings or data; use a new output_dir or drop --resume"
            )
        start = meta["step"]
        ctx.user_micro_batches = meta.get("user_micro_batches", start * cfg.grad_accum)
        console.print(f"Resuming from {ckpt.name} (step {start}/{n_steps})")
    elif resume:
        console.print("[yellow]--resume: no checkpoint found, starting from scratch[/]")
    ctx.step = start
    if on_start is not None:
        on_start()

    # 4. steps
    want_hidden = any(m.needs_hidden_states for m in methods)
    log_path = output_dir / "train_log.jsonl"
    if start and ctx.is_main:  # steps logged after the checkpoint are redone: drop them, or they appear twice
        _truncate_log(log_path, start)
    log_file = open(log_path, "a" if start else "w") if ctx.is_main else None
    if log_file is not None:
        ctx.log = lambda rec: (log_file.write(json.dumps(rec) + "\n"), log_file.flush())
    batches = stream.iterate(ctx.user_micro_batches if start else 0)
    history: list[dict[str, Any]] = []
    tokens_seen, t0 = 0, time.perf_counter()
    bar = progress_bar(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not ctx.progress,
    )
    model.train()
    try:
        with bar:
            task = bar.add_task(f"train {'+'.join(m.name for m in methods)}", total=n_steps, completed=start, loss="-")
            for step in range(start, n_steps):
                source = None
                for m in methods:
                    source = m.batch_source(ctx) or source
                if source is None:
                    micro = [ctx.local_rows(next(batches)) for _ in range(cfg.grad_accum)]
                    ctx.user_micro_batches += cfg.grad_accum
                else:
                    micro = [ctx.local_rows(next(source)) for _ in range(cfg.grad_accum)]
                if cfg.packing:
                    micro = [pack(b) for b in micro]
                # the step's label tokens and examples on ALL processes: the loss is their token mean
                n_tok = ctx.sum_across(sum(_label_tokens(b) for b in micro))
                n_ex = ctx.sum_across(sum(_labelled_rows(b) for b in micro))
                ctx.micro_batches, ctx.step_tokens = micro, n_tok
                for m in methods:
                    m.start_step(ctx)
                task_sum = 0.0
                step_losses: list[float] = []
                for i, batch in enumerate(micro):
                    ctx.micro_fraction = _labelled_rows(batch) / n_ex
                    sync = contextlib.nullcontext() if i == len(micro) - 1 else accelerator.no_sync(model)
                    with sync:
                        out = ctx.forward(batch, want_hidden)
                        loss = out.loss_sum / n_tok
                        task_sum += float(out.loss_sum.detach())
                        for m in methods:
                            loss = m.loss(ctx, batch, out, loss)
                        step_losses.append(float(loss.detach()))
                        # DDP / FSDP average gradients over processes, but each process's loss is
                        # already its share of the whole step's: undo the mean
                        accelerator.backward(loss * ctx.num_processes)
                    tokens_seen += int((batch["labels"] != IGNORE).sum()) if cfg.packing else int(batch["attention_mask"].sum())
                task_sum = ctx.sum_across(task_sum)  # over all processes, which must all stop together:
                nonfinite = ctx.sum_across(sum(not math.isfinite(v) for v in step_losses))  # any one's
                if not math.isfinite(task_sum) or nonfinite:
                    _diverged(output_dir, step + 1, "the loss", task_sum if not math.isfinite(task_sum) else step_losses)
                for m in methods:
                    m.before_step(ctx)
                grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm > 0 else None
                norm = float(grad_norm) if grad_norm is not None else _grad_norm(params)
                if not math.isfinite(norm):
                    _diverged(output_dir, step + 1, "the gradient norm", norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                ctx.step = step + 1
                for m in methods:
                    m.after_step(ctx)
                rec = {
                    "step": ctx.step,
                    "loss": task_sum / n_tok,
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": float(grad_norm) if grad_norm is not None else None,
                    "tokens": tokens_seen,  # this process's
                    "elapsed_s": round(time.perf_counter() - t0, 3),
                }
                for m in methods:
                    rec.update(m.log_fields(ctx))
                history.append(rec)
                ctx.last_record = rec
                if ctx.step % cfg.log_every == 0 or ctx.step == n_steps:
                    ctx.log(rec)
                bar.update(task, advance=1, loss=f"{rec['loss']:.4f}")
                saved = bool(cfg.save_every) and ctx.step % cfg.save_every == 0 and ctx.step < n_steps
                if saved:
                    checkpoint.save(output_dir, ctx.step, model, optimizer, scheduler, methods, fingerprint,
                                    user_micro_batches=ctx.user_micro_batches, accelerator=accelerator)
                if on_step is not None:
                    on_step(ctx)
                    if ctx.stop_requested and ctx.step < n_steps:  # keep the place, then stop
                        if not saved:
                            checkpoint.save(output_dir, ctx.step, model, optimizer, scheduler, methods, fingerprint,
                                            user_micro_batches=ctx.user_micro_batches, accelerator=accelerator)
                        raise TrainingStopped(ctx.step)
    finally:
        if log_file is not None:
            log_file.close()

    # 5. finalize and save
    for m in methods:
        m.finalize(ctx)
    # finalize may have replaced the model (MagMax, SafeLoRA merge weights): save what ctx holds
    # every process takes part: sharded weights (FSDP's DTensors, DeepSpeed's partitions) are gathered
    state = {k: checkpoint.whole(v) for k, v in accelerator.get_state_dict(ctx.model).items()}
    model = accelerator.unwrap_model(ctx.model)
    ctx.model = model
    weights_dir = output_dir / ("adapter" if is_peft(model) else "model")
    bad = next((n for n, p in model.named_parameters() if p.requires_grad and not torch.isfinite(checkpoint.whole(p)).all()), None)
    if bad is not None:  # a finalize hook's merge went wrong: never publish a NaN model
        _diverged(output_dir, ctx.step, f"weight {bad} after {'+'.join(m.name for m in methods)} finalize", "nan/inf")
    if ctx.is_main:
        model.save_pretrained(weights_dir, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(weights_dir)
    model.eval()
    elapsed = time.perf_counter() - t0
    result = TrainResult(
        output_dir, weights_dir, n_steps, history[-1]["loss"] if history else float("nan"),
        tokens_seen / elapsed if elapsed > 0 else 0.0, stats, start, history, model,
    )
    if ctx.is_main:
        (output_dir / "train_summary.json").write_text(json.dumps({
            "steps": n_steps, "resumed_from": start, "final_loss": result.final_loss,
            "tokens_per_s": result.tokens_per_s, "samples": len(samples), "truncated": stats.truncated,
            "dropped": stats.dropped, "methods": [m.name for m in methods] or ["sft"], "weights": str(weights_dir),
            "processes": ctx.num_processes,
        }, indent=2))
    accelerator.wait_for_everyone()  # the others return once the main process has written everything
    return result
