"""The sandbox's child bootstrap: ``python -I -B -X utf8 child.py CFG``, in the program's dir.

It confines itself, then runs ``main.py``. With a PID namespace the process tree is::

    bootstrap (outside the namespace: waits, relays the exit status)
      └─ init, pid 1 (waits for the program; when it ends the kernel kills the namespace)
           └─ program, pid 2 (new root, no capabilities, rlimits, seccomp, audit hook)

so nothing the program starts (a setsid'd grandchild included) outlives it, and killing the
bootstrap (the supervisor's timeout) takes init with it (parent-death signal). Without one, the
bootstrap is the program and the supervisor's session/uid sweep cleans up.
"""

from __future__ import annotations

import json
import os
import select  # before the namespaces: the install may become unreadable until the new root
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audit  # noqa: E402  (this file runs as a script: its siblings are top-level modules)
import confine  # noqa: E402

del sys.path[0]
sys.modules.pop("audit", None)
sys.modules.pop("confine", None)

PROGRAM = "main.py"
SETUP_ERROR_RC = 121  # the exit status when the sandbox could not be set up


def main(cfg: dict) -> None:
    import resource

    box = cfg["dir"]
    layers: list[str] = []
    skipped: dict[str, str] = {}
    try:
        with open(os.path.join(box, PROGRAM), encoding="utf-8", errors="surrogatepass") as f:
            source = f.read()
        lib = confine.libc()
        python = confine.python_paths()
        root = os.geteuid() == 0
        uid = cfg["uid"] if root else None
        ns = {"user": False, "mnt": False, "pid": False}
        if lib is None:
            skipped["kernel"] = "no libc through ctypes (not Linux?)"
        elif cfg["ns"]:
            ns = confine.enter_namespaces(lib, root, layers, skipped)
        else:
            skipped["namespaces"] = "switched off"
        new_root = None
        if ns["mnt"]:
            try:
                new_root = confine.build_root(lib, cfg, source, uid, python)
            except OSError as e:
                skipped["fs-view"] = str(e)
                skipped["disk-quota"] = "needs the fs-view layer"
                if confine.readonly_except(lib, box):
                    layers.append("readonly-fs")
        else:
            skipped.setdefault("disk-quota", "needs a mount namespace")
        if ns["pid"]:
            _split_off_init()  # returns in the program's process, pid 2 of the new namespace
            layers.append("pidns")
        if new_root is not None:
            confine.enter_root(lib, new_root, box, with_proc=ns["pid"])
            layers += ["fs-view", "disk-quota"]
        os.chdir(box)
        if lib is not None and (uid is not None or ns["user"]):
            python = [p for p in sys.path if p and os.path.isdir(p)]
            keep = new_root is None and uid is not None and not confine.world_readable(python)
            confine.drop_privileges(lib, uid, keep, layers, skipped)
        elif root:
            skipped["uid"] = "switched off" if cfg["uid"] is None else "no libc"
        if uid is not None or ns["user"]:
            resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
            layers.append("nproc")
        elif lib is not None and not root:  # best effort: a limit above what the user runs now
            n = _user_tasks(os.getuid()) + cfg["nproc"]
            resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
            layers.append("nproc~")
        if lib is not None:
            lib.prctl(confine.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            if not ns["pid"]:  # set after the uid change, which clears it
                lib.prctl(confine.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        import posixpath, socket, subprocess, traceback, types  # noqa: E401,F401  (before the limits)

        _set_rlimits(resource, cfg, layers)
        if lib is not None and cfg["seccomp"]:
            confine.install_seccomp(lib, layers, skipped)
        elif lib is not None:
            skipped["seccomp"] = "switched off"
        if cfg["audit"]:
            audit.install(box)  # last: it also forbids setrlimit
            layers.append("audit")
        else:
            skipped["audit"] = "switched off"
        audit.forget_c_access()
        os.write(cfg["ready_fd"], json.dumps({"layers": layers, "skipped": skipped}).encode())
        os.close(cfg["ready_fd"])
    except BaseException as e:
        sys.stderr.write(f"sandbox setup failed: {type(e).__name__}: {e} (layers so far: {layers}; "
                         f"skipped: {skipped})\n")
        sys.stderr.flush()
        os._exit(SETUP_ERROR_RC)
    _run_code(source, os.path.join(box, PROGRAM))


def _split_off_init() -> None:
    """Fork init (pid 1 of the new PID namespace), which forks the program (pid 2) and returns
    there; the bootstrap and init only wait and pass the program's exit status up."""
    status_r, status_w = os.pipe()
    alive_r, alive_w = os.pipe()  # EOF on alive_r: the bootstrap is gone
    init = os.fork()
    if init:  # the bootstrap
        os.close(status_w)
        os.close(alive_r)
        _relay(init, status_r)
    os.close(status_r)
    os.close(alive_w)
    confine.libc().prctl(confine.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if select.select([alive_r], [], [], 0)[0]:  # the bootstrap died before the line above
        os._exit(SETUP_ERROR_RC)
    os.close(alive_r)
    program = os.fork()
    if program == 0:
        os.close(status_w)
        return
    status = None
    while True:  # init reaps every orphan until the program ends
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        if pid == program:
            status = st
            break
    if status is not None:
        os.write(status_w, str(status).encode())
    os._exit(0)  # the namespace dies with init


def _relay(init: int, status_r: int) -> None:
    os.close(sys.stdin.fileno()) if sys.stdin else None
    _, own = os.waitpid(init, 0)
    data = b""
    while chunk := os.read(status_r, 64):
        data += chunk
    code = os.waitstatus_to_exitcode(int(data)) if data else os.waitstatus_to_exitcode(own)
    if code < 0:  # the program died of a signal: so does the bootstrap, for the supervisor to see
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        os._exit(128 - code)
    os._exit(code if code != 0 or data else SETUP_ERROR_RC)


def _set_rlimits(resource, cfg: dict, layers: list[str]) -> None:
    def cap(which, value):
        if value is None:
            return
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            soft, hard = resource.getrlimit(which)
            if hard == resource.RLIM_INFINITY or value <= hard:
                resource.setrlimit(which, (value, hard))

    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_AS, cfg["as"])
    # CPU: SIGXCPU at the soft limit, SIGKILL at the hard one a second later.
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu"], cfg["cpu"] + 1))
    except (ValueError, OSError):
        cap(resource.RLIMIT_CPU, cfg["cpu"])
    cap(resource.RLIMIT_FSIZE, cfg["fsize"])
    cap(resource.RLIMIT_NOFILE, cfg["nofile"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    layers.append("rlimits")


def _user_tasks(uid: int) -> int:
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                text = f.read()
        except OSError:
            continue
        ids = threads = None
        for line in text.splitlines():
            if line.startswith(b"Uid:"):
                ids = line.split()[1:2]
            elif line.startswith(b"Threads:"):
                threads = line.split()[1]
        if ids and int(ids[0]) == uid:
            n += int(threads or 1)
    return n


def _run_code(source: str, path: str) -> None:
    import types

    main_mod = types.ModuleType("__main__")
    main_mod.__file__ = path
    main_mod.__builtins__ = __builtins__
    sys.modules["__main__"] = main_mod
    sys.argv = [path]
    try:
        code = compile(source, path, "exec")
        exec(code, main_mod.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        import traceback

        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != path:
            tb = tb.tb_next  # drop the bootstrap's own frames
        traceback.print_exception(type(e), e, tb if tb is not None else e.__traceback__)
        sys.stderr.flush()
        sys.exit(1)


if __name__ == "__main__" and len(sys.argv) == 2 and sys.argv[1].startswith("{"):
    main(json.loads(sys.argv[1]))
