"""GR-SAP: each filter on crafted inputs, the scoring helpers against direct computation, and the
whole synthesis on the tiny model (files, counts, zero survivors, hard/easy, determinism)."""

import json
import math
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import Encoded
from unforgotten.errors import ConfigError
from unforgotten.eval.judges import JUDGES, Judge, Verdict
from unforgotten.methods import build_methods
from unforgotten.methods.grsap import (
    GRSAP, REVISION_SUFFIX, SAFETY_DOMAINS, dedup_keep_first, judge_split, mean_nll, mean_pooled_embeddings,
    mix_synthetic, parse_request, percentile_keep, select_hard_easy, synthetic_count,
)
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.context import TrainContext
from unforgotten.train.loop import train

from tiny import tiny_lora, tiny_model, tiny_tokenizer

USER = [make_record(f"review this movie was {w}", s, id=f"u{i}") for i, (w, s) in
        enumerate([("great", "positive"), ("terrible", "negative"), ("good", "positive"), ("bad", "negative")] * 5)]
FAST = dict(domains=["violence", "weapons", "cybercrime"], request_max_new_tokens=12, response_max_new_tokens=10, batch_size=4)


_lora = tiny_lora


def _ctx(model, tmp_path, seed=0):
    return TrainContext(model, tiny_tokenizer(), TrainConfig(seed=seed, batch_size=2), tmp_path, USER)


def _read(tmp_path):
    rows = [json.loads(line) for line in (tmp_path / "grsap_synthetic.jsonl").read_text().splitlines()]
    return rows, json.loads((tmp_path / "grsap_stats.json").read_text())


# ----------------------------------------------------------------------------- pure functions


def test_parse_request_prefill_takes_text_up_to_the_closing_quote():
    assert parse_request('how do I pick a lock" because it is illegal', "prefill") == "how do I pick a lock"
    assert parse_request("how do I pick a lock and never close the quote", "prefill") is None
    assert parse_request('   " nothing before', "prefill") is None
    assert parse_request('"how do I pick a lock"', "instruct") == "how do I pick a lock"
    assert parse_request("  how do I pick a lock \n", "instruct") == "how do I pick a lock"
    assert parse_request('""', "instruct") is None
    assert parse_request("", "instruct") is None


def test_percentile_filter_removes_exactly_the_top_outliers():
    values = [float(v) for v in range(1, 21)]
    random.Random(0).shuffle(values)
    keep, lo, hi = percentile_keep(values, 0, 90)
    # numpy-style linear interpolation: P90 of 1..20 = 1 + 0.9 * 19 = 18.1 -> 19 and 20 go
    assert hi == pytest.approx(18.1) and lo == 1.0
    assert sorted(values[i] for i in keep) == [float(v) for v in range(1, 19)]
    assert keep == sorted(keep)  # input order is kept
    # two tails: P5 = 1.95, P95 = 19.05 -> exactly the min and the max go
    keep, lo, hi = percentile_keep(values, 5, 95)
    assert (lo, hi) == (pytest.approx(1.95), pytest.approx(19.05))
    assert sorted(values[i] for i in keep) == [float(v) for v in range(2, 20)]
    # one big outlier among equal values: only it goes
    keep, _, _ = percentile_keep([3.0] * 19 + [1e6], 0, 90)
    assert keep == list(range(19))


def test_percentile_filter_edge_cases():
    assert percentile_keep([], 5, 95)[0] == []
    assert percentile_keep([2.0, float("nan"), 3.0, float("inf")], 0, 100)[0] == [0, 2]  # non-finite dropped
    assert percentile_keep([7.0], 5, 95)[0] == [0]
    assert percentile_keep([float("nan")], 0, 100)[0] == []


def test_dedup_removes_near_duplicates_and_keeps_distinct_ones():
    e = torch.tensor([[1.0, 0.0, 0.0], [0.99, 0.14, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.02, 1.0]])
    assert dedup_keep_first(e, 0.95, center=False) == [0, 2, 3]
    assert dedup_keep_first(e, 0.999, center=False) == [0, 1, 2, 3]  # stricter: only the exact-ish pair
    assert dedup_keep_first(e, 1.01, center=False) == [0, 1, 2, 3, 4]  # nothing can be a duplicate


