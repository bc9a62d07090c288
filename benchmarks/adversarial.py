"""Re-run issue 18's adversarial pass and print its counts.

Malformed inputs: each case runs one CLI command (in process, Typer's CliRunner) in a fresh
directory and is classified as
  clear      exit 2 and the message names what is wrong (the case's field, file or value)
  unclear    any other exit, or a message that does not name it
  traceback  an exception escaped the CLI, or "Traceback" was printed
  leftover   the command left files or directories behind (beyond the case's own inputs)
Sandbox attacks: each program runs in ``eval.sandbox.run_python`` with every layer on, and again
with the audit hook off (the kernel layers alone); an attack is contained when its check holds.

    python benchmarks/adversarial.py            # prints the counts; exit 1 unless all is well

No model is downloaded: the cases that need weights build a tiny model in code (tests/tiny.py).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tiny.py


# --------------------------------------------------------------------------- malformed inputs


def _files(d: Path) -> None:
    """The inputs every case may use; a case's own broken file is written by its ``setup``."""
    import yaml

    from tiny import tiny_model, tiny_tokenizer

    good = {"messages": [{"role": "user", "content": "review this movie was great"},
                         {"role": "assistant", "content": "positive"}], "label": "positive"}
    (d / "good.jsonl").write_text(json.dumps(good) + "\n")
    model = d / "model"
    tiny_model().save_pretrained(model)
    tiny_tokenizer().save_pretrained(model)
    cfg = {"output_dir": str(d / "out"), "model": {"source": str(model)}, "align": {"enabled": False},
           "data": {"user": str(d / "good.jsonl")}, "train": {"max_steps": 1, "save_every": 0},
           "eval": {"benchmarks": [f"classification={d / 'good.jsonl'}"], "judges": ["keyword"]}}
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg))


def _write(name: str, content: str | bytes):
    def setup(d: Path) -> None:
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return setup


def _adapter(config: str, weights: bytes):
    def setup(d: Path) -> None:
        a = d / "adapter"
        a.mkdir()
        (a / "adapter_config.json").write_text(config)
        (a / "adapter_model.safetensors").write_bytes(weights)
    return setup


def _truncate_model(d: Path) -> None:
    st = d / "model" / "model.safetensors"
    st.write_bytes(st.read_bytes()[:100])


def _sets(*kv: str) -> list[str]:
    return [x for item in kv for x in ("--set", item)]


RUN = ["run", "{d}/cfg.yaml"]
FT = ["finetune", "-c", "{d}/cfg.yaml"]
EV = ["evaluate", "-c", "{d}/cfg.yaml"]
CHECK = ["data", "check"]
DEEP = "[" * 100_000 + "]" * 100_000
SURROGATE = '{"messages": [{"role": "user", "content": "x \\ud800"}, {"role": "assistant", "content": "y"}]}\n'

