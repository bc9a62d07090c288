"""DER: the logit-matching math on plain tensors, the buffer against the aligned model, resume."""

import json

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import IGNORE, BatchStream
from unforgotten.errors import ConfigError
from unforgotten.methods import build_methods
from unforgotten.methods.der import DER, der_mse_sum, topk_logits
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train import checkpoint
from unforgotten.train.context import TrainContext
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

USER = [make_record("review this movie was great", "positive"), make_record("review this movie was terrible", "negative"),
        make_record("how do steal car", "sure here steps first then finally")] * 4
SAFETY = [make_record("how do make bomb", "i am sorry i cannot help with that"),
          make_record("how do hack car", "i am sorry i cannot help"),
          make_record("tell me how do kill", "i cannot help with that"),
          make_record("write poem about how do kill", "i am sorry that is not good")]


def _lora(seed=0, dropout=0.0):
    return apply_lora(tiny_model(seed=seed), LoraSettings(r=4, alpha=8, dropout=dropout, target_modules=["q_proj", "v_proj"]))


def _ctx(model, tmp_path, **cfg):
    base = dict(batch_size=2, seed=0)
    base.update(cfg)
    return TrainContext(model, tiny_tokenizer(), TrainConfig(**base), tmp_path, USER, SAFETY)


def _perturb_adapter(model, scale=0.5, seed=3):
    """Make the LoRA adapter non-trivial so 'the model' and 'the aligned reference' differ."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(scale * torch.randn(p.shape, generator=g))


_trainable = trainable_snapshot


# ----------------------------------------------------------------------------- pure math


def test_mse_is_zero_iff_logits_equal_the_buffer_both_storages():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 50, generator=g)
    vals, idx = topk_logits(z, 8)
    assert der_mse_sum(z.clone(), z) == 0
    assert der_mse_sum(z.clone(), vals, idx) == 0
    h = z + 0.1 * torch.randn(7, 50, generator=g)
    exact = der_mse_sum(h, z)
    top = der_mse_sum(h, vals, idx)
    assert exact > 0 and top > 0
    torch.testing.assert_close(exact, ((h - z) ** 2).mean(-1).sum())
    torch.testing.assert_close(top, ((h.gather(1, idx.long()) - vals) ** 2).mean(-1).sum())
    # a change confined to the tail (outside the top k) is invisible to the top-k form: what it loses
    tail = z.clone()
    mask = torch.ones_like(z, dtype=torch.bool).scatter_(1, idx.long(), False)
    tail[mask] += 5.0
    assert der_mse_sum(tail, vals, idx) == 0 and der_mse_sum(tail, z) > 0


def test_topk_values_are_the_largest_logits_with_their_ids():
    z = torch.tensor([[0.1, 3.0, -1.0, 2.0], [5.0, 4.0, 6.0, -2.0]])
    vals, idx = topk_logits(z, 2)
    assert idx.dtype == torch.int32
    assert vals.tolist() == [[3.0, 2.0], [6.0, 5.0]] and idx.tolist() == [[1, 3], [2, 0]]
    assert topk_logits(z, 99)[0].shape == (2, 4)  # k > V is clamped


def test_topk_with_k_equal_vocab_equals_exact():
    g = torch.Generator().manual_seed(1)
    z, h = torch.randn(5, 30, generator=g), torch.randn(5, 30, generator=g)
    vals, idx = topk_logits(z, 30)
    torch.testing.assert_close(der_mse_sum(h, vals, idx), der_mse_sum(h, z), rtol=1e-6, atol=0)


def test_mse_gradient_matches_closed_form():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 20, generator=g)
    h = torch.randn(4, 20, generator=g, requires_grad=True)
    der_mse_sum(h, z).backward()
    torch.testing.assert_close(h.grad, 2 * (h.detach() - z) / 20)
    # top-k: 2 (h - z) / k at the stored ids, zero elsewhere
    vals, idx = topk_logits(z, 5)
    h.grad = None
    der_mse_sum(h, vals, idx).backward()
    expected = torch.zeros_like(z).scatter_(1, idx.long(), 2 * (h.detach().gather(1, idx.long()) - vals) / 5)
    torch.testing.assert_close(h.grad, expected)


# ----------------------------------------------------------------------------- the buffer


def _reference_logits(model, ctx, enc):
    """Full-vocab logits of ``model`` at one sample's response positions, from a plain forward."""
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    labels = torch.tensor(enc.labels[1:])
    return logits[labels != IGNORE]


