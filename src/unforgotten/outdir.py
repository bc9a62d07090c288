"""Output directories: one writer at a time, and nothing half-made left behind by an error.

``claim(path)`` takes an exclusive ``fcntl.flock`` on the directory itself (no lock file to
leave behind; the kernel drops the lock when the process dies, so a killed run never leaves a
stale lock). A second run into the same directory gets a clear error instead of interleaving
its log and checkpoints with the first's. If the block fails and the directory did not exist
before, it is removed again unless it already holds a checkpoint or a result.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import OutputInUse, UserInputError

_held: dict[str, int] = {}  # realpath -> depth: claims nest within one process
_lock = threading.Lock()


def _first_missing(path: Path) -> Path | None:
    """The top-most ancestor of ``path`` (itself included) that does not exist yet."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


_RESULTS = ("**/checkpoints/step-*", "**/summary.json", "**/train_summary.json", "**/results.json")


def _worth_keeping(path: Path) -> bool:
    """Something a rerun would resume from or a user would want: a checkpoint or a result."""
    return any(next(path.glob(pattern), None) is not None for pattern in _RESULTS)


@contextlib.contextmanager
def claim(path: str | os.PathLike, *, wait: bool = False, waiting_note: Callable[[], None] | None = None) -> Iterator[Path]:
    """Hold ``path`` (created if missing) exclusively for the block. ``wait``: block until the
    holder is done instead of refusing (a cache two runs may fill at once); ``waiting_note`` is
    called once before blocking."""
    path = Path(path)
    created = _first_missing(path.absolute())
    key = os.path.realpath(path)
    with _lock:
        nested = key in _held
        _held[key] = _held.get(key, 0) + 1
    fd = None
    try:
        # under `accelerate launch` / torchrun every process is the same run: the main one locks
        if not nested and int(os.environ.get("RANK", "0")) == 0:
            fd = _lock_dir(path, wait, waiting_note)
        try:
            yield path
        except BaseException:
            if created is not None and not nested and not _worth_keeping(path):
                _remove(path, created)
            raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock
        with _lock:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]


def _remove(path: Path, created: Path) -> None:
    """Remove ``path`` (ours: we hold its lock), then the parents this claim created, up to
    ``created``, only while they are empty: another run may have started inside one meanwhile."""
    shutil.rmtree(path, ignore_errors=True)
    top = created.absolute()
    for parent in path.absolute().parents:
        if not (parent == top or top in parent.parents):
            break
        try:
            parent.rmdir()
        except OSError:
            break


def _lock_dir(path: Path, wait: bool, waiting_note: Callable[[], None] | None) -> int:
    while True:
        _make(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # its holder removed it just now: make it again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            if not wait:
                os.close(fd)
                raise OutputInUse(
                    f"output directory {path} is in use by another unforgotten run (it holds the "
                    "lock); wait for it to finish or choose another output_dir") from None
            if waiting_note is not None:
                waiting_note()
                waiting_note = None
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # we waited on a directory its holder then removed: take the new one


def _make(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserInputError(f"output directory {path}: a file of that name is in the way") from None
    except OSError as e:
        raise UserInputError(f"cannot create output directory {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserInputError(f"output directory {path} is not writable")
