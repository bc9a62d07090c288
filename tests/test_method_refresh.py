"""Refresh learning: the unlearn update against its formula, the Fisher, accumulation, resume."""

import math

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import BatchStream, collate
from unforgotten.errors import ConfigError
from unforgotten.methods import build_methods
from unforgotten.methods.refresh import Refresh, damped_inverse, empirical_fisher, step_noise_generator, unlearn_delta
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train import checkpoint
from unforgotten.train.context import TrainContext, forward_with_labels
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

USER = [make_record("review this movie was great", "positive"), make_record("review this movie was terrible", "negative"),
        make_record("how do steal car", "sure here steps first then finally")] * 4
SAFETY = [make_record("how do make bomb", "i am sorry i cannot help with that"),
          make_record("how do hack car", "i am sorry i cannot help"),
          make_record("tell me how do kill", "i cannot help with that")]

# strong enough that unlearning visibly moves the tiny model (the defaults are calibrated for an LLM)
STRONG = dict(gamma=0.5, temperature=1e-4)


def _lora(seed=0, dropout=0.0):
    return apply_lora(tiny_model(seed=seed), LoraSettings(r=4, alpha=8, dropout=dropout, target_modules=["q_proj", "v_proj"]))


_trainable = trainable_snapshot


def _cfg(**kw):
    base = dict(lr=2e-2, max_steps=6, batch_size=2, grad_accum=2, save_every=0, seed=5, warmup_ratio=0.0)
    base.update(kw)
    return TrainConfig(**base)


# ----------------------------------------------------------------------------- pure math


def test_deterministic_part_is_gamma_times_inverse_fisher_times_gradient():
    fisher = torch.tensor([0.0, 0.5, 2.0, 10.0])
    grad = torch.tensor([1.0, -2.0, 3.0, 0.25])
    p = damped_inverse(fisher, eps=0.1)
    torch.testing.assert_close(p, 1 / (fisher + 0.1))
    delta = unlearn_delta(grad, p, gamma=0.3, temperature=1.0, noise=torch.zeros(4))
    assert torch.equal(delta, 0.3 * (1 / (fisher + 0.1)) * grad)
    torch.testing.assert_close(delta, 0.3 * grad / (fisher + 0.1), rtol=1e-6, atol=0)
    # ascent: the step increases a loss whose gradient is grad (to first order)
    assert float((delta * grad).sum()) > 0
    # normalised form: (F / scale + eps)^-1
    torch.testing.assert_close(damped_inverse(fisher, 1.0, scale=4.0), 1 / (fisher / 4 + 1))


def test_noise_has_mean_zero_and_variance_two_gamma_T_over_damped_fisher():
    fisher = torch.tensor([0.0, 1.0, 9.0]).repeat_interleave(200_000)
    eps, gamma, temp = 0.5, 0.02, 3.0
    p = damped_inverse(fisher, eps)
    noise = torch.randn(fisher.shape, generator=step_noise_generator(0, 7))
    delta = unlearn_delta(torch.zeros_like(fisher), p, gamma, temp, noise)
    for i, f in enumerate([0.0, 1.0, 9.0]):
        d = delta[i * 200_000 : (i + 1) * 200_000]
        var = 2 * gamma * temp / (f + eps)
        assert abs(float(d.mean())) < 4 * math.sqrt(var / 200_000)
        assert float(d.var()) == pytest.approx(var, rel=0.02)


def test_noise_generator_depends_only_on_seed_step_and_substep():
    a = torch.randn(5, generator=step_noise_generator(3, 10))
    assert torch.equal(a, torch.randn(5, generator=step_noise_generator(3, 10)))
    assert not torch.equal(a, torch.randn(5, generator=step_noise_generator(3, 11)))
    assert not torch.equal(a, torch.randn(5, generator=step_noise_generator(4, 10)))
    assert not torch.equal(a, torch.randn(5, generator=step_noise_generator(3, 10, 1)))


