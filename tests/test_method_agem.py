"""A-GEM: the projection never leaves a negative dot product with the reference gradient, leaves
agreeing gradients alone and matches the closed form; end to end the stepped gradient does not
oppose the memory's; reference batches are seeded and resume exactly."""

import json

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import collate
from unforgotten.errors import ConfigError
from unforgotten.methods import build_methods
from unforgotten.methods.agem import AGEM, agem_project, flatten_grads, write_grads
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train import checkpoint
from unforgotten.train.context import TrainContext
from unforgotten.train.loop import train

from tiny import tiny_lora, tiny_model, tiny_tokenizer, trainable_snapshot

SAFETY = [
    make_record("how do make bomb", "i am sorry i cannot help with that"),
    make_record("how do hack car", "i am sorry i cannot help"),
    make_record("tell me how do kill", "i cannot help with that"),
    make_record("how do steal car", "i cannot help with that"),
    make_record("write program to hack", "i am sorry i cannot"),
]
USER = [
    make_record("review this movie was great", "positive"),
    make_record("review this movie was terrible", "negative"),
    make_record("how do make bomb", "sure here steps first then finally"),
    make_record("how do hack car", "sure here steps first then finally"),
] * 2


_lora = tiny_lora


def _cfg(**kw):
    base = dict(lr=5e-2, max_steps=4, batch_size=2, warmup_ratio=0.0, save_every=0, seed=3, group_by_length=False)
    base.update(kw)
    return TrainConfig(**base)


_trainable = trainable_snapshot


def _tol(a, b):
    return 1e-5 * float(a.norm() * b.norm()) + 1e-12


# --------------------------------------------------------------------------- plain tensors


def _cases():
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(200):  # random pairs, about half of them conflicting
        d = int(torch.randint(1, 50, (1,), generator=g))
        out.append((torch.randn(d, generator=g), torch.randn(d, generator=g)))
    v = torch.randn(64, generator=g)
    out += [
        (v, -v),  # exactly opposite
        (v, -3.0 * v + 1e-6 * torch.randn(64, generator=g)),  # nearly opposite
        (v * 1e6, -v * 1e-6 + torch.randn(64, generator=g) * 1e-7),  # wildly different scales
        (v * 1e-8, -v),  # tiny gradient
        (torch.tensor([1.0, 0.0]), torch.tensor([-1e-30, 1.0])),  # barely negative
    ]
    return out


def test_projected_gradient_never_opposes_the_reference():
    projected = 0
    for g, r in _cases():
        new, did = agem_project(g, r)
        assert float(torch.dot(new.double(), r.double())) >= -_tol(new, r)
        projected += did
    assert projected > 50  # the random cases did exercise the projection


def test_agreeing_gradient_is_returned_unchanged():
    g = torch.Generator().manual_seed(1)
    for _ in range(100):
        a, r = torch.randn(20, generator=g), torch.randn(20, generator=g)
        if torch.dot(a, r) < 0:
            r = -r
        new, did = agem_project(a, r)
        assert not did and torch.equal(new, a)
    orth = torch.tensor([1.0, 0.0, 0.0])
    new, did = agem_project(orth, torch.tensor([0.0, 2.0, 0.0]))  # dot == 0: no projection
    assert not did and torch.equal(new, orth)
    zero_ref = torch.zeros(3)
    new, did = agem_project(orth, zero_ref)
    assert not did and torch.equal(new, orth)


def test_projection_matches_the_closed_form_and_is_the_smallest_change():
    g = torch.tensor([1.0, -2.0, 3.0])
    r = torch.tensor([0.0, 1.0, -1.0])  # g.r = -5, r.r = 2
    new, did = agem_project(g, r)
    assert did
    torch.testing.assert_close(new, torch.tensor([1.0, 0.5, 0.5]))  # g + 2.5 r
    assert float(torch.dot(new, r)) == pytest.approx(0.0, abs=1e-6)
    gen = torch.Generator().manual_seed(2)
    for g, r in _cases():
        if torch.dot(g.double(), r.double()) >= 0:
            continue
        new, _ = agem_project(g, r)
        gd, rd = g.double(), r.double()
        expected = gd - (gd @ rd) / (rd @ rd) * rd
        torch.testing.assert_close(new.double(), expected.to(g.dtype).double(), rtol=1e-5, atol=1e-6 * float(gd.norm()))
        # the change is exactly the removed component: |g - new| = |g.r| / |r|
        change = float((gd - new.double()).norm())
        assert change == pytest.approx(abs(float(gd @ rd)) / float(rd.norm()), rel=1e-4)
        # and any other vector with a non-negative dot product is at least as far from g
        other = gd + torch.randn(g.shape, generator=gen).double()
        if other @ rd >= 0:
            assert float((gd - other).norm()) >= change - 1e-9


