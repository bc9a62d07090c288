"""The sandbox for generated code (eval.sandbox) and HumanEval pass@1 on top of it (eval.code)."""

from __future__ import annotations

import gzip
import json
import math
import os
import socket
import sys
import textwrap
import time
import uuid

import pytest
from procs import alive_with

from unforgotten.eval import sandbox
from unforgotten.eval.code import extract_code, humaneval_program, pass_at_1, pass_at_k
from unforgotten.eval.sandbox import run_many, run_python, sandbox_layers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox targets Linux")


_alive_with = alive_with


def _box_of(result) -> str:
    """The sandbox directory a program printed as its first stdout line."""
    first = result.stdout_tail.splitlines()[0]
    assert "unforgotten-sbx-" in first, result
    return first


def test_passing_program_and_clean_directory():
    r = run_python("import os\nprint(os.getcwd())\nprint(os.environ['HOME'] == os.getcwd() == "
                   "os.environ['TMPDIR'])\nprint('hello')", timeout_s=10)
    assert r.status == "passed" and r.passed and r.returncode == 0, r
    box, same, hello = r.stdout_tail.splitlines()
    assert same == "True" and hello == "hello"
    assert not os.path.exists(box)  # the throwaway directory is gone
    assert "audit" in r.layers and "rlimits" in r.layers


def test_assertion_failure_is_failed():
    r = run_python("assert 1 + 1 == 3, 'wrong'", timeout_s=10)
    assert r.status == "failed" and r.returncode == 1
    assert "AssertionError: wrong" in r.stderr_tail
    assert "main.py" in r.stderr_tail and "line 1" in r.stderr_tail


def test_exit_code_and_syntax_error():
    assert run_python("import sys; sys.exit(3)").returncode == 3
    r = run_python("def f(:\n  pass")
    assert r.status == "failed" and "SyntaxError" in r.stderr_tail


def test_infinite_loop_times_out():
    t0 = time.monotonic()
    r = run_python("print('start', flush=True)\nwhile True: pass", timeout_s=1.5)
    wall = time.monotonic() - t0
    assert r.status == "timeout", r
    assert 1.4 <= r.seconds < 4 and wall < 5
    assert r.stdout_tail.strip() == "start"


def test_sleeping_program_times_out_on_wall_clock():
    r = run_python("import time\ntime.sleep(60)", timeout_s=1)
    assert r.status == "timeout" and r.seconds < 3.5


def test_cpu_limit_kills():
    r = run_python("while True: pass", timeout_s=15, cpu_s=1)
    assert r.status == "killed" and r.returncode < 0 and r.seconds < 10, r


def test_fork_bomb_is_stopped_by_the_audit_hook():
    r = run_python("import os\nprint(os.getcwd(), flush=True)\nwhile True: os.fork()", timeout_s=5)
    assert r.status == "failed" and "os.fork is not allowed" in r.stderr_tail, r
    assert r.seconds < 4
    assert _alive_with(_box_of(r)) == []


def test_fork_bomb_beneath_the_audit_hook_leaves_no_process():
    """With the hook and seccomp off, RLIMIT_NPROC under a dedicated uid caps it, and the kill
    sweeps all."""
    if "nproc" not in sandbox_layers():
        pytest.skip(f"RLIMIT_NPROC is not enforceable here (layers: {sandbox_layers()})")
    bomb = textwrap.dedent("""\
        import os
        print(os.getcwd(), flush=True)
        while True:
            try:
                if os.fork() == 0:
                    print(os.getpid(), flush=True)
            except OSError:
                pass
    """)
    r = run_python(bomb, timeout_s=1.5, max_processes=16, audit_hook=False, seccomp=False)
    assert r.status == "timeout", r
    children = [int(x) for x in r.stdout_tail.split()[1:] if x.isdigit()]
    assert 0 < len(children) < 16  # the kernel refused the rest
    assert _alive_with(_box_of(r)) == []