# (name, argv, must appear in the message, setup)
CASES = [
    ("config missing", ["run", "{d}/nope.yaml"], "nope.yaml", None),
    ("config is a directory", ["run", "{d}"], "is a directory", None),
    ("config not YAML", ["run", "{d}/bad.yaml"], "bad.yaml", _write("bad.yaml", "a: [b\n")),
    ("config a list", ["run", "{d}/list.yaml"], "mapping", _write("list.yaml", "- 1\n")),
    ("config not UTF-8", ["run", "{d}/bin.yaml"], "bin.yaml", _write("bin.yaml", b"\xff\xfe\x00a: 1")),
    ("config deep YAML", ["run", "{d}/deep.yaml"], "deep.yaml", _write("deep.yaml", DEEP)),
    ("unknown key", RUN + _sets("train.lrr=1"), "lrr", None),
    ("wrong type", RUN + _sets("train.batch_size=four"), "train.batch_size", None),
    ("lr inf", RUN + _sets("train.lr=.inf"), "train.lr", None),
    ("lr nan", RUN + _sets("train.lr=.nan"), "train.lr", None),
    ("epochs negative", RUN + _sets("train.epochs=-1"), "train.epochs", None),
    ("batch size 0", RUN + _sets("train.batch_size=0"), "train.batch_size", None),
    ("poison ratio 1.5", RUN + _sets("data.poison_ratio=1.5"), "data.poison_ratio", None),
    ("max_length 0", RUN + _sets("train.max_length=0"), "train.max_length", None),
    ("eval limit -3", RUN + _sets("eval.limit=-3"), "eval.limit", None),
    ("no methods", FT + _sets("train.methods=[]"), "[sft]", None),
    ("unknown method", FT + _sets("train.methods=[sfft]"), "sfft", None),
    ("stray method args", FT + _sets("train.method_args.der.alpha=1"), "der", None),
    ("method arg out of range", FT + _sets("train.methods=[der]", "train.method_args.der.alpha=-1"), "der.alpha", None),
    ("bad compare entry", RUN + _sets("compare=[sft, nosuch]"), "nosuch", None),
    ("compare args syntax", RUN + _sets("compare=['der:alpha']"), "der:alpha", None),
    ("unknown benchmark", RUN + _sets("eval.benchmarks=[nosuch]"), "nosuch", None),
    ("benchmark NAME=", RUN + _sets("eval.benchmarks=['harmful=']"), "harmful=", None),
    ("benchmark file missing", RUN + _sets("eval.benchmarks=['harmful={d}/none.jsonl']"), "none.jsonl", None),
    ("unknown judge", RUN + _sets("eval.judges=[keywrod]"), "keywrod", None),
    ("unknown backend", EV + _sets("eval.backend=tpu"), "tpu", None),
    ("user data missing", FT + _sets("data.user={d}/none.jsonl"), "none.jsonl", None),
    ("user data empty", FT + _sets("data.user={d}/empty.jsonl"), "empty.jsonl", _write("empty.jsonl", "")),
    ("user data garbage", FT + _sets("data.user={d}/junk.jsonl"), "junk.jsonl", _write("junk.jsonl", b"\x00\x01\xff" * 50)),
    ("user data deep JSON", FT + _sets("data.user={d}/deep.jsonl"), "deep.jsonl", _write("deep.jsonl", DEEP + "\n")),
    ("user data surrogate", FT + _sets("data.user={d}/sur.jsonl"), "surrogate", _write("sur.jsonl", SURROGATE)),
    ("check deep JSON", CHECK + ["{d}/deep.json"], "deep.json", _write("deep.json", DEEP)),
    ("check surrogate", CHECK + ["{d}/sur.jsonl"], "surrogate", _write("sur.jsonl", SURROGATE)),
    ("check missing file", CHECK + ["{d}/none.jsonl"], "none.jsonl", None),
    ("model path missing", FT + _sets("model.source={d}/nomodel"), "nomodel", None),
    ("model dir without config", FT + _sets("model.source={d}/emptydir"), "emptydir", _write("emptydir/x.txt", "")),
    ("model truncated safetensors", EV, "model", _truncate_model),
    ("adapter missing", EV + ["--adapter", "{d}/noadapter"], "noadapter", None),
    ("adapter config garbage", EV + ["--adapter", "{d}/adapter"], "adapter_config.json", _adapter("{nope", b"")),
    ("adapter weights garbage", EV + ["--adapter", "{d}/adapter"], "adapter", _adapter('{"peft_type": "LORA"}', b"\x00junk")),
    ("output dir is a file", FT + ["-o", "{d}/afile"], "afile", _write("afile", "x")),
    ("resume other settings", FT + ["--resume"] + _sets("train.lr=0.5"), "other settings", "finished"),
]