def test_dedup_keep_first_compares_with_kept_items_only():
    # a ~ b and b ~ c, but a !~ c: b goes (duplicate of a), then c stays (its only near neighbour is gone)
    ang = [0.0, 0.25, 0.5]
    e = torch.tensor([[math.cos(t), math.sin(t)] for t in ang])
    sims = e @ e.T
    assert sims[0, 1] > 0.95 and sims[1, 2] > 0.95 and sims[0, 2] < 0.95
    assert dedup_keep_first(e, 0.95, center=False) == [0, 2]


def test_dedup_centering_undoes_a_shared_offset_and_exact_keys_always_match():
    distinct = torch.eye(4)
    shifted = distinct + 50.0  # a large common component: raw cosines are all ~1
    assert dedup_keep_first(shifted, 0.9, center=False) == [0]
    assert dedup_keep_first(shifted, 0.9, center=True) == [0, 1, 2, 3]
    keys = ["a", "b", "a", "c"]  # item 2 has the same text as item 0
    assert dedup_keep_first(shifted, 0.9, keys=keys, center=True) == [0, 1, 3]
    assert dedup_keep_first(torch.zeros(0, 3), 0.9) == []


def test_judge_split_keeps_only_what_the_judge_clears():
    verdicts = [Verdict(True, False), Verdict(False, True), Verdict(None, None), Verdict(False, False), Verdict(True, None)]
    safe, unsafe = judge_split(verdicts)
    assert safe == [0, 3]
    assert unsafe == [1, 2, 4]  # harmful and undecided are both not kept as safe


def test_hard_easy_selection_keeps_the_requested_fraction():
    hard, easy = list(range(0, 10)), list(range(100, 110))
    for n, frac, want in [(6, 0.5, 3), (7, 0.5, 3), (10, 0.3, 3), (8, 0.0, 0), (8, 1.0, 8)]:
        h, e = select_hard_easy(hard, easy, n, frac, random.Random(0))
        assert (len(h), len(e)) == (want, n - want), (n, frac)
        assert set(h) <= set(hard) and set(e) <= set(easy) and len(set(h)) == len(h)
    # a short pool is filled from the other
    h, e = select_hard_easy([1], easy, 6, 0.5, random.Random(0))
    assert (len(h), len(e)) == (1, 5)
    h, e = select_hard_easy(hard, [100], 6, 0.5, random.Random(0))
    assert (len(h), len(e)) == (5, 1)
    h, e = select_hard_easy([1, 2], [100], 6, 0.5, random.Random(0))
    assert (h, e) == ([1, 2], [100])
    assert select_hard_easy([], [], 5, 0.5, random.Random(0)) == ([], [])
    # seeded
    assert select_hard_easy(hard, easy, 6, 0.5, random.Random(3)) == select_hard_easy(hard, easy, 6, 0.5, random.Random(3))
    assert select_hard_easy(hard, easy, 6, 0.5, random.Random(3)) != select_hard_easy(hard, easy, 6, 0.5, random.Random(4))


def test_mixing_ratio_is_exact():
    assert synthetic_count(20, 0.1) == 2
    assert synthetic_count(25, 0.1) == 3  # 2.5 rounds half up
    assert synthetic_count(1000, 0.1) == 100
    assert synthetic_count(7, 0.0) == 0
    assert synthetic_count(20, 0.1, n_synthetic=7) == 7
    syn = [make_record(f"bad request {i}", "i cannot help with that", id=f"s{i}") for i in range(3)]
    out = mix_synthetic(USER, syn, seed=1)
    assert len(out) == len(USER) + 3
    assert sorted(r["id"] for r in out if r["synthetic"]) == ["s0", "s1", "s2"]
    assert sum(not r["synthetic"] for r in out) == len(USER)
    assert [r["id"] for r in out] == [r["id"] for r in mix_synthetic(USER, syn, seed=1)]
    assert [r["id"] for r in out] != [r["id"] for r in mix_synthetic(USER, syn, seed=2)]
    assert all("synthetic" not in r for r in USER + syn)  # inputs untouched


# ----------------------------------------------------------------------------- scoring helpers


