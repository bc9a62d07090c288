"""Periodic checkpoints with everything a resumed run needs to continue bit for bit.

A checkpoint holds the trainable weights (safetensors), optimizer and scheduler state, the RNG
states (dropout!), the step counter and the methods' own state. It is written to a temporary
directory and renamed, so a crash mid-write never leaves a half checkpoint that looks whole.

With several processes every process calls :func:`save` and :func:`load`: the main process
writes the weights (gathered whole if they are sharded), scheduler and method state; each
process writes its own optimizer state and RNG states (``process-N.pt``: dropout masks differ
per process, and a sharded optimizer holds only its shard), and reads them back on resume.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

KEEP = 2  # checkpoints kept on disk


def checkpoint_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "checkpoints"


def latest(output_dir: Path) -> Path | None:
    root = checkpoint_dir(output_dir)
    found = sorted(p for p in root.glob("step-*") if (p / "state.json").is_file()) if root.is_dir() else []
    return found[-1] if found else None


def whole(t: torch.Tensor) -> torch.Tensor:
    """A parameter as one whole CPU tensor (a sharded DTensor is gathered: every process must call)."""
    t = t.detach()
    if hasattr(t, "full_tensor"):
        t = t.full_tensor()
    return t.cpu().contiguous()


def save(output_dir: Path, step: int, model, optimizer, scheduler, methods: list, fingerprint: str,
         user_micro_batches: int | None = None, accelerator=None) -> Path:
    rank = accelerator.process_index if accelerator is not None else 0
    barrier = accelerator.wait_for_everyone if accelerator is not None else (lambda: None)
    model = accelerator.unwrap_model(model) if accelerator is not None else model  # names without "module."
    root = checkpoint_dir(output_dir)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    weights = {n: whole(p) for n, p in model.named_parameters() if p.requires_grad}  # every process: may gather
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    barrier()
    try:
        _write_process(tmp, rank, optimizer)
        barrier()
        if rank == 0:
            _write(tmp, step, weights, scheduler, methods, fingerprint, user_micro_batches)
    # disk full, quota, permissions (OSError; safetensors' 'unexpected pos' and torch.save's
    # 'failed writing file' are not OSErrors): no half checkpoint left, and say where
    except Exception as e:  # noqa: BLE001
        shutil.rmtree(tmp, ignore_errors=True)
        from ..errors import UnforgottenError

        last = latest(output_dir)
        raise UnforgottenError(
            f"could not write checkpoint {final}: {getattr(e, 'strerror', None) or e} (temporary files removed; "
            f"{'the last checkpoint ' + str(last) + ' is intact' if last else 'no earlier checkpoint'})"
        ) from e
    if rank == 0:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in sorted(p for p in root.glob("step-*"))[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def _write_process(tmp: Path, rank: int, optimizer) -> None:
    """This process's own state: its optimizer (a shard of it under FSDP) and its RNG states."""
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                # dropout on a GPU draws from the CUDA generators, not the CPU one
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        },
        tmp / f"process-{rank}.pt",
    )


def _write(tmp: Path, step: int, weights: dict[str, torch.Tensor], scheduler, methods: list, fingerprint: str,
           user_micro_batches: int | None) -> None:
    save_file(weights, str(tmp / "trainable.safetensors"))
    torch.save({"scheduler": scheduler.state_dict(), "methods": [m.state_dict() for m in methods]},
               tmp / "training_state.pt")
    (tmp / "state.json").write_text(
        json.dumps({"step": step, "fingerprint": fingerprint, "user_micro_batches": user_micro_batches})
    )


def load(path: Path, model, optimizer, scheduler, methods: list, accelerator=None) -> dict[str, Any]:
    """Restore everything saved by :func:`save` (in this process); returns the state.json contents."""
    meta = json.loads((path / "state.json").read_text())
    model = accelerator.unwrap_model(model) if accelerator is not None else model
    weights = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise RuntimeError(f"checkpoint {path} has weights the model lacks: {missing[:5]}")
    with torch.no_grad():
        for n, w in weights.items():
            p = params[n]
            if hasattr(p, "to_local"):  # sharded: this process keeps its own block of the whole
                from torch.distributed.tensor import distribute_tensor

                w = distribute_tensor(w.to(p.dtype), p.device_mesh, p.placements).to_local()
                p = p.to_local()
            p.copy_(w)
    state = torch.load(path / "training_state.pt", weights_only=False)
    rank = accelerator.process_index if accelerator is not None else 0
    own = path / f"process-{rank}.pt"
    if own.is_file():
        state.update(torch.load(own, weights_only=False))
    elif rank != 0:
        raise RuntimeError(f"checkpoint {path} has no state for process {rank}: it was written by fewer processes")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for m, s in zip(methods, state["methods"]):
        m.load_state_dict(s)
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    cuda = state["rng"].get("cuda")  # absent in checkpoints written before it was saved
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return meta