def test_memory_hogs_fail_and_the_parent_survives():
    r = run_python("x = bytearray(8 * 1024**3)", timeout_s=10)
    assert r.status == "failed" and "MemoryError" in r.stderr_tail, r
    r = run_python("x = []\nwhile True:\n    x.append(' ' * 10**6)", timeout_s=10, memory_mb=256)
    assert r.status in ("failed", "killed") and r.seconds < 9, r
    assert r.status == "killed" or "MemoryError" in r.stderr_tail
    assert run_python("print(sum(range(10)))").stdout_tail.strip() == "45"


def test_writes_outside_the_directory_are_blocked(tmp_path):
    escape = f"/tmp/unforgotten_escape_{uuid.uuid4().hex}"
    mine = tmp_path / "escape.txt"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    code = textwrap.dedent(f"""\
        import os, shutil
        for p in [{escape!r}, {str(mine)!r}]:
            try:
                open(p, "w").write("x")
                print("WROTE", p)
            except OSError as e:
                print("blocked", type(e).__name__)
        for op in (lambda: os.remove({str(victim)!r}), lambda: shutil.rmtree({str(tmp_path)!r}),
                   lambda: os.rename({str(victim)!r}, "stolen.txt")):
            try:
                op()
                print("CHANGED")
            except OSError as e:
                print("blocked", type(e).__name__)
        with open("inside.txt", "w") as f:
            f.write("inside ok")
        os.mkdir("sub")
        with open(os.path.join("sub", "f"), "a") as f:
            f.write("!")
        print(open("inside.txt").read())
    """)
    r = run_python(code, timeout_s=10)
    assert r.status == "passed", r
    assert "WROTE" not in r.stdout_tail and "CHANGED" not in r.stdout_tail
    assert r.stdout_tail.count("blocked PermissionError") == 5
    assert "inside ok" in r.stdout_tail
    assert not os.path.exists(escape) and not mine.exists()
    assert victim.read_text() == "keep"


def test_writes_outside_are_blocked_beneath_the_audit_hook(tmp_path):
    layers = sandbox_layers()
    if "readonly-fs" not in layers and "uid" not in layers:
        pytest.skip(f"no kernel-level file layer here (layers: {layers})")
    escape = f"/tmp/unforgotten_escape_{uuid.uuid4().hex}"
    code = (f"for p in [{escape!r}, {str(tmp_path / 'x')!r}]:\n"
            "    try:\n        open(p, 'w').write('x'); print('WROTE')\n"
            "    except OSError as e:\n        print('blocked', e.errno)\n"
            "open('inside.txt', 'w').write('ok')\nprint(open('inside.txt').read())")
    r = run_python(code, timeout_s=10, audit_hook=False)
    assert r.status == "passed" and "WROTE" not in r.stdout_tail and r.stdout_tail.endswith("ok\n"), r
    assert not os.path.exists(escape) and not (tmp_path / "x").exists()


@pytest.fixture
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.3)
    yield srv
    srv.close()


def _assert_no_connection(srv):
    with pytest.raises(OSError):  # TimeoutError: nobody connected
        conn, _ = srv.accept()
        conn.close()


def test_network_is_blocked(listener):
    port = listener.getsockname()[1]
    code = textwrap.dedent(f"""\
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("CONNECTED")
        except OSError as e:
            print("blocked", type(e).__name__)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.connect(("127.0.0.1", {port}))
            print("CONNECTED")
        except OSError as e:
            print("blocked", type(e).__name__)
        try:
            socket.getaddrinfo("localhost", {port})
            print("RESOLVED")
        except OSError as e:
            print("blocked", type(e).__name__)
    """)
    r = run_python(code, timeout_s=10)
    assert r.status == "passed", r
    assert r.stdout_tail.split("\n")[:3] == ["blocked PermissionError"] * 3
    _assert_no_connection(listener)


def test_network_is_blocked_beneath_the_audit_hook(listener):
    if "netns" not in sandbox_layers():
        pytest.skip(f"no network namespace here (layers: {sandbox_layers()})")
    port = listener.getsockname()[1]
    code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e.errno)")
    r = run_python(code, timeout_s=10, audit_hook=False)
    assert r.status == "passed" and "CONNECTED" not in r.stdout_tail, r
    _assert_no_connection(listener)