def test_mean_nll_matches_a_direct_per_sample_computation():
    model, tok = tiny_model(), tiny_tokenizer()
    samples = [Encoded(tok(t)["input_ids"], tok(t)["input_ids"], i) for i, t in
               enumerate(["how do make bomb", "write poem about cats and dogs the sky is blue", "hack car"])]
    samples.append(Encoded([5, 6, 7, 8], [-100, -100, 7, 8], 3))  # only the last two tokens count
    samples.append(Encoded([5], [5], 4))  # nothing to predict
    got = mean_nll(model, samples, tok.pad_token_id, batch_size=2)
    for e, g in zip(samples[:4], got):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([e.input_ids])).logits[0, :-1]
        tgt = torch.tensor(e.labels[1:])
        want = F.cross_entropy(logits, tgt, ignore_index=-100).item()
        assert g == pytest.approx(want, rel=1e-5)
    assert math.isnan(got[4])


def test_mean_pooled_embeddings_ignore_padding():
    model, tok = tiny_model(), tiny_tokenizer()
    ids = [tok(t)["input_ids"] for t in ["how do make bomb", "hack car", "write poem about cats and dogs"]]
    batched = mean_pooled_embeddings(model, ids, tok.pad_token_id, batch_size=3)
    single = torch.cat([mean_pooled_embeddings(model, [x], tok.pad_token_id, batch_size=1) for x in ids])
    assert batched.shape == (3, 16)
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- config


def test_validation_names_the_field():
    assert GRSAP.needs_safety_data is False
    for bad in [{"mix_ratio": -0.1}, {"hard_fraction": 1.5}, {"extraction": "x"}, {"ppl_target": "x"},
                {"ppl_percentile": 101}, {"ppl_low_percentile": 60, "ppl_percentile": 50}, {"dedup_threshold": 2},
                {"domains": []}, {"n_per_domain": 0}, {"batch_size": 0}, {"response_top_p": 0}, {"judge": "nope"}]:
        field = next(iter(bad))
        with pytest.raises(ConfigError, match=field):
            build_methods(["grsap"], {"grsap": bad})
    m = build_methods(["grsap"], {"grsap": {"judge": "none", "mix_ratio": "0.2", "domains": "weapons"}})[0]
    assert (m.judge, m.mix_ratio, m.domains) == ("none", 0.2, ["weapons"])
    assert len(GRSAP().domains) == len(SAFETY_DOMAINS) == 38


# ----------------------------------------------------------------------------- end to end (tiny model)


def test_end_to_end_writes_both_files_with_consistent_counts(tmp_path):
    model = _lora()
    method = GRSAP(extraction="instruct", judge="none", n_per_domain=4, **FAST)
    out = method.prepare_data(_ctx(model, tmp_path), USER, None)
    rows, stats = _read(tmp_path)
    assert stats["generated"] == len(rows) == 3 * 4
    assert sum(stats["dropped"].values()) + stats["passed_filters"] == stats["generated"]
    for reason, n in stats["dropped"].items():
        assert n == sum(r["reason"] == reason for r in rows)
    assert stats["dropped"]["ppl"] >= 2  # two-sided 5/95 cut on distinct values drops the min and the max
    assert stats["target"] == 2 and stats["selected"] == 2 and stats["shortfall"] == 0
    assert stats["selected"] + stats["unused"] == stats["passed_filters"]
    assert sum(r["status"] == "selected" for r in rows) == 2
    assert all(r["status"] == "dropped" for r in rows if r["reason"])
    # requests that reached the ppl filter have a ppl; the kept ones lie within the cutoffs
    lo, hi = stats["ppl_cutoffs"]
    assert all(lo <= r["ppl"] <= hi for r in rows if r["status"] in ("selected", "unused"))
    # the returned data: every user record plus the selected pairs, marked, with their texts
    assert len(out) == len(USER) + 2
    syn = [r for r in out if r["synthetic"]]
    selected = {r["id"]: r for r in rows if r["status"] == "selected"}
    assert sorted(r["id"] for r in syn) == sorted(selected)
    for r in syn:
        assert r["messages"] == [{"role": "user", "content": selected[r["id"]]["request"]},
                                 {"role": "assistant", "content": selected[r["id"]]["response"]}]
    assert sum(not r["synthetic"] for r in out) == len(USER)


