"""LwF: hidden-state distillation math on plain tensors (masking included); the term is zero while
the model equals the aligned one, has the right gradient once it moves, and is invariant to
gradient accumulation."""

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import collate
from unforgotten.errors import ConfigError
from unforgotten.methods import build_methods
from unforgotten.methods.lwf import LwF, hidden_distillation, hidden_distillation_sum
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.context import TrainContext
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

USER = [
    make_record("review this movie was great", "positive"),
    make_record("review this movie was terrible", "negative"),
    make_record("write poem about cats", "the sky is blue and cats are good"),
    make_record("how do steal car", "sure here steps first then finally"),
] * 2


def _lora(seed=0, dropout=0.0):
    return apply_lora(tiny_model(seed=seed), LoraSettings(r=4, alpha=8, dropout=dropout, target_modules=["q_proj", "v_proj"]))


def _cfg(**kw):
    base = dict(lr=5e-2, max_steps=4, batch_size=4, warmup_ratio=0.0, save_every=0, seed=3, group_by_length=False)
    base.update(kw)
    return TrainConfig(**base)


_trainable = trainable_snapshot


def _ctx_and_batch(model, tmp_path, records=USER[:4]):
    tok = tiny_tokenizer()
    ctx = TrainContext(model, tok, _cfg(), tmp_path)
    batch = collate(ctx.encode(records), tok.pad_token_id)
    ctx.micro_batches = [batch]
    return ctx, batch