def test_subprocesses_are_blocked():
    r = run_python("import subprocess\nsubprocess.run(['echo', 'hi'])", timeout_s=10)
    assert r.status == "failed" and "hi" not in r.stdout_tail
    assert "subprocess.Popen is not allowed" in r.stderr_tail
    for code in ("import os\nos.system('echo hi')", "import os\nos.execv('/bin/echo', ['echo', 'hi'])",
                 "import _posixsubprocess\n_posixsubprocess.fork_exec()",
                 "import os\nos.posix_spawn('/bin/echo', ['echo', 'hi'], {})"):
        r = run_python(code, timeout_s=10)
        assert r.status == "failed" and "PermissionError" in r.stderr_tail, (code, r)
        assert "hi" not in r.stdout_tail


def test_parent_state_is_untouched():
    cwd, path, env = os.getcwd(), list(sys.path), dict(os.environ)
    code = ("import os, sys\nos.environ['UNFORGOTTEN_SBX_LEAK'] = '1'\nos.chdir('/')\n"
            "sys.path.insert(0, '/nowhere')\nLEAK = 1\nimport builtins\nbuiltins.LEAK = 1\n"
            "print(sorted(k for k in os.environ if 'TOKEN' in k or 'KEY' in k))")
    r = run_python(code, timeout_s=10)
    assert r.status == "passed" and r.stdout_tail.strip() == "[]", r  # minimal environment
    assert "UNFORGOTTEN_SBX_LEAK" not in os.environ and os.getcwd() == cwd
    assert sys.path == path and dict(os.environ) == env
    assert "LEAK" not in globals() and not hasattr(__builtins__, "LEAK")


def test_output_is_capped():
    r = run_python("import sys\nsys.stdout.write('x' * 10**7 + 'END')\nsys.stderr.write('e' * 10**6)",
                   timeout_s=20, max_output=1000)
    assert r.status == "passed"
    assert len(r.stdout_tail) == 1000 and r.stdout_tail.endswith("xEND")
    assert len(r.stderr_tail) == 1000


def test_run_many_keeps_order():
    rs = run_many([f"print({i})" for i in range(5)] + ["raise SystemExit(2)"], workers=2, timeout_s=10)
    assert [r.stdout_tail.strip() for r in rs[:5]] == [str(i) for i in range(5)]
    assert [r.status for r in rs] == ["passed"] * 5 + ["failed"]


def test_infrastructure_failure_is_error(monkeypatch):
    # The parent writes the program under another name than the child looks for: set-up fails.
    monkeypatch.setattr(sandbox, "_PROGRAM", "elsewhere.py")
    r = run_python("print(1)", timeout_s=10)
    assert r.status == "error" and "sandbox setup failed" in r.stderr_tail and r.layers == ()


# --------------------------------------------------------------------------- HumanEval

RECORD = {
    "id": "HumanEval/0",
    "entry_point": "has_close_elements",
    "code_prompt": (
        "from typing import List\n\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        '    """ Check if in given list of numbers, are any two numbers closer to each other than\n'
        "    given threshold.\n"
        "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n"
        "    False\n"
        '    """\n'
    ),
    "test": (
        "\n\nMETADATA = {'author': 'jt', 'dataset': 'test'}\n\n\n"
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n"
        "    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n"
        "    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 0.5) == False\n\n"
    ),
}
CANONICAL = (
    "    for idx, elem in enumerate(numbers):\n"
    "        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n"
    "                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n"
    "                    return True\n\n"
    "    return False\n"
)
FULL = ("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")
WRONG = "def has_close_elements(numbers, threshold):\n    return False\n"