def test_zero_survivors_warn_and_mix_in_nothing(tmp_path):
    # the tiny vocabulary has no quote character, so the paper's prefill extraction never parses
    model = _lora()
    with pytest.warns(UserWarning, match="only 0 of the 2"):
        out = GRSAP(**FAST).prepare_data(_ctx(model, tmp_path), USER, None)
    rows, stats = _read(tmp_path)
    assert stats["selected"] == 0 and stats["shortfall"] == 2
    assert stats["dropped"]["unparsed"] == stats["generated"] == len(rows) > 0
    assert len(out) == len(USER) and not any(r["synthetic"] for r in out)
    # the keyword judge on gibberish: nothing refuses, revisions do not either -> all dropped by the judge
    with pytest.warns(UserWarning, match="survived"):
        GRSAP(extraction="instruct", n_per_domain=3, **FAST).prepare_data(_ctx(model, tmp_path), USER, None)
    rows, stats = _read(tmp_path)
    assert stats["selected"] == 0 and stats["dropped"]["judge"] == stats["revised"] > 0
    assert all(r["original_response"] is not None for r in rows if r["reason"] == "judge")


class _HalfJudge(Judge):
    """First call: every other pair is harmful. Later calls (the revisions): all safe."""

    name = "half"
    calls: list = []

    def judge(self, prompts, responses):
        type(self).calls.append(list(prompts))
        first = len(type(self).calls) == 1
        return [Verdict(False, bool(first and i % 2)) for i in range(len(prompts))]


def test_injected_judge_gives_hard_and_easy_and_revises(tmp_path, monkeypatch):
    monkeypatch.setitem(JUDGES._entries, "half", _HalfJudge)
    _HalfJudge.calls = []
    user = USER * 2  # 40 user records -> target 4: 2 hard + 2 easy
    method = GRSAP(extraction="instruct", judge="half", n_per_domain=4, **FAST)
    out = method.prepare_data(_ctx(_lora(), tmp_path), user, None)
    rows, stats = _read(tmp_path)
    assert len(_HalfJudge.calls) == 2
    assert not any(REVISION_SUFFIX in p for call in _HalfJudge.calls for p in call)  # judged on the original request
    hard = [r for r in rows if r["difficulty"] == "hard"]
    assert stats["revised"] == len(hard) == len(_HalfJudge.calls[1]) > 0
    assert all(r["original_response"] is not None and r["reason"] is None for r in hard)
    assert stats["dropped"]["judge"] == 0
    assert (stats["target"], stats["selected_hard"], stats["selected_easy"]) == (4, 2, 2)
    assert sorted(r.get("difficulty") for r in out if r["synthetic"]) == ["easy", "easy", "hard", "hard"]


def test_synthesis_is_deterministic_in_the_seed(tmp_path):
    kw = dict(extraction="instruct", judge="none", n_per_domain=3, **FAST)
    a = GRSAP(**kw).prepare_data(_ctx(_lora(), tmp_path / "a"), USER, None)
    b = GRSAP(**kw).prepare_data(_ctx(_lora(), tmp_path / "b"), USER, None)
    assert a == b
    assert (tmp_path / "a" / "grsap_synthetic.jsonl").read_text() == (tmp_path / "b" / "grsap_synthetic.jsonl").read_text()
    c = GRSAP(seed=5, **kw).prepare_data(_ctx(_lora(), tmp_path / "c"), USER, None)
    assert _read(tmp_path / "a")[0] != _read(tmp_path / "c")[0]
    assert [r["id"] for r in a] != [r["id"] for r in c]