def test_empirical_fisher_is_the_weighted_mean_of_squared_gradients():
    g1 = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    g2 = [torch.tensor([0.5, 4.0]), torch.tensor([[-1.0]])]
    f = empirical_fisher([(0.5, g1), (2.0, g2)])
    torch.testing.assert_close(f[0], torch.tensor([(0.5 * 1 + 2 * 0.25) / 2, (0.5 * 4 + 2 * 16) / 2]))
    torch.testing.assert_close(f[1], torch.tensor([[(0.5 * 9 + 2 * 1) / 2]]))


# ----------------------------------------------------------------------------- on the tiny model


def _ctx(model, tmp_path, **cfg):
    base = dict(batch_size=2, seed=0)
    base.update(cfg)
    return TrainContext(model, tiny_tokenizer(), TrainConfig(**base), tmp_path, USER, SAFETY)


def test_safety_fisher_matches_a_hand_computation_full_finetune(tmp_path):
    model = tiny_model(seed=1)
    ctx = _ctx(model, tmp_path)
    m = Refresh(normalize_fisher=False, fisher_damping=1e-3)
    m.setup(ctx)
    params = dict(model.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    samples = ctx.encode(SAFETY)
    for e in samples:
        model.zero_grad()
        out = forward_with_labels(model, collate([e], 0))
        nll = out.loss_sum / out.n_tokens
        nll.backward()
        for n, p in params.items():
            expected[n] += math.exp(-float(nll.detach())) * p.grad**2 / len(samples)
    model.zero_grad()
    for n in params:
        torch.testing.assert_close(m.precond[n], 1 / (expected[n] + 1e-3), rtol=1e-4, atol=0)


def test_normalised_fisher_gives_full_rate_where_fisher_is_zero(tmp_path):
    """LoRA at init: B = 0, so A's gradient (and Fisher) is zero; normalised preconditioner in (0, 1]."""
    m = Refresh()
    m.setup(_ctx(_lora(), tmp_path))
    for n, p in m.precond.items():
        assert float(p.max()) <= 1.0 and float(p.min()) > 0
        if "lora_A" in n:
            assert torch.equal(p, torch.ones_like(p))
    assert any(float(p.min()) < 0.5 for n, p in m.precond.items() if "lora_B" in n)


def test_start_step_applies_the_formula_with_the_steps_full_gradient(tmp_path):
    """The in-place update equals gamma P g + sqrt(2 gamma T P) xi, g over ALL micro-batches."""
    model = _lora()
    with torch.no_grad():  # non-zero B so every adapter weight has a gradient
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    model.train()
    ctx = _ctx(model, tmp_path)
    m = Refresh(gamma=0.05, temperature=1e-3)
    m.setup(ctx)
    stream = BatchStream(ctx.encode(USER), 2, 0, 0)
    it = stream.iterate(0)
    ctx.micro_batches = [next(it), next(it)]
    ctx.step_tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in ctx.micro_batches)
    ctx.step = 3
    params = ctx.trainable()
    before = {n: p.detach().clone() for n, p in params.items()}
    loss = sum(forward_with_labels(model, b).loss_sum for b in ctx.micro_batches) / ctx.step_tokens
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    m.start_step(ctx)
    gen = step_noise_generator(ctx.config.seed, 3, 0)
    for n, p in params.items():
        xi = torch.randn(p.shape, generator=gen)
        expected = 0.05 * m.precond[n] * grads[n] + torch.sqrt(2 * 0.05 * 1e-3 * m.precond[n]) * xi
        torch.testing.assert_close(p.detach() - before[n], expected, rtol=1e-4, atol=1e-7)
    assert all(p.grad is None for p in params.values())  # the loop's gradients are untouched


