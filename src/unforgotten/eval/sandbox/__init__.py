"""Run generated Python in a separate, confined, throwaway process; never in the evaluator's.

``run_python(code)`` writes ``code`` to a fresh temporary directory and starts this package's
``child.py`` bootstrap there (``sys.executable -I -B -X utf8``, a new session, a minimal
environment), which confines itself layer by layer before it executes the code; the parent side
(``supervisor.py``) reads the output, enforces the wall clock and kills whatever is left. The
threat model and each layer (what it stops, what it needs from the kernel, how it degrades) are
in ``docs/security.md``; in short:

* ``pidns``      a PID namespace: when the code's init ends, the kernel kills every process in it
                 (setsid'd grandchildren included); the supervisor's session/uid sweep is the
                 fallback.
* ``netns``      an empty network namespace (plus IPC and UTS).
* ``fs-view``    a new root: an empty read-only tmpfs holding only the Python install, the
                 system libraries, a few /dev nodes and the program's own directory
                 (``readonly-fs``, every mount read-only but the directory, is the fallback).
* ``disk-quota`` the program's directory is a tmpfs of ``disk_mb``: total bytes written, not
                 only per file (RLIMIT_FSIZE).
* ``uid`` + ``no-caps``  as root: a dedicated unused uid, every capability dropped (bounding,
                 ambient, effective, permitted, inheritable); ``userns`` when not root.
* ``nproc``, ``rlimits``  RLIMIT_NPROC, AS, CPU, FSIZE, NOFILE, CORE.
* ``seccomp``    a kernel filter: no execve/execveat, no fork (only threads), no ptrace, mount,
                 namespaces, io_uring, bpf: whatever Python trick reaches the syscall.
* ``audit``      a ``sys.addaudithook`` hook with readable errors for the same, and for
                 writes outside the directory, sockets, ctypes.

A layer the machine does not allow is skipped with its reason in ``SandboxResult.skipped``;
``sandbox_layers()`` says which are active here. Results keep only bounded output tails;
``SandboxResult.error_line`` is the one bounded, scrubbed line that is safe to store.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .supervisor import pick_uid, rmtree, supervise

__all__ = ["SandboxResult", "run_python", "run_many", "sandbox_layers", "error_line", "STATUSES"]

STATUSES = ("passed", "failed", "timeout", "killed", "error")

_PROGRAM = "main.py"  # the name the parent writes the code under (the child reads main.py)
ERROR_LINE_MAX = 200


@dataclass(frozen=True)
class SandboxResult:
    """How one sandboxed run ended.

    ``status``: "passed" (exit 0), "failed" (non-zero exit: an exception, an assertion,
    ``MemoryError`` under the memory limit, a blocked operation), "timeout" (killed at the wall
    clock limit), "killed" (ended by a signal: the CPU limit, a crash), or "error" (the sandbox
    itself could not start or set up: not the program's fault). ``returncode`` is the exit
    status (negative: the signal), None if the process never started. ``stdout_tail`` and
    ``stderr_tail`` hold the last ``max_output`` bytes of each stream, decoded as UTF-8.
    ``seconds`` is the wall time of the whole run. ``layers`` are the isolation layers that were
    active (empty when set-up did not finish); ``skipped`` says, per missing layer, why.
    """

    status: str
    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    seconds: float
    layers: tuple[str, ...] = field(default=())
    skipped: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def error_line(self) -> str:
        """What to store about a failure: see :func:`error_line`."""
        return error_line(self.stderr_tail) if self.status != "passed" else ""


# a run of 24+ characters of hash/key alphabets (password hashes, tokens, base64 key material)
_SECRETISH = re.compile(r"[A-Za-z0-9+/=$._\-]{24,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def error_line(stderr: str, limit: int = ERROR_LINE_MAX) -> str:
    """The last non-empty line of ``stderr`` (normally ``Type: message``), scrubbed: control
    characters removed, long token-like runs replaced by ``[redacted]``, at most ``limit``
    characters. Whatever the code read, at most this much of it reaches stored results."""
    lines = [ln for ln in (stderr or "").splitlines() if ln.strip()]
    line = _CONTROL.sub("", lines[-1].strip()) if lines else ""
    line = _SECRETISH.sub("[redacted]", line)
    return line if len(line) <= limit else line[:limit - 1] + "…"


def run_python(
    code: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int | None = 1024,
    max_processes: int = 64,
    cpu_s: float | None = None,
    fsize_mb: int = 64,
    disk_mb: int = 64,
    max_output: int = 64 * 1024,
    audit_hook: bool = True,
    namespaces: bool = True,
    drop_privileges: bool = True,
    seccomp: bool = True,
) -> SandboxResult:
    """Run ``code`` as ``__main__`` in a sandboxed child process; see the module docstring.

    ``timeout_s`` is wall clock, from start to kill. ``memory_mb`` caps the address space
    (None: no cap). ``max_processes`` is RLIMIT_NPROC (tasks, threads included) where the kernel
    enforces it; forking is blocked by seccomp and the audit hook anyway. ``cpu_s`` caps CPU
    seconds (default ``ceil(timeout_s) + 1``). ``fsize_mb`` caps the size of any file written,
    ``disk_mb`` all bytes written together (where the ``disk-quota`` layer is active).
    ``max_output`` bytes of each of stdout and stderr are kept (the tail). ``audit_hook``,
    ``namespaces``, ``drop_privileges`` and ``seccomp`` switch single layers off; they exist so
    tests can check the layers beneath; leave them on.
    """
    if isinstance(code, bytes):
        code = code.decode("utf-8", "replace")
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    if not timeout_s or timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
    if max_processes < 1:
        raise ValueError(f"max_processes must be >= 1, got {max_processes!r}")
    if max_output < 0:
        raise ValueError(f"max_output must be >= 0, got {max_output!r}")
    if disk_mb < 1:
        raise ValueError(f"disk_mb must be >= 1, got {disk_mb!r}")
    if cpu_s is None:
        cpu_s = int(timeout_s + 0.999) + 1
    start = time.monotonic()
    outer = None
    try:
        # outer/work: the program's directory; outer/root: where the child builds its new root
        outer = os.path.realpath(tempfile.mkdtemp(prefix="unforgotten-sbx-"))
        box = os.path.join(outer, "work")
        os.mkdir(box, 0o700)
        os.mkdir(os.path.join(outer, "root"), 0o700)
        uid = pick_uid() if drop_privileges and os.geteuid() == 0 else None
        path = os.path.join(box, _PROGRAM)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(code)
        if uid is not None:
            for p in (outer, box, path):
                os.chown(p, uid, uid)
        os.chmod(outer, 0o700)
        cfg = {
            "dir": box,
            "root": os.path.join(outer, "root"),
            "uid": uid,
            "as": int(memory_mb) * 1024 * 1024 if memory_mb else None,
            "cpu": max(1, int(cpu_s + 0.999)),
            "nproc": int(max_processes),
            "fsize": int(fsize_mb) * 1024 * 1024,
            "disk": int(disk_mb) * 1024 * 1024,
            "nofile": 1024,
            "audit": bool(audit_hook),
            "ns": bool(namespaces),
            "seccomp": bool(seccomp),
        }
        status, rc, out, err, ready = supervise(box, uid, cfg, timeout_s=timeout_s,
                                                max_output=max_output, start=start)
        layers = tuple(ready.get("layers", ())) if ready else ()
        skipped = tuple(f"{k}: {v}" for k, v in ready.get("skipped", {}).items()) if ready else ()
        return SandboxResult(status, rc, out, err, time.monotonic() - start, layers, skipped)
    except Exception as e:  # infrastructure: the temp dir, the fork, the pipes
        return SandboxResult("error", None, "", f"sandbox error: {type(e).__name__}: {e}",
                             time.monotonic() - start)
    finally:
        if outer is not None:
            rmtree(outer)


def run_many(programs: Iterable[str], *, workers: int = 2, **limits) -> list[SandboxResult]:
    """``run_python`` over ``programs`` on a thread pool of ``workers``, results in order.

    Each program still runs in its own sandboxed process; ``limits`` go to ``run_python``.
    """
    programs = list(programs)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if workers == 1 or len(programs) <= 1:
        return [run_python(p, **limits) for p in programs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(programs))) as pool:
        return list(pool.map(lambda p: run_python(p, **limits), programs))


_PROBE: SandboxResult | None = None


def _probe() -> SandboxResult:
    global _PROBE
    if _PROBE is None:
        r = run_python("pass", timeout_s=30)
        if r.status != "passed":
            return r
        _PROBE = r
    return _PROBE


def sandbox_layers() -> tuple[str, ...]:
    """The isolation layers a default ``run_python`` gets on this machine (probed once)."""
    return _probe().layers


def sandbox_skipped() -> tuple[str, ...]:
    """The layers a default ``run_python`` cannot have on this machine, each with its reason."""
    return _probe().skipped
