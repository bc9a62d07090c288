"""The parent's side of the sandbox: start the bootstrap, read its output, kill what it left.

The child is ``sys.executable -I -B -X utf8 child.py CFG`` in a new session. Its stdout and
stderr are read as they come (only a bounded tail is kept); a pipe tells the supervisor when
set-up is done and which layers are active. On the wall-clock timeout, and after every run,
everything the child started is SIGKILLed: its process group, every process of its session,
and (given a dedicated uid) every process of that uid. Where the child got a PID namespace the
kernel already killed everything in it when its init ended; the sweep is the fallback.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import time

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
_UID_BASE = 2_000_000  # dedicated uids are drawn from [_UID_BASE, _UID_BASE + 1_000_000)
_GRACE_S = 2.0  # after the child is gone, how long to wait for its pipes to close


def pick_uid() -> int:
    """An unused uid/gid for the child (as root): real isolation from every other process."""
    used = set()
    for pid in _pids():
        ids = _status_ids(pid)
        if ids:
            used.update(ids)
    while True:
        uid = _UID_BASE + secrets.randbelow(1_000_000)  # not `random`: callers seed it
        if uid not in used:
            return uid


def child_env(box: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": box,
        "TMPDIR": box,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas would eat the RLIMIT_AS budget
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def supervise(box: str, uid: int | None, cfg: dict, *, timeout_s: float, max_output: int, start: float):
    """Run the bootstrap on ``cfg``; returns ``(status, returncode, stdout, stderr, ready)``.

    ``ready`` is what the bootstrap reported once set-up finished (its layers), None if it never
    finished: then the status is "error", whatever the exit code.
    """
    ready_r, ready_w = os.pipe()
    cfg["ready_fd"] = ready_w
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-X", "utf8", CHILD, json.dumps(cfg)],
            cwd=box,
            env=child_env(box),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(ready_w,),
            start_new_session=True,
            close_fds=True,
        )
    except BaseException:
        os.close(ready_r)
        os.close(ready_w)
        raise
    os.close(ready_w)
    pidfd = None
    bufs = {"out": bytearray(), "err": bytearray(), "ready": bytearray()}
    sel = selectors.DefaultSelector()
    timed_out = False
    try:
        sel.register(proc.stdout.fileno(), selectors.EVENT_READ, "out")
        sel.register(proc.stderr.fileno(), selectors.EVENT_READ, "err")
        sel.register(ready_r, selectors.EVENT_READ, "ready")
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        except (AttributeError, OSError):
            pidfd = None
        deadline = start + timeout_s
        while not _exited(proc):
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            _pump(sel, bufs, max_output, timeout=min(left, 0.05) if pidfd is None else left)
        # Whatever it left behind (or everything, on a timeout) dies before the child is reaped,
        # so its pid still names its process group and session.
        kill_tree(proc.pid, uid)
        if pidfd is not None:
            sel.unregister(pidfd)
        grace = time.monotonic() + _GRACE_S
        while any(k.data in bufs for k in sel.get_map().values()) and time.monotonic() < grace:
            _pump(sel, bufs, max_output, timeout=0.05)
            kill_tree(proc.pid, uid)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # an exception above: never leave the tree behind
            kill_tree(proc.pid, uid)
            proc.wait()
        sel.close()
        for fd in (ready_r, pidfd):
            if fd is not None:
                os.close(fd)
        proc.stdout.close()
        proc.stderr.close()
    out = _tail(bufs["out"], max_output).decode("utf-8", "replace")
    err = _tail(bufs["err"], max_output).decode("utf-8", "replace")
    try:
        ready = json.loads(bytes(bufs["ready"]).decode()) if bufs["ready"] else None
    except ValueError:
        ready = None
    if not ready:
        status = "error"  # the bootstrap never handed over: not the program's fault
    elif timed_out:
        status = "timeout"
    elif returncode == 0:
        status = "passed"
    elif returncode < 0:
        status = "killed"
    else:
        status = "failed"
    return status, returncode, out, err, ready


def _pump(sel, bufs, max_output, timeout):
    for key, _ in sel.select(timeout=timeout):
        if key.data == "exit":
            continue
        try:
            chunk = os.read(key.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            sel.unregister(key.fd)
            continue
        buf = bufs[key.data]
        buf += chunk
        if key.data != "ready" and len(buf) > 2 * max_output + 65536:
            del buf[:len(buf) - max_output]
        elif key.data == "ready" and len(buf) > 65536:
            del buf[65536:]


def _tail(buf: bytearray, n: int) -> bytes:
    return bytes(buf[max(0, len(buf) - n):])


def _exited(proc: subprocess.Popen) -> bool:
    """Has the child ended? (without reaping it, so its pid cannot be reused yet)"""
    if not hasattr(os, "waitid"):  # not Linux: reaps, a tiny window for pid reuse
        return proc.poll() is not None
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _pids():
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    return [int(n) for n in names if n.isdigit()]


def _status_ids(pid: int) -> tuple[int, ...] | None:
    """The real and effective uid of ``pid``, from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return tuple(int(x) for x in line.split()[1:3])
    except (OSError, ValueError):
        return None
    return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, process group, session id)`` of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0].decode(), int(fields[2]), int(fields[3])
    except (OSError, ValueError, IndexError):
        return None


def kill_tree(pid: int, uid: int | None) -> None:
    """SIGKILL the child (``pid``, not yet reaped), its process group and session and, given a
    dedicated uid, all that uid's processes. Repeated until a pass finds nothing alive, so a
    fork bomb cannot outrun it.
    """
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if not sys.platform.startswith("linux"):
        return
    me = os.getpid()
    for _ in range(200):
        found = False
        for p in _pids():
            if p == me or p == pid:
                continue
            st = _stat(p)
            if st is None or st[0] in ("Z", "X"):  # gone, or a zombie waiting for its parent
                continue
            hit = pid in (st[1], st[2])
            if not hit and uid is not None:
                ids = _status_ids(p)
                hit = ids is not None and uid in ids
            if hit:
                try:
                    os.kill(p, signal.SIGKILL)
                    found = True
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.005)


def rmtree(path: str) -> None:
    """Remove the throwaway directory, whatever permissions the code left on it."""
    def retry(func, p, _exc):
        try:  # a directory the code made unreadable/unwritable: open it up and try again
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)
