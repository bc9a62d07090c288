"""OGPSA: the per-tensor basis is the top-k right singular subspace of the reference gradients, the
projected gradient is orthogonal to it (and idempotent); end to end every trainable tensor's
stepped gradient is orthogonal to its basis and to every reference gradient, the refresh schedule
counts optimizer steps, and the method is invariant to gradient accumulation and resumes exactly."""

import math

import pytest
import torch
import torch.nn.functional as F

from unforgotten.config import TrainConfig
from unforgotten.data.readers import load_records
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import IGNORE, collate, encode_records
from unforgotten.errors import ConfigError, UserInputError
from unforgotten.methods import build_methods
from unforgotten.methods.ogpsa import (
    OGPSA,
    SEED_OFFSET,
    per_sample_gradients,
    project_out,
    refresh_due,
    subspace_basis,
)
from unforgotten.models import LoraSettings, apply_lora
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
    make_record("write poem about cats", "the sky is blue and cats are good"),
    make_record("how do steal car", "sure here steps first then finally"),
] * 2


_lora = tiny_lora


def _moved_lora(seed=0):
    """A LoRA model whose B matrices are non-zero, so A matrices get gradients too (as after some training)."""
    model = _lora(seed)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def _cfg(**kw):
    base = dict(lr=5e-2, max_steps=4, batch_size=4, warmup_ratio=0.0, save_every=0, seed=3, group_by_length=False)
    base.update(kw)
    return TrainConfig(**base)


_trainable = trainable_snapshot


def _projector(U):
    return U.double() @ U.double().T


# --------------------------------------------------------------------------- plain tensors


def _spectrum_matrix(n, d, sigmas, seed):
    """G = W diag(sigmas) V^T with random orthonormal W (n x r), V (d x r): known singular vectors."""
    g = torch.Generator().manual_seed(seed)
    r = len(sigmas)
    W, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(d, r, generator=g, dtype=torch.float64))
    return (W * torch.tensor(sigmas, dtype=torch.float64)) @ V.T, V


def test_basis_is_the_top_k_right_singular_subspace_and_captures_the_top_k_energy():
    sigmas = [10.0, 7.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.25]
    G, V = _spectrum_matrix(20, 60, sigmas, seed=0)
    U = subspace_basis(G.float(), rank=3)
    assert U.shape == (60, 3) and U.dtype == torch.float32
    torch.testing.assert_close(U.double().T @ U.double(), torch.eye(3, dtype=torch.float64), atol=1e-6, rtol=0)
    # same subspace as the known top-3 singular vectors, and as torch.linalg.svd's
    torch.testing.assert_close(_projector(U), V[:, :3] @ V[:, :3].T, atol=1e-5, rtol=0)
    _, S, Vh = torch.linalg.svd(G, full_matrices=False)
    torch.testing.assert_close(_projector(U), Vh[:3].T @ Vh[:3], atol=1e-5, rtol=0)
    # captured energy = sum of the top-3 squared singular values (Eckart-Young optimum)
    captured = float((G @ U.double()).pow(2).sum())
    assert captured == pytest.approx(sum(s * s for s in sigmas[:3]), rel=1e-5)
    # and no other 3-dim subspace captures more (random ones for a sanity check)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        Q, _ = torch.linalg.qr(torch.randn(60, 3, generator=gen, dtype=torch.float64))
        assert float((G @ Q).pow(2).sum()) <= captured + 1e-9


def test_basis_spans_every_reference_gradient_when_n_ref_le_rank():
    g = torch.Generator().manual_seed(2)
    G = torch.randn(5, 40, generator=g) * torch.tensor([[1.0], [3.0], [0.2], [10.0], [1.0]])
    U = subspace_basis(G, rank=8)
    assert U.shape == (40, 5)  # min(rank, n)
    recon = G.double() - G.double() @ _projector(U)
    assert float(recon.norm() / G.double().norm()) < 1e-6
    for row, r in zip(G, recon):  # each row on its own, not just in aggregate
        assert float(r.norm()) < 1e-5 * float(row.norm())