def _perturb_lora_b(model, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(scale * torch.randn(p.shape, generator=g))


# --------------------------------------------------------------------------- plain tensors


def test_distillation_matches_a_hand_loop_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    B, T, H = 3, 5, 4
    s, t = torch.randn(B, T, H, generator=g), torch.randn(B, T, H, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    total, count = 0.0, 0
    for b in range(B):
        for i in range(T):
            if mask[b, i]:
                total += float(((s[b, i] - t[b, i]) ** 2).sum())
                count += 1
    assert float(hidden_distillation_sum(s, t, mask)) == pytest.approx(total, rel=1e-5)
    assert float(hidden_distillation(s, t, mask)) == pytest.approx(total / count, rel=1e-5)
    assert float(hidden_distillation(s, t, mask, "mean")) == pytest.approx(total / count / H, rel=1e-5)
    # whatever sits at padded positions does not count
    s2 = s.clone()
    s2[mask == 0] = 1e6
    assert float(hidden_distillation(s2, t, mask)) == pytest.approx(total / count, rel=1e-5)
    # identical states: exactly zero
    assert float(hidden_distillation(s, s.clone(), mask)) == 0.0
    with pytest.raises(ValueError):
        hidden_distillation(s, t, mask, "max")


def test_distillation_gradient_is_twice_the_masked_difference():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(2, 3, 4, generator=g).requires_grad_()
    t = torch.randn(2, 3, 4, generator=g)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    (grad,) = torch.autograd.grad(hidden_distillation(s, t, mask), [s])
    expected = 2 * (s.detach() - t) * mask[..., None] / 3
    torch.testing.assert_close(grad, expected)


# --------------------------------------------------------------------------- the method on a tiny model


def test_term_is_zero_at_the_start_and_when_the_adapter_is_disabled(tmp_path):
    model = _lora(dropout=0.1)  # dropout on the adapter input does not matter while B = 0
    model.train()
    ctx, batch = _ctx_and_batch(model, tmp_path)
    lwf = LwF(beta=1.0)
    lwf.setup(ctx)
    out = ctx.forward(batch, want_hidden=True)
    task = out.loss_sum / out.n_tokens
    loss = lwf.loss(ctx, batch, out, task)
    assert lwf.last_term == 0.0
    params = [p for p in model.parameters() if p.requires_grad]
    extra = torch.autograd.grad(loss - task, params, allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in extra)

    _perturb_lora_b(model)
    model.eval()
    with model.disable_adapter():
        out = ctx.forward(batch, want_hidden=True)
        lwf.loss(ctx, batch, out, out.loss_sum / out.n_tokens)
    assert lwf.last_term == 0.0


def test_term_and_gradient_after_the_weights_move_match_an_independent_computation(tmp_path):
    model = _lora()
    _perturb_lora_b(model)
    model.eval()
    ctx, batch = _ctx_and_batch(model, tmp_path)
    lwf = LwF(beta=0.7)
    lwf.setup(ctx)
    out = ctx.forward(batch, want_hidden=True)
    task = out.loss_sum / out.n_tokens
    loss = lwf.loss(ctx, batch, out, task)
    params = [p for p in model.parameters() if p.requires_grad]
    got = torch.autograd.grad(loss - task, params, allow_unused=True)

    # independently: full forward with and without the adapter, hand-written masked mean
    h = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states[-1]
    with model.disable_adapter(), torch.no_grad():
        h0 = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states[-1]
    m = batch["attention_mask"].float()
    ref_term = (((h - h0) ** 2).sum(-1) * m).sum() / m.sum()
    assert lwf.last_term == pytest.approx(float(ref_term.detach()), rel=1e-5)
    assert lwf.last_term > 0
    want = torch.autograd.grad(0.7 * ref_term, params, allow_unused=True)
    nonzero = 0
    for a, b in zip(got, want):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
        nonzero += int(torch.count_nonzero(b) > 0)
    assert nonzero > 0


def test_micro_batch_share_is_relative_to_the_whole_step(tmp_path):
    """Two micro-batches' terms add up to the term of their union (positions averaged per step)."""
    model = _lora()
    _perturb_lora_b(model)
    model.eval()
    ctx, _ = _ctx_and_batch(model, tmp_path)
    encs = ctx.encode(USER[:4])
    pad = ctx.tokenizer.pad_token_id
    halves = [collate(encs[:2], pad), collate(encs[2:], pad)]
    whole = collate(encs, pad)
    lwf = LwF(beta=1.0)
    ctx.micro_batches = halves
    parts = []
    for b in halves:
        out = ctx.forward(b, want_hidden=True)
        lwf.loss(ctx, b, out, out.loss_sum * 0)
        parts.append(lwf.last_term)
    ctx.micro_batches = [whole]
    out = ctx.forward(whole, want_hidden=True)
    lwf.loss(ctx, whole, out, out.loss_sum * 0)
    assert sum(parts) == pytest.approx(lwf.last_term, rel=1e-4)


def test_gradient_accumulation_invariance_and_the_term_matters(tmp_path):
    tok = tiny_tokenizer()
    runs = {}
    for key, (bs, acc) in {"big": (4, 1), "acc": (2, 2)}.items():
        model = _lora()
        train(model, tok, USER, _cfg(batch_size=bs, grad_accum=acc), tmp_path / key, methods=[LwF(beta=1.0)], progress=False)
        runs[key] = _trainable(model)
    sft = _lora()
    train(sft, tok, USER, _cfg(), tmp_path / "sft", progress=False)
    sft_w = _trainable(sft)
    for n in runs["big"]:
        torch.testing.assert_close(runs["big"][n], runs["acc"][n], rtol=1e-4, atol=1e-5)
    assert max(float((runs["big"][n] - sft_w[n]).abs().max()) for n in sft_w) > 1e-3


def test_full_finetuning_uses_a_frozen_copy(tmp_path):
    model = tiny_model()
    model.train()
    ctx, batch = _ctx_and_batch(model, tmp_path)
    lwf = LwF()
    lwf.setup(ctx)
    out = ctx.forward(batch, want_hidden=True)
    lwf.loss(ctx, batch, out, out.loss_sum / out.n_tokens)
    assert lwf.last_term == 0.0
    with torch.no_grad():
        model.model.norm.weight.mul_(1.1)  # move the trained model; the copy stays
    out = ctx.forward(batch, want_hidden=True)
    lwf.loss(ctx, batch, out, out.loss_sum / out.n_tokens)
    assert lwf.last_term > 0


@pytest.mark.parametrize("args, field", [({"beta": -0.1}, "beta"), ({"beta": "x"}, "beta"), ({"beta": float("inf")}, "beta"), ({"hidden_reduction": "max"}, "hidden_reduction")])
def test_bad_hyperparameters_are_config_errors(args, field):
    with pytest.raises(ConfigError, match=field):
        build_methods(["lwf"], {"lwf": args})


def test_numeric_strings_from_yaml_are_accepted():
    (lwf,) = build_methods(["lwf"], {"lwf": {"beta": "5e-2"}})
    assert lwf.beta == 0.05