def _snapshot(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def run_inputs() -> dict[str, int]:
    from typer.testing import CliRunner

    from unforgotten.cli import app

    counts = {"tried": 0, "clear": 0, "unclear": 0, "tracebacks": 0, "leftovers": 0}
    base = Path(tempfile.mkdtemp(prefix="unforgotten-adv-"))
    _files(base)
    runner = CliRunner()
    for name, argv, expect, setup in CASES:
        d = Path(tempfile.mkdtemp(prefix="case-", dir=base))
        for f in ("good.jsonl", "cfg.yaml"):
            (d / f).write_text((base / f).read_text().replace(str(base), str(d)))
        os.symlink(base / "model", d / "model") if setup is not _truncate_model else __import__("shutil").copytree(base / "model", d / "model")
        if setup == "finished":
            r = runner.invoke(app, [a.format(d=d) for a in FT], catch_exceptions=True)
            assert r.exit_code == 0, r.output
        elif setup is not None:
            setup(d)
        before = _snapshot(d)
        before_out = (d / "out" / "finetune" / "config.yaml").read_bytes() if setup == "finished" else None
        r = runner.invoke(app, [a.format(d=d) for a in argv], catch_exceptions=True)
        text = "".join(r.output.split())
        counts["tried"] += 1
        crashed = (r.exception is not None and not isinstance(r.exception, SystemExit)) or "Traceback" in r.output
        left = sorted(_snapshot(d) - before)
        if before_out is not None and (d / "out" / "finetune" / "config.yaml").read_bytes() != before_out:
            left.append("out/finetune/config.yaml (overwritten)")
        if crashed:
            counts["tracebacks"] += 1
            verdict = f"TRACEBACK {type(r.exception).__name__}: {r.exception}"
        elif r.exit_code == 2 and "".join(expect.format(d=d).split()) in text:
            counts["clear"] += 1
            verdict = "clear"
        else:
            counts["unclear"] += 1
            verdict = f"UNCLEAR exit {r.exit_code}"
        if left:
            counts["leftovers"] += 1
            verdict += f"; LEFT {left[:3]}"
        first = " ".join(r.output.split())[:110]
        print(f"  {name:30s} {verdict:10s} {first}")
    __import__("shutil").rmtree(base, ignore_errors=True)
    return counts


# --------------------------------------------------------------------------- sandbox attacks

MARK = f"/tmp/unforgotten-adv-{uuid.uuid4().hex}"


def _out(r) -> str:
    return r.stdout_tail + r.stderr_tail


def _no_mark(r) -> bool:
    found = os.path.exists(MARK)
    if found:
        os.remove(MARK)
    return not found


ATTACKS = [
    ("read /etc/shadow", "print(open('/etc/shadow').read())", lambda r: "root:" not in r.stdout_tail),
    ("read a 0600 file", "print(open('{secret}').read())", lambda r: "SECRET-" not in _out(r)),
    # /root may hold the Python install (pyenv): nothing but the path down to it may be visible
    ("list /root", "import os; print(os.listdir('/root'))",
     lambda r: r.status != "passed" or set(eval(r.stdout_tail)) <= set(Path(sys.prefix).parts)),
    ("subprocess._fork_exec bypass", textwrap.dedent("""\
        import os, subprocess
        subprocess._fork_exec(["/bin/sh", "-c", "touch {mark}"], [b"/bin/sh"], True, (), None, None,
            -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, None, -1, None, False)
        import time; time.sleep(0.5)"""), _no_mark),
    ("import _posixsubprocess", textwrap.dedent("""\
        import _posixsubprocess, os
        _posixsubprocess.fork_exec(["/bin/sh", "-c", "touch {mark}"], [b"/bin/sh"], True, (), None, None,
            -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None, None, None, -1, None, False)"""), _no_mark),
    ("os.system", "import os; os.system('touch {mark}')", _no_mark),
    ("os.execv", "import os; os.execv('/bin/sh', ['sh', '-c', 'touch {mark}'])", _no_mark),
    ("os.posix_spawn", "import os; os.posix_spawn('/bin/sh', ['sh', '-c', 'touch {mark}'], {{}})", _no_mark),
    ("ctypes execve", textwrap.dedent("""\
        import ctypes
        libc = ctypes.CDLL(None)
        argv = (ctypes.c_char_p * 4)(b"sh", b"-c", b"touch {mark}", None)
        libc.execv(b"/bin/sh", argv)"""), _no_mark),
    ("fork bomb", "import os\nwhile True: os.fork()", lambda r: r.status in ("failed", "timeout")),
    ("setsid survivor", textwrap.dedent("""\
        import os, time
        if os.fork() == 0:
            os.setsid(); time.sleep(3); open('{mark}', 'w').close()
        """), lambda r: (time.sleep(3.5), _no_mark(r))[1]),
    ("write outside", "open('{mark}', 'w').write('x')", _no_mark),
    ("symlink escape", "import os; os.symlink('/tmp', 'l'); open('l/' + '{mark}'.split('/')[-1], 'w')", _no_mark),
    ("600 MB written", textwrap.dedent("""\
        total = 0
        try:
            for i in range(20):
                with open(f"f{{i}}", "wb") as f:
                    for _ in range(30):
                        f.write(b"x" * (1 << 20)); total += 1 << 20
        except OSError:
            pass
        print(total)"""), lambda r: r.stdout_tail.strip().isdigit() and int(r.stdout_tail) <= 64 << 20),
    ("memory hog", "x = bytearray(8 * 1024**3)", lambda r: r.status in ("failed", "killed")),
    ("infinite loop", "while True: pass", lambda r: r.status in ("timeout", "killed")),
    ("network connect", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2); print('CONNECTED')",
     lambda r: "CONNECTED" not in r.stdout_tail),
    ("kill the parent", "import os, signal; os.kill(os.getppid(), signal.SIGKILL)", lambda r: True),
    ("raise rlimits", "import resource; resource.setrlimit(resource.RLIMIT_AS, (-1, -1)); print('RAISED')",
     lambda r: "RAISED" not in r.stdout_tail),
    ("environment secrets", "import os; print(sorted(os.environ))", lambda r: "ADV_SECRET_TOKEN" not in r.stdout_tail),
    ("secret in stored error", "raise ValueError(open('/proc/self/environ').read() + '$6$' + 'A1b2C3d4' * 8)",
     lambda r: "A1b2C3d4A1b2" not in r.error_line and len(r.error_line) <= 200),
]


