"""Attacks on the code sandbox, each shown contained, and by which layer where it matters.

Each test names the attack of issue 18 it replays. Where a layer is switched off (``seccomp=False``,
``audit_hook=False``, ...) the test shows the layer beneath holds on its own.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
import uuid

import pytest
from procs import alive_with

from unforgotten.eval.sandbox import error_line, run_python, sandbox_layers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox targets Linux")

ROOT = os.geteuid() == 0


_alive_with = alive_with


def _need(layer: str) -> None:
    if layer not in sandbox_layers():
        pytest.skip(f"layer {layer!r} is not available here (layers: {sandbox_layers()})")


FORK_EXEC = textwrap.dedent("""\
    import os, subprocess
    r, w = os.pipe()
    try:
        subprocess._fork_exec(["/bin/sh", "-c", "echo PWNED"], [b"/bin/sh"], True, (), None, None,
                              -1, -1, -1, w, -1, -1, *os.pipe(), False, False, -1, None, None,
                              None, -1, None, False)
        os.close(w)
        print(os.read(r, 100).decode())
    except OSError as e:
        print("blocked", type(e).__name__, e.errno)
""")


def test_fork_exec_bypass_is_closed():
    r = run_python(FORK_EXEC, timeout_s=10)
    assert "PWNED" not in r.stdout_tail, r
    assert r.stdout_tail.startswith("blocked PermissionError"), r


def test_fork_exec_beneath_the_audit_hook_is_stopped_by_seccomp():
    _need("seccomp")
    r = run_python(FORK_EXEC, timeout_s=10, audit_hook=False)
    assert "PWNED" not in r.stdout_tail and r.stdout_tail.startswith("blocked"), r
    code = textwrap.dedent("""\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print("fork", libc.syscall(57 if os.uname().machine == "x86_64" else 220, 17, 0, 0, 0, 0))
        for f in (lambda: os.fork(), lambda: os.execv("/bin/sh", ["sh", "-c", "echo PWNED"]),
                  lambda: os.posix_spawn("/bin/sh", ["sh", "-c", "echo PWNED"], {})):
            try:
                f()
                print("RAN")
            except OSError as e:
                print("blocked", e.errno)
    """)
    r = run_python(code, timeout_s=10, audit_hook=False)
    assert r.status == "passed", r
    assert r.stdout_tail.split("\n")[:4] == ["fork -1", "blocked 1", "blocked 1", "blocked 1"], r
    assert "PWNED" not in r.stdout_tail


def test_ctypes_and_cffi_cannot_be_loaded():
    for code in ("import ctypes\nctypes.CDLL(None).getpid()", "import _ctypes",
                 "import _posixsubprocess\n_posixsubprocess.fork_exec()"):
        r = run_python(code, timeout_s=10)
        assert r.status == "failed" and "PermissionError" in r.stderr_tail, (code, r)


@pytest.mark.parametrize("drop_privileges", [True, False])
def test_setsid_grandchild_does_not_survive(drop_privileges):
    """Fork, setsid, fork again: the PID namespace's end kills it even without a dedicated uid
    (before: as a non-root user, or without the uid sweep, it survived)."""
    _need("pidns")
    marker = f"survivor-{uuid.uuid4().hex}"
    code = textwrap.dedent(f"""\
        import os, time
        print(os.getcwd(), flush=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open("{marker}", "w").close()
                time.sleep(60)
            os._exit(0)
        time.sleep(0.5)
    """)
    r = run_python(code, timeout_s=10, audit_hook=False, seccomp=False, drop_privileges=drop_privileges)
    assert r.status == "passed", r
    box = r.stdout_tail.splitlines()[0]
    assert "unforgotten-sbx-" in box
    assert _alive_with(box) == []


@pytest.mark.skipif(not ROOT, reason="capabilities matter when the evaluator runs as root")
def test_root_reads_neither_shadow_nor_0600_files():
    secret = f"SECRET-{uuid.uuid4().hex}"
    d = tempfile.mkdtemp()
    try:
        os.chmod(d, 0o755)
        private = os.path.join(d, "private.txt")
        with open(private, "w") as f:
            f.write(secret)
        os.chmod(private, 0o600)
        code = textwrap.dedent(f"""\
            for p in ("/etc/shadow", {private!r}, "/root/.bashrc"):
                try:
                    print(open(p).read())
                except OSError as e:
                    print("blocked", type(e).__name__)
        """)
        r = run_python(code, timeout_s=10)
        assert r.status == "passed", r
        assert r.stdout_tail.split("\n")[:3] == ["blocked FileNotFoundError"] * 3 or all(
            line.startswith("blocked") for line in r.stdout_tail.split("\n")[:3]), r
        assert secret not in r.stdout_tail + r.stderr_tail
        assert "root:" not in r.stdout_tail
    finally:
        os.remove(private)
        os.rmdir(d)


@pytest.mark.skipif(not ROOT, reason="capabilities matter when the evaluator runs as root")
def test_no_capability_is_left():
    """Every capability set is empty, so even a file the code owns but made mode 000 is
    unreadable (CAP_DAC_READ_SEARCH, kept before, read it)."""
    _need("no-caps")
    code = textwrap.dedent("""\
        import os
        sets = {}
        for line in open("/proc/self/status"):
            if line.startswith("Cap"):
                k, v = line.split(":")
                sets[k] = int(v, 16)
        print(sorted(k for k, v in sets.items() if v), len(sets))
        open("f", "w").write("mine")
        os.chmod("f", 0)
        try:
            print(open("f").read())
        except OSError as e:
            print("blocked", e.errno)
    """)
    r = run_python(code, timeout_s=10)
    assert r.status == "passed", r
    assert r.stdout_tail.split("\n")[:2] == ["[] 5", "blocked 13"], r


def test_total_bytes_written_are_capped():
    """600 MB in 30 MB files (each under RLIMIT_FSIZE): the directory's quota stops it."""
    _need("disk-quota")
    code = textwrap.dedent("""\
        import os
        total = 0
        chunk = b"x" * (1 << 20)
        try:
            for i in range(20):
                with open(f"f{i}", "wb") as f:
                    for _ in range(30):
                        f.write(chunk)
                        total += len(chunk)
        except OSError as e:
            print("stopped", e.errno, flush=True)
        print(total)
    """)
    r = run_python(code, timeout_s=30, disk_mb=16)
    assert r.status == "passed", r
    stopped, total = r.stdout_tail.split("\n")[:2]
    assert stopped == "stopped 28"  # ENOSPC
    assert int(total) <= 16 * (1 << 20)


def test_stored_error_line_is_bounded_and_scrubbed():
    token = "$6$" + "A1b2C3d4" * 12
    r = run_python(f"raise ValueError('leaked: {token} ' + 'y ' * 500)", timeout_s=10)
    assert r.status == "failed" and token in r.stderr_tail
    line = r.error_line
    assert line.startswith("ValueError: leaked: [redacted]") and len(line) <= 200
    assert token not in line and "\x1b" not in error_line("\x1b[31mboom\x1b[0m")
    assert run_python("pass").error_line == ""


def test_missing_layers_are_recorded_with_their_reason():
    """Degrade explicitly: with namespaces off, every layer that needs them says why it is
    missing (and, as root with the Python install under a private /root, that a capability was
    kept to read it)."""
    r = run_python("print('ok')", timeout_s=10, namespaces=False)
    assert r.status == "passed", r
    skipped = dict(item.split(": ", 1) for item in r.skipped)
    assert skipped.get("namespaces") == "switched off"
    assert "disk-quota" in skipped and "pidns" not in r.layers and "fs-view" not in r.layers
    if ROOT and "no-caps" not in r.layers:
        assert "CAP_DAC_READ_SEARCH" in skipped["no-caps"]
    r = run_python("print('ok')", timeout_s=10, seccomp=False, audit_hook=False)
    assert {"seccomp: switched off", "audit: switched off"} <= set(r.skipped)


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(not ROOT or not os.path.exists(SYSTEM_PYTHON) or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root to switch to an unprivileged user, setpriv and a system Python")
def test_as_an_unprivileged_user_every_layer_holds():
    """The evaluator run by an ordinary user (here: nobody, with the system's Python, which that
    user can read): a user namespace carries the PID/mount/net layers, no capability is left, and
    a setsid'd grandchild does not survive (before: it did, as a non-root user)."""
    import subprocess

    import unforgotten

    src = os.path.dirname(os.path.dirname(os.path.abspath(unforgotten.__file__)))
    probe = textwrap.dedent(f"""\
        import json, os, sys
        sys.path.insert(0, {src!r})
        from unforgotten.eval.sandbox import run_python
        code = '''import os, time
        print(os.getcwd(), flush=True)
        caps = [l for l in open("/proc/self/status") if l.startswith("Cap") and int(l.split()[1], 16)]
        print(len(caps), flush=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        time.sleep(0.5)'''
        r = run_python(code, timeout_s=10, audit_hook=False, seccomp=False)
        print(json.dumps({{"uid": os.getuid(), "status": r.status, "layers": r.layers, "out": r.stdout_tail,
                          "err": r.stderr_tail[-300:]}}))
    """)
    res = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          SYSTEM_PYTHON, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    if "userns" not in got["layers"]:
        pytest.skip(f"no unprivileged user namespaces here: {got}")
    assert got["uid"] == 65534 and got["status"] == "passed", got
    assert {"pidns", "fs-view", "netns", "no-caps"} <= set(got["layers"]), got
    box, held = got["out"].split("\n")[:2]
    assert held == "0"
    assert alive_with(box) == []