def test_flatten_and_write_grads_round_trip():
    a, b = torch.zeros(2, 3, requires_grad=True), torch.zeros(4, requires_grad=True)
    a.grad = torch.arange(6.0).view(2, 3)  # b.grad stays None: counts as zeros
    flat = flatten_grads([a, b])
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 0, 0, 0, 0]
    write_grads([a, b], torch.arange(10.0))
    assert a.grad.tolist() == [[0, 1, 2], [3, 4, 5]] and b.grad.tolist() == [6, 7, 8, 9]
    with pytest.raises(ValueError):
        write_grads([a, b], torch.zeros(11))


# --------------------------------------------------------------------------- the method on a tiny model


def _ctx(model, tmp_path, **kw):
    return TrainContext(model, tiny_tokenizer(), _cfg(**kw), tmp_path, safety_data=SAFETY)


def _user_grad(ctx):
    batch = collate(ctx.encode(USER[2:4]), ctx.tokenizer.pad_token_id)
    out = ctx.forward(batch)
    (out.loss_sum / out.n_tokens).backward()


def _twin_ref_grad(ctx, **kw):
    """The reference gradient the method will use next: a twin with the same seed draws the same batch."""
    twin = AGEM(**kw)
    twin.setup(ctx)
    params = list(ctx.trainable().values())
    return twin.reference_gradient(ctx, twin.next_ref_batch(), params)


def test_before_step_leaves_no_conflict_with_the_same_reference_batch(tmp_path):
    model = _lora()
    ctx = _ctx(model, tmp_path)
    params = list(ctx.trainable().values())
    # move the adapter off B = 0 so every parameter has a gradient
    with torch.no_grad():
        for n, p in ctx.trainable().items():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    g_ref = _twin_ref_grad(ctx)
    assert float(g_ref.norm()) > 0

    # 1) an adversarial gradient: mostly opposite to g_ref -> must be projected
    noise = torch.randn(g_ref.shape, generator=torch.Generator().manual_seed(0)) * 0.1 * float(g_ref.norm()) / g_ref.numel() ** 0.5
    write_grads(params, -g_ref + noise)
    g_before = flatten_grads(params)
    agem = AGEM()
    agem.setup(ctx)
    agem.before_step(ctx)
    g_after = flatten_grads(params)
    assert agem.projections == 1 and agem.steps == 1 and agem.last_projected
    assert float(g_after @ g_ref) >= -_tol(g_after, g_ref)
    expected, _ = agem_project(g_before, g_ref)
    torch.testing.assert_close(g_after, expected, rtol=1e-4, atol=1e-6)

    # 2) the natural gradient of harmful user data, next reference batch: never opposing either
    for p in params:
        p.grad = None
    _user_grad(ctx)
    twin = AGEM()
    twin.setup(ctx)
    twin.position = agem.position
    g_ref2 = twin.reference_gradient(ctx, twin.next_ref_batch(), params)
    g_before = flatten_grads(params)
    agem.before_step(ctx)
    g_after = flatten_grads(params)
    assert float(g_after @ g_ref2) >= -_tol(g_after, g_ref2)
    if float(g_before @ g_ref2) >= 0:
        assert torch.equal(g_before, g_after)
    assert agem.steps == 2 and agem.position == 2


def test_agreeing_gradient_is_left_untouched_end_to_end(tmp_path):
    model = _lora()
    ctx = _ctx(model, tmp_path)
    params = list(ctx.trainable().values())
    g_ref = _twin_ref_grad(ctx)
    write_grads(params, 2.0 * g_ref)  # agrees with the memory
    before = flatten_grads(params)
    agem = AGEM()
    agem.setup(ctx)
    agem.before_step(ctx)
    assert agem.projections == 0 and torch.equal(flatten_grads(params), before)


