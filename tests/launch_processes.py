"""Run a function in several CPU processes joined by a gloo group, as `accelerate launch` would.

accelerate's own ``debug_launcher`` forks the processes (no re-import, about a second) and joins
them through a file store (no fixed port, so concurrent test runs on one machine do not clash).
Each child starts from a fresh accelerate state: a forked child would otherwise inherit the
parent's single-process one.
"""

from __future__ import annotations

import functools
import os


def _child(fn, *args):
    import torch
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    torch.set_num_threads(1)
    fn(*args)


def run_processes(fn, *args, n: int = 2) -> None:
    """``fn(*args)`` in ``n`` processes; an exception in any of them fails the call."""
    from accelerate import debug_launcher

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # else accelerate sets 2 threads per process
    debug_launcher(functools.partial(_child, fn), args=args, num_processes=n)