def test_rank_deficient_and_zero_gradients_keep_only_real_directions():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(3, 30, generator=g)
    G = torch.cat([base, base[:1] * 2.0, base[1:2] - base[2:3]])  # 5 rows, rank 3
    U = subspace_basis(G, rank=8)
    assert U.shape == (30, 3)
    assert float((G.double() - G.double() @ _projector(U)).norm()) < 1e-5 * float(G.norm())
    zero = subspace_basis(torch.zeros(4, 30), rank=8)  # LoRA A while B = 0: nothing to protect
    assert zero.shape == (30, 0)
    v = torch.randn(30, generator=g)
    assert torch.equal(project_out(v, zero), v)


def test_projected_gradient_is_orthogonal_to_the_subspace_and_idempotent():
    gen = torch.Generator().manual_seed(4)
    for d, k in [(50, 1), (50, 7), (200, 16), (9, 9)]:
        U = subspace_basis(torch.randn(k, d, generator=gen), rank=k)
        for scale in (1e-6, 1.0, 1e6):
            g = scale * torch.randn(d, generator=gen)
            p = project_out(g, U)
            assert float((U.T @ p).abs().max()) <= 1e-5 * float(g.norm())
            torch.testing.assert_close(project_out(p, U), p, rtol=0, atol=1e-5 * float(g.norm()))
            # Pythagoras: g = Pg + (g - Pg), the removed part lies in span(U)
            assert float(p.double().norm() ** 2 + (g - p).double().norm() ** 2) == pytest.approx(
                float(g.double().norm() ** 2), rel=1e-5
            )
            removed = (g - p).double()
            assert float((removed - _projector(U) @ removed).norm()) <= 1e-5 * float(g.norm())
    # closed form: span{e1, e2} in R^3; shapes (matrices) are kept
    U = torch.eye(3)[:, :2]
    torch.testing.assert_close(project_out(torch.tensor([1.0, 2.0, 3.0]), U), torch.tensor([0.0, 0.0, 3.0]))
    m = torch.arange(6.0).view(2, 3)
    U6 = torch.eye(6)[:, [0, 5]]
    torch.testing.assert_close(project_out(m, U6), torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 0.0]]))


def test_per_sample_gradients_of_softmax_regression_match_the_closed_form():
    """Per-sample gradient of CE(Wx + b, y) is ((softmax - onehot) x^T, softmax - onehot)."""
    g = torch.Generator().manual_seed(5)
    C, D, N = 4, 3, 6
    W = torch.randn(C, D, generator=g).requires_grad_()
    b = torch.randn(C, generator=g).requires_grad_()
    xs = torch.randn(N, D, generator=g)
    ys = torch.randint(0, C, (N,), generator=g)
    losses = [lambda x=x, y=y: F.cross_entropy((W @ x + b)[None], y[None]) for x, y in zip(xs, ys)]
    losses.insert(2, lambda: None)  # a sample without label tokens is skipped
    G = per_sample_gradients(losses, {"W": W, "b": b})
    with torch.no_grad():
        err = torch.softmax(xs @ W.T + b, -1) - F.one_hot(ys, C).float()
    assert G["W"].shape == (N, C * D) and G["b"].shape == (N, C)
    torch.testing.assert_close(G["W"], (err[:, :, None] * xs[:, None, :]).reshape(N, -1))
    torch.testing.assert_close(G["b"], err)
    assert W.grad is None and b.grad is None
    with pytest.raises(ValueError):
        per_sample_gradients([lambda: None], {"W": W})


def test_refresh_schedule_counts_steps_once_each():
    def simulate(every, n_steps, repeat=1):
        last, done = None, []
        for step in range(n_steps):
            for _ in range(repeat):  # a second check in the same step never refreshes again
                if refresh_due(step, every, last):
                    last = step
                    done.append(step)
        return done

    assert simulate(3, 11) == [0, 3, 6, 9]
    assert simulate(3, 11, repeat=2) == [0, 3, 6, 9]
    assert simulate(0, 11) == [0]  # never refreshed after the first
    assert simulate(1, 4) == [0, 1, 2, 3]
    assert refresh_due(7, 5, None)  # no bases yet: always
    assert not refresh_due(10, 5, 10) and refresh_due(10, 5, 5)


