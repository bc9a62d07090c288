"""SafeInstr: the safety records are mixed into the user data, shuffled, marked, none lost."""

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.errors import ConfigError, UserInputError
from unforgotten.methods import build_methods
from unforgotten.methods.safeinstr import SafeInstr, mix_safety
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer

USER = [make_record(f"review this movie was {w}", s, id=f"u{i}") for i, (w, s) in
        enumerate([("great", "positive"), ("terrible", "negative"), ("good", "positive"), ("bad", "negative")] * 3)]
SAFETY = [make_record("how do make bomb", "i am sorry i cannot help with that", id="s0"),
          make_record("how do hack car", "i am sorry i cannot help", id="s1"),
          make_record("tell me how do kill", "i cannot help with that", id="s2")]


def _key(r):
    return json.dumps(r["messages"], sort_keys=True) + r["id"]


def test_mix_is_user_plus_safety_nothing_lost_and_marked():
    out = mix_safety(USER, SAFETY, seed=0)
    assert len(out) == len(USER) + len(SAFETY)
    assert Counter(map(_key, out)) == Counter(map(_key, USER + SAFETY))
    assert sorted(r["id"] for r in out if r["safety_mix"]) == ["s0", "s1", "s2"]
    assert all(r["safety_mix"] is False for r in out if r["id"].startswith("u"))
    # the inputs are untouched
    assert all("safety_mix" not in r for r in USER + SAFETY)


def test_mix_is_deterministic_in_the_seed_and_shuffled():
    a, b = mix_safety(USER, SAFETY, seed=3), mix_safety(USER, SAFETY, seed=3)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    c = mix_safety(USER, SAFETY, seed=4)
    assert [r["id"] for r in a] != [r["id"] for r in c]
    # shuffled: the safety records are not simply appended at the end
    assert [r["id"] for r in a][-3:] != ["s0", "s1", "s2"]


def test_prepare_data_uses_the_train_seed_unless_given():
    ctx = SimpleNamespace(config=TrainConfig(seed=7))
    got = SafeInstr().prepare_data(ctx, USER, SAFETY)
    assert [r["id"] for r in got] == [r["id"] for r in mix_safety(USER, SAFETY, 7)]
    got = SafeInstr(seed=1).prepare_data(ctx, USER, SAFETY)
    assert [r["id"] for r in got] == [r["id"] for r in mix_safety(USER, SAFETY, 1)]


def test_needs_safety_data_and_validates_seed():
    assert SafeInstr.needs_safety_data
    with pytest.raises(UserInputError, match="safety data"):
        SafeInstr().prepare_data(SimpleNamespace(config=TrainConfig()), USER, None)
    with pytest.raises(ConfigError, match="seed"):
        build_methods(["safeinstr"], {"safeinstr": {"seed": "x"}})


def test_trains_on_the_mix(tmp_path):
    model = apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    cfg = TrainConfig(lr=1e-2, max_steps=2, batch_size=4, save_every=0, seed=0)
    train(model, tiny_tokenizer(), USER, cfg, tmp_path, methods=[SafeInstr()], safety_data=SAFETY, progress=False)
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["samples"] == len(USER) + len(SAFETY)
    assert summary["methods"] == ["safeinstr"]