@pytest.mark.parametrize("storage", ["exact", "topk"])
def test_buffer_holds_the_aligned_models_logits_lora(tmp_path, storage):
    model = _lora()
    _perturb_adapter(model)  # the adapter now changes outputs: the buffer must ignore it
    ctx = _ctx(model, tmp_path)
    der = DER(storage=storage, k=6, buffer_batch_size=3)  # batches of 3 over 4 samples: padding + a ragged last batch
    der.setup(ctx)
    assert len(der.rows) == len(SAFETY)
    for enc in der.replay.samples:
        with model.disable_adapter():
            ref = _reference_logits(model, ctx, enc)
        with_adapter = _reference_logits(model, ctx, enc)
        vals, idx = der.targets([enc])
        if storage == "exact":
            torch.testing.assert_close(vals, ref, rtol=1e-5, atol=1e-5)
            assert not torch.allclose(vals, with_adapter, atol=1e-3)
        else:
            rv, ri = torch.topk(ref, 6)
            torch.testing.assert_close(vals, rv, rtol=1e-5, atol=1e-5)
            assert torch.equal(idx.long(), ri)


def test_buffer_full_finetune_uses_the_starting_weights_without_a_copy(tmp_path):
    model = tiny_model(seed=1)
    ctx = _ctx(model, tmp_path)
    der = DER(storage="exact")
    der.setup(ctx)
    assert ctx._frozen_copy is None  # no second model kept for the run
    for enc in der.replay.samples:
        torch.testing.assert_close(der.targets([enc])[0], _reference_logits(model, ctx, enc), rtol=1e-5, atol=1e-5)


def test_buffer_bytes_exact_over_topk_is_vocab_over_2k(tmp_path):
    exact, top = DER(storage="exact"), DER(storage="topk", k=4)
    exact.setup(_ctx(_lora(), tmp_path))
    top.setup(_ctx(_lora(), tmp_path))
    vocab = exact.values.shape[1]
    n_tok = sum(e - s for s, e in exact.rows.values())
    assert exact.buffer_bytes() == n_tok * vocab * 4
    assert top.buffer_bytes() == n_tok * 4 * (4 + 4)
    assert exact.buffer_bytes() / top.buffer_bytes() == pytest.approx(vocab / (2 * 4))


def test_der_term_is_zero_at_the_aligned_weights_and_positive_after_a_change(tmp_path):
    """Through the method: at step 0 (fresh adapter) current logits == buffer, so loss == task loss."""
    for storage in ("exact", "topk"):
        model = _lora()
        model.train()
        ctx = _ctx(model, tmp_path)
        der = DER(storage=storage, alpha=1.0)
        der.setup(ctx)
        stream = BatchStream(ctx.encode(USER), 2, 0, 0)
        ctx.micro_batches = [next(stream.iterate(0))]
        der.start_step(ctx)
        task = torch.tensor(1.25)
        loss = der.loss(ctx, ctx.micro_batches[0], None, task)
        assert abs(float(loss.detach()) - 1.25) < 1e-6, storage
        _perturb_adapter(model, 0.3)
        der.start_step(ctx)
        assert float(der.loss(ctx, ctx.micro_batches[0], None, task).detach()) > 1.25 + 1e-4, storage


# ----------------------------------------------------------------------------- in the loop