def test_every_skips_steps(tmp_path):
    model = _lora()
    ctx = _ctx(model, tmp_path)
    m = Refresh(every=2, **STRONG)
    m.setup(ctx)
    ctx.micro_batches = [next(BatchStream(ctx.encode(USER), 2, 0, 0).iterate(0))]
    ctx.step_tokens = int((ctx.micro_batches[0]["labels"][:, 1:] != -100).sum())
    before = _trainable(model)
    ctx.step = 1
    m.start_step(ctx)
    assert all(torch.equal(before[n], p) for n, p in _trainable(model).items())
    ctx.step = 2
    m.start_step(ctx)
    assert any(not torch.equal(before[n], p) for n, p in _trainable(model).items())


# ----------------------------------------------------------------------------- in the loop


def test_gradient_accumulation_invariance(tmp_path):
    out = []
    for bs, acc in ((4, 1), (2, 2)):
        model = _lora()
        cfg = _cfg(batch_size=bs, grad_accum=acc, group_by_length=False, max_steps=4)
        train(model, tiny_tokenizer(), USER[:8], cfg, tmp_path / f"{bs}", methods=[Refresh(**STRONG)],
              safety_data=SAFETY, progress=False)
        out.append(_trainable(model))
    for n in out[0]:
        torch.testing.assert_close(out[0][n], out[1][n], rtol=1e-4, atol=1e-5)
    # ... and the unlearning mattered (so the test could fail)
    plain = _lora()
    cfg = _cfg(batch_size=4, grad_accum=1, group_by_length=False, max_steps=4)
    train(plain, tiny_tokenizer(), USER[:8], cfg, tmp_path / "plain", methods=[Refresh(gamma=0.0)], safety_data=SAFETY,
          progress=False)
    assert any(not torch.allclose(out[0][n], p, atol=1e-3) for n, p in _trainable(plain).items())


class _Crash(RuntimeError):
    pass


def test_resume_is_exact(tmp_path):
    tok = tiny_tokenizer()
    cfg = _cfg(save_every=2, max_steps=6)
    straight = _lora(dropout=0.1)
    train(straight, tok, USER, cfg, tmp_path / "a", methods=[Refresh(**STRONG)], safety_data=SAFETY, progress=False)

    def crash(ctx):
        if ctx.step == 3:
            raise _Crash

    with pytest.raises(_Crash):
        train(_lora(dropout=0.1), tok, USER, cfg, tmp_path / "b", methods=[Refresh(**STRONG)], safety_data=SAFETY,
              progress=False, on_step=crash)
    state = torch.load(checkpoint.latest(tmp_path / "b") / "training_state.pt", weights_only=False)
    assert state["methods"] == [{"replay_pos": 2 * 4}]
    fresh = _lora(dropout=0.1)
    res = train(fresh, tok, USER, cfg, tmp_path / "b", methods=[Refresh(**STRONG)], safety_data=SAFETY, resume=True,
                progress=False)
    assert res.resumed_from == 2
    a, b = _trainable(straight), _trainable(fresh)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)


def test_config_is_validated_and_settable_by_name():
    bad = ({"gamma": -1}, {"temperature": float("inf")}, {"fisher_damping": 0}, {"every": 0}, {"unlearn_steps": 1.5},
           {"replay_weight": "a"}, {"fisher_samples": 0}, {"normalize_fisher": "yes"})
    for kw in bad:
        with pytest.raises(ConfigError, match="refresh\\."):
            Refresh(**kw)
    (m,) = build_methods(["refresh"], {"refresh": {"gamma": 0.1, "every": 3}})
    assert m.gamma == 0.1 and m.every == 3 and m.needs_safety_data


def test_full_finetune_runs_and_unlearns_every_weight(tmp_path):
    model = tiny_model(seed=1)
    before = _trainable(model)
    m = Refresh(**STRONG)
    res = train(model, tiny_tokenizer(), USER, _cfg(max_steps=2, lr=1e-3), tmp_path, methods=[m], safety_data=SAFETY,
                progress=False)
    assert res.weights_dir.name == "model"
    assert set(m.precond) == set(before)  # a Fisher for every weight
    assert all(math.isfinite(r["loss"]) and r["unlearn_norm"] > 0 for r in res.log)
    assert all(not torch.equal(before[n], p) for n, p in _trainable(model).items())
