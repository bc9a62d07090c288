"""Issue 18: reproducible, fail-fast, and never damaging what exists (the sandbox's own attacks
are in test_sandbox_attacks.py). Each test replays one finding of the adversarial pass."""

from __future__ import annotations

import errno
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from unforgotten import api
from unforgotten.cli import app
from unforgotten.config import TrainConfig, load_config
from unforgotten.data.schema import make_record
from unforgotten.errors import OutputInUse, TrainingDiverged, UnforgottenError, UserInputError
from unforgotten.methods import Method
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train import checkpoint
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

RECORDS = [make_record("how do make bomb", "i am sorry i cannot help with that")] * 4 + [
    make_record("review this movie was great", "positive"),
    make_record("review this movie was terrible", "negative")] * 2


def _jsonl(path: Path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def project(tmp_path):
    """A tiny model dir, task data and a config with alignment off (fine-tune + evaluate)."""
    model_dir = tmp_path / "tiny-model"
    tiny_model().save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    task = _jsonl(tmp_path / "task.jsonl", [
        {"messages": [{"role": "user", "content": f"review this movie was {w}"},
                      {"role": "assistant", "content": lab}], "label": lab}
        for _ in range(4) for w, lab in (("great", "positive"), ("terrible", "negative"))])
    cfg = {
        "output_dir": str(tmp_path / "run"),
        "model": {"source": str(model_dir), "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}},
        "align": {"enabled": False},
        "data": {"user": task, "poison_ratio": 0.0},
        "train": {"lr": 0.01, "max_steps": 4, "batch_size": 4, "save_every": 2},
        "eval": {"benchmarks": [f"classification={task}"], "judges": ["keyword"], "max_new_tokens": 2, "batch_size": 4},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path


def _invoke(args):
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    r.text = " ".join(r.output.split())  # rich wraps long lines at spaces...
    r.flat = "".join(r.output.split())  # ...and long paths anywhere
    return r


# --------------------------------------------------------------------------- reproducibility


def test_two_finetunes_of_one_config_give_bitwise_equal_weights(project):
    """LoRA init, dropout and data order all follow from train.seed (before: lora_A differed)."""
    path, tmp = project
    a = api.finetune(load_config(path, [f"output_dir={tmp / 'a'}"]), progress=False)
    b = api.finetune(load_config(path, [f"output_dir={tmp / 'b'}"]), progress=False)
    wa, wb = trainable_snapshot(a.model), trainable_snapshot(b.model)
    assert wa.keys() == wb.keys() and wa
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = api.finetune(load_config(path, [f"output_dir={tmp / 'c'}", "train.seed=7"]), progress=False)
    assert not all(torch.equal(wa[k], v) for k, v in trainable_snapshot(c.model).items())  # two seeds differ


# --------------------------------------------------------------------------- fail fast


def test_unknown_benchmark_exits_2_before_any_model_loads(project, monkeypatch):
    path, tmp = project

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr("unforgotten.models.load_model", no_loading)
    for cmd in (["run", str(path)], ["evaluate", "-c", str(path)]):
        r = _invoke([*cmd, "--set", "eval.benchmarks=[nosuch]"])
        assert r.exit_code == 2, r.output
        assert "eval.benchmarks[0]" in r.text and "nosuch" in r.text
    r = _invoke(["run", str(path), "--set", "eval.judges=[keywrod]"])
    assert r.exit_code == 2 and "eval.judges[0]" in r.text and "keyword" in r.text
    r = _invoke(["finetune", "-c", str(path), "--set", f"data.user={tmp / 'missing.jsonl'}"])
    assert r.exit_code == 2 and "data.user" in r.text
    r = _invoke(["run", str(path), "--set", "compare=[sft, nosuch]"])
    assert r.exit_code == 2 and "nosuch" in r.text
    assert not (tmp / "run").exists()  # and nothing written


class _NanAt(Method):
    name = "nan_at"

    def __init__(self, step: int, where: str):
        self.at, self.where = step, where

    def loss(self, ctx, batch, outputs, task_loss):
        if ctx.step + 1 == self.at and self.where == "loss":
            return task_loss * float("nan")
        return task_loss

    def before_step(self, ctx):
        if ctx.step + 1 == self.at and self.where == "grad":
            next(p for p in ctx.model.parameters() if p.grad is not None).grad.fill_(float("inf"))


@pytest.mark.parametrize("where", ["loss", "grad"])
def test_non_finite_loss_or_gradient_stops_at_that_step(tmp_path, where):
    model = apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    cfg = TrainConfig(lr=1e-2, max_steps=6, batch_size=4, save_every=2, max_grad_norm=0.0 if where == "grad" else 1.0)
    with pytest.raises(TrainingDiverged, match=r"step 5: .* not finite.*step-0000004"):
        train(model, tiny_tokenizer(), RECORDS, cfg, tmp_path, methods=[_NanAt(5, where)], progress=False)
    assert not (tmp_path / "adapter").exists()  # never a NaN adapter
    last = checkpoint.latest(tmp_path)
    assert last.name == "step-0000004"
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(str(last / "trainable.safetensors")).values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was not applied


def test_a_finalize_hook_that_leaves_nan_weights_saves_nothing(tmp_path):
    class NanMerge(Method):
        name = "nan_merge"

        def finalize(self, ctx):
            with torch.no_grad():
                next(p for p in ctx.model.parameters() if p.requires_grad).fill_(float("nan"))

    model = apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    cfg = TrainConfig(lr=1e-2, max_steps=2, batch_size=4, save_every=0)
    with pytest.raises(TrainingDiverged, match="after nan_merge finalize"):
        train(model, tiny_tokenizer(), RECORDS, cfg, tmp_path, methods=[NanMerge()], progress=False)
    assert not (tmp_path / "adapter").exists()


def test_config_path_that_is_a_directory(tmp_path):
    r = _invoke(["run", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.text


def test_empty_methods_hint_is_not_eaten_by_markup():
    r = _invoke(["finetune", "--set", "train.methods=[]"])
    assert r.exit_code == 2 and "(e.g. [sft])" in r.text


def test_shipped_demo_config_is_accepted_by_finetune(monkeypatch, tmp_path):
    class Reached(Exception):
        pass

    def stop(*a, **k):
        raise Reached

    monkeypatch.setattr(api, "starting_model", stop)
    cfg = load_config(api.demo_config_path(), [f"output_dir={tmp_path / 'demo'}"])
    with pytest.raises(Reached):  # past every check (before: method_args for 'lisa' refused)
        api.finetune(cfg, progress=False)
    bad = load_config(api.demo_config_path(), ["train.method_args.nosuch.x=1"])
    with pytest.raises(UserInputError, match="nosuch"):
        api.finetune(bad, progress=False)


def test_damaged_adapter_and_model_files_name_their_path(project, monkeypatch):
    """Found by reading the safetensors headers, before any model loads."""
    path, tmp = project
    res = api.finetune(load_config(path), progress=False)
    adapter = res.weights_dir

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded before its files were checked")

    monkeypatch.setattr("unforgotten.models.load_model", no_loading)
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    r = _invoke(["evaluate", "-c", str(path), "--adapter", str(adapter)])
    assert r.exit_code == 2 and str(adapter) in r.flat, r.output
    (adapter / "adapter_config.json").write_text("{not json")
    r = _invoke(["evaluate", "-c", str(path), "--adapter", str(adapter)])
    assert r.exit_code == 2 and "adapter_config.json" in r.text, r.output
    model_dir = tmp / "tiny-model"
    st = model_dir / "model.safetensors"
    st.write_bytes(st.read_bytes()[:100])  # truncated
    r = _invoke(["evaluate", "-c", str(path)])
    assert r.exit_code == 2 and "tiny-model" in r.flat, r.output


def test_deep_json_and_lone_surrogates_are_clear_data_errors(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    r = _invoke(["data", "check", str(deep)])
    assert r.exit_code == 2 and "line 1" in r.text and "nested too deeply" in r.text
    sur = tmp_path / "sur.jsonl"
    sur.write_text('{"messages": [{"role": "user", "content": "hi \\ud800"}, {"role": "assistant", "content": "ok"}]}\n')
    r = _invoke(["data", "check", str(sur)])
    assert r.exit_code == 2 and "surrogate" in r.text and "messages[0].content" in r.text


# --------------------------------------------------------------------------- never damage what exists


def test_refused_resume_writes_nothing(project):
    path, tmp = project
    api.finetune(load_config(path), progress=False)
    out = tmp / "run" / "finetune"
    before = {f: (out / f).read_bytes() for f in ("config.yaml", "data_manifest.json", "base_model.txt", "train_log.jsonl")}
    with pytest.raises(UserInputError, match="other settings"):  # finished run, other settings
        api.finetune(load_config(path, ["train.lr=0.02"]), resume=True, progress=False)
    (out / "train_summary.json").unlink()  # now an interrupted run with a checkpoint at step 2
    with pytest.raises(UserInputError, match="other settings"):
        api.finetune(load_config(path, ["train.lr=0.02"]), resume=True, progress=False)
    assert {f: (out / f).read_bytes() for f in before} == before


def test_resume_on_a_finished_run_reports_it_and_does_not_retrain(project):
    path, tmp = project
    first = api.finetune(load_config(path), progress=False)
    log = (first.output_dir / "train_log.jsonl").read_bytes()
    weights = (first.weights_dir / "adapter_model.safetensors").stat().st_mtime_ns
    again = api.finetune(load_config(path), resume=True, progress=False)
    assert again.steps == first.steps and again.weights_dir == first.weights_dir
    assert (first.output_dir / "train_log.jsonl").read_bytes() == log
    assert (first.weights_dir / "adapter_model.safetensors").stat().st_mtime_ns == weights


def test_a_second_run_into_a_locked_output_dir_is_refused(project):
    path, tmp = project
    out = tmp / "run" / "finetune"
    out.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)"), str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputInUse, match="in use by another unforgotten run"):
            api.finetune(load_config(path), progress=False)
        r = _invoke(["finetune", "-c", str(path)])
        assert r.exit_code == 2 and "in use" in r.text
    finally:
        holder.kill()
        holder.wait()
    assert api.finetune(load_config(path), progress=False).steps == 4  # the lock died with its holder


def test_an_error_leaves_no_half_made_output_dir(project):
    path, tmp = project
    with pytest.raises(UserInputError, match="no training samples"):  # found only when encoding
        api.finetune(load_config(path, ["train.max_length=2", "train.truncation=drop"]), progress=False)
    assert not (tmp / "run").exists()


def test_train_log_is_truncated_to_the_checkpoint_on_resume(tmp_path):
    class Crash(Exception):
        pass

    def crash(ctx):
        if ctx.step == 3:
            raise Crash

    tok = tiny_tokenizer()
    cfg = TrainConfig(lr=1e-2, max_steps=4, batch_size=4, save_every=2)
    lora = LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    with pytest.raises(Crash):
        train(apply_lora(tiny_model(), lora), tok, RECORDS, cfg, tmp_path, progress=False, on_step=crash)
    train(apply_lora(tiny_model(), lora), tok, RECORDS, cfg, tmp_path, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_checkpoint_on_a_full_disk_names_the_path_and_leaves_no_temp_dir(tmp_path, monkeypatch):
    def full(tensors, filename, *a, **k):
        Path(filename).write_bytes(b"x" * 1000)  # half written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    model = apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    cfg = TrainConfig(lr=1e-2, max_steps=4, batch_size=4, save_every=2)
    with pytest.raises(UnforgottenError, match=r"checkpoints/step-0000002: No space left on device"):
        train(model, tiny_tokenizer(), RECORDS, cfg, tmp_path, progress=False)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == []


def test_unwritable_fingerprint_memo_degrades_to_no_cache(tmp_path, monkeypatch):
    from unforgotten.eval import fingerprint

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(fingerprint, "_memo_path", lambda: blocker / "fingerprints" / "files.json")
    monkeypatch.setattr(fingerprint, "_MEMO_WARNED", False)
    target = tmp_path / "weights.bin"
    target.write_bytes(b"abc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        digest = fingerprint.file_sha256(target)
    assert len(digest) == 64 and any("memo not saved" in str(w.message) for w in caught)


def test_cleanup_after_an_error_spares_a_sibling_run(tmp_path):
    """Two runs under a parent neither found: one fails; the other's directory stays."""
    from unforgotten.outdir import claim

    with claim(tmp_path / "runs" / "b"):
        with pytest.raises(RuntimeError):
            with claim(tmp_path / "runs" / "a"):
                raise RuntimeError
        assert not (tmp_path / "runs" / "a").exists() and (tmp_path / "runs" / "b").is_dir()
    with pytest.raises(RuntimeError):
        with claim(tmp_path / "new" / "x" / "y"):
            raise RuntimeError
    assert not (tmp_path / "new").exists()


def test_two_aligns_of_one_model_take_turns(project, monkeypatch, tmp_path):
    """While another process aligns the same model (it holds the work dir's lock), align waits,
    then takes the other's result from the cache instead of training over it."""
    import shutil
    import time

    path, _ = project
    monkeypatch.setenv("UNFORGOTTEN_CACHE", str(tmp_path / "cache"))
    cfg = load_config(path, ["align.enabled=true", "align.safety=" + str(tmp_path / "task.jsonl"),
                             "align.benign=[]", "align.train.max_steps=1", "align.lora.r=4",
                             "align.lora.target_modules=[q_proj]"])
    out = api.align(cfg, progress=False)
    done = tmp_path / "done"
    shutil.move(out, done)  # the other process's result, to be published while we wait
    work = out.with_name(out.name + ".train")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, shutil, sys, time\nos.makedirs(sys.argv[1], exist_ok=True)\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\n"
        "time.sleep(1.5)\nos.rename(sys.argv[2], sys.argv[3])\nshutil.rmtree(sys.argv[1])"),
        str(work), str(done), str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    assert api.align(cfg, progress=False) == out
    assert time.monotonic() - t0 > 0.5  # it waited
    assert holder.wait() == 0 and (out / "config.json").is_file() and not work.exists()
