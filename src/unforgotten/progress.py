"""Progress for long steps, on a terminal and in a plain log.

rich's progress bars draw only on a terminal: with stderr redirected to a file (nohup, CI, a
service's log) they print nothing, so a demo looks hung for minutes. ``progress_bar`` returns
rich's bar on a terminal and otherwise a ``PlainProgress`` with the same small API (``with``,
``add_task``, ``update``, ``advance``) that writes one plain line when a task starts, at most
every ``every`` seconds while it runs, and when it finishes:

    train sft: 12/108 (11%), loss 1.2345, 1m04s elapsed, ~8m32s left
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import Progress

PLAIN_EVERY_S = 30.0  # seconds between plain progress lines of one task


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class PlainProgress:
    """Plain-text progress lines for a stream that is not a terminal."""

    def __init__(self, *, file: TextIO | None = None, every: float = PLAIN_EVERY_S, show_fields: bool = True):
        self.file, self.every, self.show_fields = file, every, show_fields
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        for task_id, t in self.tasks.items():
            if not t["finished_printed"] and t["completed"] > t["start"]:
                self._print(task_id)  # the last state, even when the loop stopped early

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        task_id = len(self.tasks)
        now = time.monotonic()
        self.tasks[task_id] = {"description": description, "total": total, "completed": completed, "start": completed,
                               "fields": fields, "t0": now, "last": now, "finished_printed": False}
        self._print(task_id)
        return task_id

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None, **fields: Any) -> None:
        t = self.tasks[task_id]
        if completed is not None:
            t["completed"] = completed
        if advance:
            t["completed"] += advance
        t["fields"].update(fields)
        done = t["total"] is not None and t["completed"] >= t["total"]
        if done or time.monotonic() - t["last"] >= self.every:
            self._print(task_id)
            t["finished_printed"] = done

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _print(self, task_id: int) -> None:
        t = self.tasks[task_id]
        now = time.monotonic()
        t["last"] = now
        done, total = t["completed"], t["total"]
        parts = [f"{t['description']}: {done:g}/{total:g} ({100 * done / total:.0f}%)" if total else
                 f"{t['description']}: {done:g}"]
        if self.show_fields:
            parts += [f"{k} {v}" for k, v in t["fields"].items() if v not in (None, "", "-")]
        elapsed = now - t["t0"]
        parts.append(f"{_clock(elapsed)} elapsed")
        rate_done = done - t["start"]
        if total and 0 < rate_done and done < total:
            parts.append(f"~{_clock(elapsed / rate_done * (total - done))} left")
        print(", ".join(parts), file=self.file or sys.stderr, flush=True)


def progress_bar(*columns: Any, console: Console | None = None, disable: bool = False, transient: bool = False,
                 every: float = PLAIN_EVERY_S) -> Progress | PlainProgress:
    """rich's bar on a terminal; plain lines when the console is not one; nothing when disabled."""
    console = console or Console(stderr=True)
    if disable or console.is_terminal:
        return Progress(*columns, console=console, transient=transient, disable=disable)
    return PlainProgress(file=console.file, every=every)