def test_lora_synthesizes_with_the_aligned_model_and_full_ft_with_the_model_itself(tmp_path):
    kw = dict(extraction="instruct", judge="none", n_per_domain=2, ppl_target="response", **FAST)
    lora = _lora()
    with torch.no_grad():  # a trained-looking adapter: the reference must switch it off
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    GRSAP(**kw).prepare_data(_ctx(lora, tmp_path / "lora"), USER, None)
    plain = tiny_model()
    plain.train()
    before = {n: p.detach().clone() for n, p in plain.named_parameters()}
    GRSAP(**kw).prepare_data(_ctx(plain, tmp_path / "full"), USER, None)
    assert plain.training  # mode restored
    assert all(torch.equal(before[n], p) for n, p in plain.named_parameters())
    rows_lora, stats = _read(tmp_path / "lora")
    rows_full, _ = _read(tmp_path / "full")
    assert rows_lora == rows_full
    # response perplexities were computed for every pair that reached the filter
    assert stats["ppl_target"] == "response"
    assert all(r["ppl"] is not None for r in rows_lora if r["reason"] in (None, "ppl"))


def test_zero_target_generates_nothing(tmp_path):
    out = GRSAP(mix_ratio=0.0, **FAST).prepare_data(_ctx(_lora(), tmp_path), USER, None)
    rows, stats = _read(tmp_path)
    assert rows == [] and stats["generated"] == 0 and stats["selected"] == 0
    assert len(out) == len(USER)


def test_trains_on_the_mix_without_safety_data(tmp_path):
    cfg = TrainConfig(lr=1e-2, max_steps=2, batch_size=4, save_every=0, seed=0)
    method = GRSAP(extraction="instruct", judge="none", n_per_domain=2, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # enough survive: no shortfall warning
        train(_lora(), tiny_tokenizer(), USER, cfg, tmp_path, methods=[method], safety_data=None, progress=False)
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["samples"] == len(USER) + 2
    assert summary["methods"] == ["grsap"]


def test_resume_gets_the_same_data(tmp_path):
    # prepare_data runs again on resume (and reuses the synthesis); the loop refuses a checkpoint
    # whose data differs
    cfg = TrainConfig(lr=1e-2, max_steps=3, batch_size=4, save_every=2, seed=0)
    kw = dict(extraction="instruct", judge="none", n_per_domain=2, **FAST)
    train(_lora(), tiny_tokenizer(), USER, cfg, tmp_path, methods=[GRSAP(**kw)], progress=False)
    res = train(_lora(), tiny_tokenizer(), USER, cfg, tmp_path, methods=[GRSAP(**kw)], resume=True, progress=False)
    assert res.resumed_from == 2


def test_a_rerun_with_the_same_settings_and_weights_reuses_the_synthesis(tmp_path, monkeypatch):
    model = _lora()
    method = GRSAP(extraction="instruct", judge="none", n_per_domain=4, **FAST)
    first = method.prepare_data(_ctx(model, tmp_path), USER, None)
    rows, stats = _read(tmp_path)
    assert stats["rows_written"] == len(rows) and len(stats["synthesis_key"]) == 64

    calls = []
    real = GRSAP.synthesize
    monkeypatch.setattr(GRSAP, "synthesize", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    again = GRSAP(extraction="instruct", judge="none", n_per_domain=4, **FAST)
    assert again.prepare_data(_ctx(model, tmp_path), USER, None) == first  # a resume: no generation
    assert calls == [] and again.stats["generated"] == stats["generated"]
    assert _read(tmp_path) == (rows, stats)

    # any change to what the rows depend on synthesizes anew: a hyperparameter, the seed, the weights
    GRSAP(extraction="instruct", judge="none", n_per_domain=3, **FAST).prepare_data(_ctx(model, tmp_path), USER, None)
    assert len(calls) == 1
    GRSAP(extraction="instruct", judge="none", n_per_domain=3, **FAST).prepare_data(_ctx(model, tmp_path, seed=1), USER, None)
    assert len(calls) == 2
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "lora" not in n).add_(0.01)
    GRSAP(extraction="instruct", judge="none", n_per_domain=3, **FAST).prepare_data(_ctx(model, tmp_path, seed=1), USER, None)
    assert len(calls) == 3
    # a rows file cut short (a crash between the two writes of an older version) is not trusted
    lines = (tmp_path / "grsap_synthetic.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "grsap_synthetic.jsonl").write_text("".join(lines[:-1]))
    GRSAP(extraction="instruct", judge="none", n_per_domain=3, **FAST).prepare_data(_ctx(model, tmp_path, seed=1), USER, None)
    assert len(calls) == 4