# --------------------------------------------------------------------------- the method on a tiny model


def _reference_grads(model, tok, records):
    """Independent per-sample gradients: full logits, shifted labels, mean NLL over response tokens."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    encs, _ = encode_records(tok, records, 256)
    out = []
    model.eval()
    for e in encs:
        ids = torch.tensor([e.input_ids])
        labels = torch.tensor([e.labels])[:, 1:]
        logits = model(input_ids=ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
        out.append(dict(zip(params, [g.detach() for g in torch.autograd.grad(loss, list(params.values()))])))
    return out


def _user_backward(ctx):
    ctx.model.train()
    out = ctx.forward(collate(ctx.encode(USER[:4]), ctx.tokenizer.pad_token_id))
    (out.loss_sum / out.n_tokens).backward()


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_before_step_leaves_every_gradient_orthogonal_to_its_basis_and_the_reference(tmp_path, kind):
    tok = tiny_tokenizer()
    model = _moved_lora() if kind == "lora" else tiny_model()
    ctx = TrainContext(model, tok, _cfg(), tmp_path, safety_data=SAFETY)
    m = OGPSA(rank=8)  # n_ref = 5 safety samples <= rank: the bases span every reference gradient
    m.setup(ctx)
    ctx.step = 0
    m.start_step(ctx)
    params = ctx.trainable()
    assert set(m.bases) == set(params)
    for n, U in m.bases.items():
        assert U.dtype == torch.float32 and U.device == params[n].device
        assert U.shape == (params[n].numel(), 5)  # min(k=8, n_ref=5, numel)
    assert all(p.grad is None for p in params.values())  # the reference pass left .grad alone

    _user_backward(ctx)
    before = {n: p.grad.clone() for n, p in params.items()}
    m.before_step(ctx)
    refs = _reference_grads(model, tok, SAFETY)
    removed_sq = total_sq = 0.0
    for n, p in params.items():
        g = p.grad.reshape(-1)
        U = m.bases[n]
        assert float((U.T @ g).abs().max()) <= 1e-5 * float(before[n].norm()) + 1e-12, n
        for r in refs:  # first-order: the stepped gradient does not move any reference loss
            rn = r[n].reshape(-1)
            assert abs(float(g @ rn)) <= 1e-4 * float(before[n].norm() * rn.norm()) + 1e-12, n
        removed_sq += float((before[n] - p.grad).double().pow(2).sum())
        total_sq += float(before[n].double().pow(2).sum())
    fields = m.log_fields(ctx)
    assert fields["ogpsa_removed_frac"] == pytest.approx(math.sqrt(removed_sq / total_sq), rel=1e-6)
    assert 0.01 < fields["ogpsa_removed_frac"] < 1.0  # the projection did something, not everything
    assert fields["ogpsa_basis_dim"] == 5 * len(params) and fields["ogpsa_last_refresh"] == 0
    assert fields["ogpsa_refreshed"] is True


def test_lora_a_matrices_get_an_empty_basis_while_b_is_zero(tmp_path):
    ctx = TrainContext(_lora(), tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    m = OGPSA()
    m.setup(ctx)
    m.start_step(ctx)
    assert all(U.shape[1] == 0 for n, U in m.bases.items() if "lora_A" in n)
    assert all(U.shape[1] == 5 for n, U in m.bases.items() if "lora_B" in n)


def test_reference_gradients_are_taken_in_eval_mode_and_the_mode_is_restored(tmp_path):
    """With LoRA dropout on, train-mode gradients would be random: eval mode makes the bases deterministic."""
    model = apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, dropout=0.5, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    model.train()
    ctx = TrainContext(model, tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    a, b = OGPSA(), OGPSA()
    for m in (a, b):
        m.setup(ctx)
        m.start_step(ctx)
    assert model.training
    for n in a.bases:
        torch.testing.assert_close(_projector(a.bases[n]), _projector(b.bases[n]), rtol=0, atol=1e-6)


def test_refresh_counts_optimizer_steps_under_accumulation(tmp_path):
    m = OGPSA(refresh_every=2)
    res = train(_lora(), tiny_tokenizer(), USER, _cfg(max_steps=5, batch_size=2, grad_accum=2), tmp_path,
                methods=[m], safety_data=SAFETY, progress=False)
    assert m.refreshes == 3 and m.last_refresh == 4  # at the start of steps 0, 2, 4
    assert [r["ogpsa_refreshed"] for r in res.log] == [True, False, True, False, True]
    assert [r["ogpsa_last_refresh"] for r in res.log] == [0, 0, 2, 2, 4]
    assert all(0.0 <= r["ogpsa_removed_frac"] <= 1.0 and math.isfinite(r["ogpsa_grad_norm"]) for r in res.log)
    # after B has moved, the refreshed bases protect the A matrices too
    assert any(U.shape[1] > 0 for n, U in m.bases.items() if "lora_A" in n)


def test_gradient_accumulation_invariance_and_the_projection_matters(tmp_path):
    tok = tiny_tokenizer()
    runs = {}
    for key, (bs, acc) in {"big": (4, 1), "acc": (2, 2)}.items():
        model = _lora()
        train(model, tok, USER, _cfg(batch_size=bs, grad_accum=acc), tmp_path / key,
              methods=[OGPSA(refresh_every=2)], safety_data=SAFETY, progress=False)
        runs[key] = _trainable(model)
    sft = _lora()
    train(sft, tok, USER, _cfg(), tmp_path / "sft", safety_data=SAFETY, progress=False)
    sft_w = _trainable(sft)
    for n in runs["big"]:
        torch.testing.assert_close(runs["big"][n], runs["acc"][n], rtol=1e-4, atol=1e-5)
    assert max(float((runs["big"][n] - sft_w[n]).abs().max()) for n in sft_w) > 1e-3


class _Crash(RuntimeError):
    pass


def test_resume_is_exact_with_the_saved_bases(tmp_path):
    tok = tiny_tokenizer()
    cfg = _cfg(max_steps=6, save_every=3, batch_size=2, grad_accum=2)
    straight = _lora()
    s = OGPSA(refresh_every=2)
    train(straight, tok, USER, cfg, tmp_path / "a", methods=[s], safety_data=SAFETY, progress=False)

    first = OGPSA(refresh_every=2)
    saved = {}

    def crash(ctx):
        if ctx.step == 3:
            saved.update({n: U.clone() for n, U in first.bases.items()})  # the bases the checkpoint holds
        if ctx.step == 4:
            raise _Crash

    with pytest.raises(_Crash):
        train(_lora(), tok, USER, cfg, tmp_path / "b", methods=[first], safety_data=SAFETY, progress=False, on_step=crash)

    # a fresh process whose adapter was initialised differently: bases at its start would be wrong
    torch.manual_seed(12345)
    fresh = apply_lora(tiny_model(seed=0), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    resumed = OGPSA(refresh_every=2)
    seen = {}

    def peek(ctx):
        if ctx.step == 4:  # step 4 ran with the bases from the checkpoint (refresh at step 2)
            seen.update({n: U.clone() for n, U in resumed.bases.items()})
            seen["last"] = resumed.last_refresh

    res = train(fresh, tok, USER, cfg, tmp_path / "b", methods=[resumed], safety_data=SAFETY, resume=True,
                progress=False, on_step=peek)
    assert res.resumed_from == 3
    assert seen.pop("last") == 2
    for n in saved:
        assert torch.equal(seen[n], saved[n])
    assert resumed.refreshes == s.refreshes == 3 and resumed.last_refresh == 4
    a, b = _trainable(straight), _trainable(fresh)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)
    for n in s.bases:
        torch.testing.assert_close(resumed.bases[n], s.bases[n], rtol=0, atol=1e-6)


def test_state_dict_round_trip(tmp_path):
    ctx = TrainContext(_moved_lora(), tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    one = OGPSA(refresh_every=3)
    assert one.state_dict() == {}
    one.setup(ctx)
    one.start_step(ctx)
    two = OGPSA(refresh_every=3)
    two.setup(ctx)
    two.load_state_dict(one.state_dict())
    assert two.last_refresh == 0 and two.refreshes == 1
    assert one.bases.keys() == two.bases.keys()
    assert all(torch.equal(one.bases[n], two.bases[n]) for n in one.bases)
    ctx.step = 1
    two.start_step(ctx)  # not due: no recomputation after a load
    assert two.refreshes == 1
    assert one.basis_bytes() == sum(U.numel() * 4 for U in one.bases.values()) > 0


def test_reference_data_source_is_loaded_without_safety_data(tmp_path):
    """The align step's use: capability reference, no safety buffer."""
    tok = tiny_tokenizer()
    cfg = _cfg(max_steps=2)
    ctx = TrainContext(_lora(), tok, cfg, tmp_path, safety_data=None)
    m = OGPSA(reference="starter:general_helpful", n_ref=4)
    m.setup(ctx)
    expected = load_records("starter:general_helpful", require_response=True, limit=4, seed=cfg.seed + SEED_OFFSET)
    assert [r["messages"] for r in m.reference_records(ctx)] == [r["messages"] for r in expected]
    assert len(m._samples) == 4
    res = train(_lora(), tok, USER, cfg, tmp_path / "run", methods=[OGPSA(reference="starter:general_helpful", n_ref=4)],
                safety_data=None, progress=False)
    assert all(math.isfinite(r["loss"]) for r in res.log)
    with pytest.raises(UserInputError, match="reference"):
        OGPSA().setup(TrainContext(_lora(), tok, cfg, tmp_path, safety_data=None))