def run_attacks(**switches) -> tuple[int, int, list[str]]:
    from unforgotten.eval.sandbox import run_python

    d = tempfile.mkdtemp()
    os.chmod(d, 0o755)
    secret = os.path.join(d, "secret.txt")
    with open(secret, "w") as f:
        f.write("SECRET-" + uuid.uuid4().hex)
    os.chmod(secret, 0o600)
    os.environ["ADV_SECRET_TOKEN"] = "x"
    contained, failed = 0, []
    try:
        for name, code, check in ATTACKS:
            r = run_python(code.format(mark=MARK, secret=secret), timeout_s=3, **switches)
            ok = bool(check(r)) and os.getppid() > 0
            contained += ok
            if not ok:
                failed.append(f"{name}: {r.status} {_out(r)[-200:]!r}")
    finally:
        os.remove(secret)
        os.rmdir(d)
        del os.environ["ADV_SECRET_TOKEN"]
    return contained, len(ATTACKS), failed


def main() -> int:
    import logging

    logging.disable(logging.WARNING)
    os.environ.setdefault("UNFORGOTTEN_CACHE", tempfile.mkdtemp(prefix="unforgotten-adv-cache-"))
    t0 = time.monotonic()
    print("malformed inputs:")
    c = run_inputs()
    print(f"malformed inputs: {c['tried']} tried, {c['clear']} clear errors, {c['unclear']} unclear, "
          f"{c['tracebacks']} tracebacks, {c['leftovers']} leftovers")
    from unforgotten.eval.sandbox import sandbox_layers, sandbox_skipped

    print(f"sandbox layers here: {', '.join(sandbox_layers())}; skipped: {list(sandbox_skipped()) or 'none'}")
    ok_all = True
    for label, switches in (("all layers", {}), ("audit hook off (kernel layers alone)", {"audit_hook": False})):
        n_ok, n, failed = run_attacks(**switches)
        print(f"sandbox attacks, {label}: {n_ok}/{n} contained")
        for f in failed:
            print(f"  NOT CONTAINED {f}")
        ok_all &= n_ok == n
    print(f"({time.monotonic() - t0:.0f} s)")
    good = c["tracebacks"] == 0 and c["leftovers"] == 0 and c["unclear"] == 0 and ok_all
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