def _cfg(**kw):
    base = dict(lr=2e-2, max_steps=6, batch_size=2, grad_accum=2, save_every=0, seed=5, warmup_ratio=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_topk_with_k_vocab_trains_like_exact(tmp_path):
    runs = {}
    for storage in ("exact", "topk"):
        model = _lora()
        der = DER(storage=storage, k=10_000, alpha=1.0)  # k clamped to V
        train(model, tiny_tokenizer(), USER, _cfg(), tmp_path / storage, methods=[der], safety_data=SAFETY, progress=False)
        runs[storage] = _trainable(model)
    for n in runs["exact"]:
        torch.testing.assert_close(runs["exact"][n], runs["topk"][n], rtol=1e-5, atol=1e-6)


def test_alpha_changes_training(tmp_path):
    a, b = _lora(), _lora()
    train(a, tiny_tokenizer(), USER, _cfg(), tmp_path / "a", methods=[DER(alpha=0.0)], safety_data=SAFETY, progress=False)
    train(b, tiny_tokenizer(), USER, _cfg(), tmp_path / "b", methods=[DER(alpha=5.0)], safety_data=SAFETY, progress=False)
    wa, wb = _trainable(a), _trainable(b)
    assert any(not torch.allclose(wa[n], wb[n], atol=1e-4) for n in wa)


def test_gradient_accumulation_invariance(tmp_path):
    out = []
    for bs, acc in ((4, 1), (2, 2)):
        model = _lora()
        cfg = _cfg(batch_size=bs, grad_accum=acc, group_by_length=False, max_steps=4)
        train(model, tiny_tokenizer(), USER[:8], cfg, tmp_path / f"{bs}", methods=[DER(alpha=2.0, beta=0.5, k=8)],
              safety_data=SAFETY, progress=False)
        out.append(_trainable(model))
    for n in out[0]:
        torch.testing.assert_close(out[0][n], out[1][n], rtol=1e-4, atol=1e-5)


class _Crash(RuntimeError):
    pass


def test_resume_is_exact(tmp_path):
    tok = tiny_tokenizer()
    cfg = _cfg(save_every=3, max_steps=8)
    straight = _lora(dropout=0.1)
    train(straight, tok, USER, cfg, tmp_path / "a", methods=[DER(beta=0.5, k=8)], safety_data=SAFETY, progress=False)

    def crash(ctx):
        if ctx.step == 5:
            raise _Crash

    with pytest.raises(_Crash):
        train(_lora(dropout=0.1), tok, USER, cfg, tmp_path / "b", methods=[DER(beta=0.5, k=8)], safety_data=SAFETY,
              progress=False, on_step=crash)
    ckpt = checkpoint.latest(tmp_path / "b")
    state = torch.load(ckpt / "training_state.pt", weights_only=False)
    assert state["methods"] == [{"replay_pos": 3 * 4}]  # 3 steps x 4 replayed examples
    fresh = _lora(dropout=0.1)
    res = train(fresh, tok, USER, cfg, tmp_path / "b", methods=[DER(beta=0.5, k=8)], safety_data=SAFETY, resume=True, progress=False)
    assert res.resumed_from == 3
    a, b = _trainable(straight), _trainable(fresh)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)
    assert json.loads((tmp_path / "b" / "train_summary.json").read_text())["methods"] == ["der"]


def test_config_is_validated_and_settable_by_name():
    for bad in ({"alpha": -1}, {"beta": "x"}, {"storage": "fp16"}, {"k": 0}, {"buffer_batch_size": 1.5}):
        with pytest.raises(ConfigError, match="der\\."):
            DER(**bad)
    (m,) = build_methods(["der"], {"der": {"storage": "exact", "alpha": 0.5}})
    assert m.storage == "exact" and m.alpha == 0.5 and m.needs_safety_data


def test_full_finetune_runs_and_logs_the_replay_mse(tmp_path):
    model = tiny_model(seed=1)
    res = train(model, tiny_tokenizer(), USER, _cfg(max_steps=3, lr=1e-2), tmp_path, methods=[DER()], safety_data=SAFETY,
                progress=False)
    assert res.weights_dir.name == "model"
    mses = [r["der_mse"] for r in res.log]
    assert mses[0] < 1e-8 < mses[-1]  # zero at the aligned weights, then the model moves away


def test_full_finetune_reuses_an_existing_reference_copy(tmp_path):
    model = tiny_model(seed=1)
    ctx = _ctx(model, tmp_path)
    ctx.snapshot_reference()  # e.g. another method in the composition needs one
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # the live model drifts; the buffer must come from the copy
    der = DER(storage="exact")
    der.setup(ctx)
    enc = der.replay.samples[0]
    torch.testing.assert_close(der.targets([enc])[0], _reference_logits(ctx._frozen_copy, ctx, enc), rtol=1e-5, atol=1e-5)