def test_n_ref_takes_a_seeded_subset_of_the_safety_buffer(tmp_path):
    ctx = TrainContext(_lora(), tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    a, b, c = OGPSA(n_ref=2), OGPSA(n_ref=2), OGPSA(n_ref=2, seed=99)
    for m in (a, b, c):
        m.setup(ctx)
    assert len(a._samples) == 2
    assert [e.input_ids for e in a._samples] == [e.input_ids for e in b._samples]
    picked = [r["messages"] for r in a.reference_records(ctx)]
    assert all(p in [r["messages"] for r in SAFETY] for p in picked)
    everything = OGPSA(n_ref=100).reference_records(ctx)  # n_ref above the buffer size: all of it
    assert sorted(str(r["messages"]) for r in everything) == sorted(str(r["messages"]) for r in SAFETY)


@pytest.mark.parametrize(
    "args, field",
    [({"rank": 0}, "rank"), ({"rank": 2.5}, "rank"), ({"n_ref": 0}, "n_ref"), ({"refresh_every": -1}, "refresh_every"),
     ({"reference": ""}, "reference"), ({"seed": 1.5}, "seed"), ({"rank": True}, "rank")],
)
def test_bad_hyperparameters_are_config_errors(args, field):
    with pytest.raises(ConfigError, match=field):
        build_methods(["ogpsa"], {"ogpsa": args})


def test_defaults_and_config_args():
    (m,) = build_methods(["ogpsa"], {"ogpsa": {"rank": 4, "reference": "starter:general_helpful", "refresh_every": 0}})
    assert (m.rank, m.n_ref, m.refresh_every, m.reference) == (4, 32, 0, "starter:general_helpful")
    assert OGPSA.hyperparameters() == {"rank": 8, "n_ref": 32, "refresh_every": 30, "reference": None, "seed": None}


def test_pipeline_hands_ogpsa_the_safety_buffer_only_without_a_reference():
    from unforgotten.methods import build_methods

    [default] = build_methods(["ogpsa"], {})
    [with_ref] = build_methods(["ogpsa"], {"ogpsa": {"reference": "starter:general_helpful"}})
    assert default.uses_safety_data() and not with_ref.uses_safety_data()
