"""The CLI: commands exist, exit codes are 0 ok / 2 bad input / 1 failure, data check reports problems."""

import json

import pytest
from typer.testing import CliRunner

from unforgotten.cli import app

runner = CliRunner()


def test_list_methods_shows_sft():
    res = runner.invoke(app, ["list", "methods"])
    assert res.exit_code == 0
    assert "sft" in res.output


def test_help_lists_every_command():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("demo", "run", "align", "finetune", "evaluate", "data", "list"):
        assert cmd in res.output


def test_data_check_clean_file_exits_0(tmp_path):
    f = tmp_path / "ok.jsonl"
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n")
    res = runner.invoke(app, ["data", "check", str(f)])
    assert res.exit_code == 0, res.output
    assert "count=1" in res.output


def test_data_check_bad_file_exits_2_and_lists_every_problem(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 3}]}) + "\n"
        + "{not json\n"
        + json.dumps({"messages": [{"role": "assistant", "content": "x"}]}) + "\n"
    )
    res = runner.invoke(app, ["data", "check", str(f)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "line 1" in out and "content" in out
    assert "line 2" in out and "malformed JSON" in out
    assert "line 3" in out
    assert "3 problem(s)" in out


def test_data_check_missing_file_exits_2(tmp_path):
    res = runner.invoke(app, ["data", "check", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2


def test_bad_config_override_exits_2_with_a_hint():
    res = runner.invoke(app, ["finetune", "--set", "train.lrr=1"])
    assert res.exit_code == 2
    assert "did you mean 'lr'" in res.output


def test_unknown_method_exits_2_with_did_you_mean():
    res = runner.invoke(app, ["finetune", "--method", "sfft"])
    assert res.exit_code == 2
    assert "sft" in res.output


def test_poison_ratio_out_of_range_exits_2():
    res = runner.invoke(app, ["finetune", "--set", "data.poison_ratio=1.5"])
    assert res.exit_code == 2
    assert "poison_ratio" in res.output


def test_missing_config_file_exits_2(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2


def test_unknown_command_is_a_usage_error():
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_unexpected_failure_exits_1(monkeypatch):
    from unforgotten import api

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(api, "evaluate", boom)
    res = runner.invoke(app, ["evaluate"])
    assert res.exit_code == 1
    assert "disk on fire" in res.output