def test_extract_code_fenced_unfenced_truncated():
    ep = "has_close_elements"
    answer = ("Example:\n```python\nprint(has_close_elements([1.0], 0.1))\n```\n"
              f"Solution:\n```python\n{FULL}```\n")
    assert extract_code(answer, ep) == FULL  # the block that defines the entry point
    assert extract_code(f"Sure!\n```\n{FULL}```", ep) == FULL  # bare fence
    assert extract_code(f"```py\n{FULL}```", ep) == FULL
    assert extract_code(f"Here:\n```python\n{FULL}    # cut off mid-", ep).startswith(FULL)  # truncated
    assert extract_code(FULL, ep) == FULL  # no fence: the raw text
    assert extract_code("```text\nno code\n```\n```python\nx = 1\n```", ep) == "no code\n"  # first block
    assert extract_code("  ```python\n  def has_close_elements(a, b):\n      return 1\n  ```", ep) == (
        "def has_close_elements(a, b):\n    return 1\n")  # indented fence, dedented
    assert extract_code(None, ep) == ""


def _run(record, response):
    return run_python(humaneval_program(record, response), timeout_s=10)


def test_humaneval_program_canonical_passes_wrong_fails():
    assert _run(RECORD, CANONICAL).status == "passed"  # a body completion
    # a chat answer that leaves out `from typing import List`: the prompt's imports are there
    chat = f"Here is the solution:\n\n```python\n{FULL}```\n\nIt compares every pair."
    program = humaneval_program(RECORD, chat)
    assert program.startswith("from typing import List") and program.rstrip().endswith(
        "check(has_close_elements)")
    assert _run(RECORD, chat).status == "passed"
    assert _run(RECORD, f"```python\n{WRONG}```").status == "failed"
    assert _run(RECORD, "I cannot help with that.").status == "failed"
    assert _run(RECORD, "").status == "failed"  # the prompt's stub returns None


def test_humaneval_program_strips_main_guard_and_hoists_future():
    answer = ("```python\nfrom __future__ import annotations\n" + FULL +
              "\nif __name__ == '__main__':\n    print(has_close_elements(eval(input()), 0.1))\n```")
    program = humaneval_program(RECORD, answer)
    assert program.startswith("from __future__ import annotations\n") and "input()" not in program
    assert _run(RECORD, answer).status == "passed"


def test_pass_at_1_flags(monkeypatch):
    responses = [f"```python\n{FULL}```", f"```python\n{WRONG}```", CANONICAL,
                 "```python\ndef has_close_elements(n, t):\n    while True: pass\n```"]
    flags, results = pass_at_1([RECORD] * 4, responses, workers=2, timeout_s=2)
    assert flags == [True, False, True, False]
    assert [r.status for r in results] == ["passed", "failed", "passed", "timeout"]
    monkeypatch.setattr(sandbox, "_PROGRAM", "elsewhere.py")  # the sandbox breaks: undecided
    flags, results = pass_at_1([RECORD], [CANONICAL])
    assert flags == [None] and results[0].status == "error"


def test_pass_at_k():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5)/C(10,5)
    assert pass_at_k(3, 2, 2) == 1.0 and pass_at_k(4, 0, 3) == 0.0 and pass_at_k(1, 1, 1) == 1.0
    for n in range(1, 12):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n)
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert 0.0 <= pass_at_k(200, 13, 100) <= 1.0  # large n stays finite (no huge binomials)
    for bad in ((0, 0, 1), (5, 6, 1), (5, 2, 0), (5, 2, 6), (5.0, 2, 1)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)


@pytest.mark.slow
def test_humaneval_canonical_solutions_all_pass():
    from conftest import SHARED_DATA

    from unforgotten.data import load_records

    path = SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} missing")
    records = load_records(path, require_response=None)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        canonical = {row["task_id"]: row["canonical_solution"] for row in map(json.loads, f)}
    assert len(records) == 164
    t0 = time.monotonic()
    flags, results = pass_at_1(records, [canonical[r["id"]] for r in records], workers=2)
    seconds = time.monotonic() - t0
    failed = [(r["id"], res.status, res.stderr_tail[-300:])
              for r, f, res in zip(records, flags, results) if f is not True]
    print(f"HumanEval canonical solutions: {164 - len(failed)}/164 passed in {seconds:.1f}s")
    assert failed == []