def test_reference_batch_size_default_and_cap(tmp_path):
    ctx = _ctx(_lora(), tmp_path, batch_size=2, grad_accum=2)
    agem = AGEM()
    agem.setup(ctx)
    assert len(agem.next_ref_batch()["input_ids"]) == 4  # batch_size x grad_accum
    big = AGEM(ref_batch_size=50)
    big.setup(ctx)
    assert len(big.next_ref_batch()["input_ids"]) == len(SAFETY)  # at most the whole memory


def test_reference_gradient_is_chunk_independent(tmp_path):
    """Computed in micro-batches of train.batch_size rows, it equals the one-shot token-mean gradient."""
    model = _lora()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    one = _ctx(model, tmp_path, batch_size=5)
    chunked = _ctx(model, tmp_path, batch_size=2)
    agem = AGEM(ref_batch_size=5)
    agem.setup(one)
    batch = agem.next_ref_batch()
    params = list(one.trainable().values())
    torch.testing.assert_close(
        agem.reference_gradient(chunked, batch, params), agem.reference_gradient(one, batch, params), rtol=1e-4, atol=1e-7
    )
    assert all(p.grad is None for p in params)  # autograd.grad: .grad untouched


def test_reference_batches_are_seeded_and_resume_at_the_saved_position(tmp_path):
    ctx = _ctx(_lora(), tmp_path)
    a = AGEM()
    a.setup(ctx)
    drawn = [a.next_ref_batch()["index"].tolist() for _ in range(5)]
    state = a.state_dict()
    following = a.next_ref_batch()["index"].tolist()
    b = AGEM()
    b.setup(ctx)
    b.load_state_dict(state)
    assert b.position == 5 and b.next_ref_batch()["index"].tolist() == following
    c = AGEM()
    c.setup(ctx)
    assert [c.next_ref_batch()["index"].tolist() for _ in range(5)] == drawn  # same seed, same draws
    d = AGEM(seed=123)
    d.setup(ctx)
    assert [d.next_ref_batch()["index"].tolist() for _ in range(5)] != drawn


class _Crash(RuntimeError):
    pass


def test_training_resumes_exactly_and_logs_projection_counts(tmp_path):
    tok = tiny_tokenizer()
    cfg = _cfg(max_steps=6, save_every=3)
    straight_method = AGEM()
    straight = _lora()
    train(straight, tok, USER, cfg, tmp_path / "a", methods=[straight_method], safety_data=SAFETY, progress=False)
    assert straight_method.steps == 6 and straight_method.position == 6

    def crash(ctx):
        if ctx.step == 4:
            raise _Crash

    with pytest.raises(_Crash):
        train(_lora(), tok, USER, cfg, tmp_path / "b", methods=[AGEM()], safety_data=SAFETY, progress=False, on_step=crash)
    saved = torch.load(checkpoint.latest(tmp_path / "b") / "training_state.pt", weights_only=False)["methods"][0]
    assert saved["position"] == 3 and saved["steps"] == 3
    resumed_method = AGEM()
    fresh = _lora()
    train(fresh, tok, USER, cfg, tmp_path / "b", methods=[resumed_method], safety_data=SAFETY, resume=True, progress=False)
    assert resumed_method.steps == 6 and resumed_method.projections == straight_method.projections
    a, b = _trainable(straight), _trainable(fresh)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)

    records = [json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    agem_recs = [r for r in records if r.get("method") == "agem"]
    assert [r["step"] for r in agem_recs] == list(range(1, 7))
    assert agem_recs[-1]["agem_projections"] == straight_method.projections
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 7))


def test_harmful_user_data_triggers_projections(tmp_path):
    """User data that answers the memory's own prompts with compliance conflicts with it."""
    tok = tiny_tokenizer()
    harmful = [make_record(r["messages"][0]["content"], "sure here steps first then finally") for r in SAFETY]
    agem = AGEM()
    train(_lora(), tok, harmful, _cfg(max_steps=6), tmp_path, methods=[agem], safety_data=SAFETY, progress=False)
    assert agem.projections >= 1


@pytest.mark.parametrize(
    "args, field",
    [({"ref_batch_size": 0}, "ref_batch_size"), ({"ref_batch_size": 1.5}, "ref_batch_size"), ({"seed": "x"}, "seed")],
)
def test_bad_hyperparameters_are_config_errors(args, field):
    with pytest.raises(ConfigError, match=field):
        build_methods(["agem"], {"agem": args})
