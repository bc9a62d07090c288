"""EWC: the penalty, its gradient and the empirical Fisher checked against closed forms; the method
is invariant to gradient accumulation and resumes with its setup state."""

import pytest
import torch
import torch.nn.functional as F

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import IGNORE, encode_records
from unforgotten.errors import ConfigError
from unforgotten.methods import build_methods
from unforgotten.methods.ewc import EWC, empirical_fisher, ewc_penalty, normalize_fisher
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.context import TrainContext
from unforgotten.train.loop import train

from tiny import tiny_lora, tiny_model, tiny_tokenizer, trainable_snapshot

SAFETY = [
    make_record("how do make bomb", "i am sorry i cannot help with that"),
    make_record("how do hack car", "i am sorry i cannot help"),
    make_record("tell me how do kill", "i cannot help with that"),
]
USER = [
    make_record("review this movie was great", "positive"),
    make_record("review this movie was terrible", "negative"),
    make_record("write poem about cats", "the sky is blue and cats are good"),
    make_record("how do steal car", "sure here steps first then finally"),
] * 2


_lora = tiny_lora


def _cfg(**kw):
    base = dict(lr=5e-2, max_steps=4, batch_size=4, warmup_ratio=0.0, save_every=0, seed=3, group_by_length=False)
    base.update(kw)
    return TrainConfig(**base)


_trainable = trainable_snapshot


# --------------------------------------------------------------------------- plain tensors


def test_penalty_is_exactly_zero_at_the_anchor_with_zero_gradient():
    g = torch.Generator().manual_seed(0)
    params = {"a": torch.randn(3, 4, generator=g).requires_grad_(), "b": torch.randn(5, generator=g).requires_grad_()}
    anchor = {n: p.detach().clone() for n, p in params.items()}
    fisher = {n: torch.rand(p.shape, generator=g) + 0.5 for n, p in params.items()}
    pen = ewc_penalty(params, anchor, fisher, lam=7.0)
    assert pen.item() == 0.0
    grads = torch.autograd.grad(pen, list(params.values()))
    assert all(torch.count_nonzero(gr) == 0 for gr in grads)


def test_penalty_value_and_gradient_match_the_closed_form():
    g = torch.Generator().manual_seed(1)
    lam = 3.5
    params = {"a": torch.randn(3, 4, generator=g).requires_grad_(), "b": torch.randn(5, generator=g).requires_grad_()}
    anchor = {n: torch.randn(p.shape, generator=g) for n, p in params.items()}
    fisher = {n: torch.rand(p.shape, generator=g) for n, p in params.items()}
    pen = ewc_penalty(params, anchor, fisher, lam)
    expected = sum(lam / 2 * (fisher[n] * (params[n].detach() - anchor[n]) ** 2).sum() for n in params)
    torch.testing.assert_close(pen.detach(), expected)
    grads = torch.autograd.grad(pen, [params["a"], params["b"]])
    for n, gr in zip(["a", "b"], grads):
        torch.testing.assert_close(gr, lam * fisher[n] * (params[n].detach() - anchor[n]))


def test_empirical_fisher_of_softmax_regression_equals_hand_computed_squared_gradients():
    """Per-sample gradient of CE(Wx, y) is (softmax(Wx) - onehot(y)) x^T: F = mean of its squares."""
    g = torch.Generator().manual_seed(2)
    C, D, N = 4, 3, 5
    W = torch.randn(C, D, generator=g).requires_grad_()
    b = torch.randn(C, generator=g).requires_grad_()
    xs = torch.randn(N, D, generator=g)
    ys = torch.randint(0, C, (N,), generator=g)
    losses = [lambda x=x, y=y: F.cross_entropy((W @ x + b)[None], y[None]) for x, y in zip(xs, ys)]
    fisher = empirical_fisher(losses, {"W": W, "b": b})

    with torch.no_grad():
        p = torch.softmax(xs @ W.T + b, dim=-1)  # (N, C)
        err = p - F.one_hot(ys, C).float()
        per_sample_W = err[:, :, None] * xs[:, None, :]  # (N, C, D)
        hand_W = (per_sample_W**2).mean(0)
        hand_b = (err**2).mean(0)
    torch.testing.assert_close(fisher["W"], hand_W)
    torch.testing.assert_close(fisher["b"], hand_b)
    # the square of per-sample gradients, not the square of the batch gradient
    assert not torch.allclose(fisher["W"], per_sample_W.mean(0) ** 2)
    assert W.grad is None and b.grad is None  # .grad untouched


def test_normalize_fisher_modes():
    fisher = {"a": torch.tensor([0.0, 2.0, 4.0]), "b": torch.tensor([[1.0, 1.0], [2.0, 2.0]])}
    assert torch.equal(normalize_fisher(fisher, "none")["a"], fisher["a"])
    by_max = normalize_fisher(fisher, "max")
    assert max(float(f.max()) for f in by_max.values()) == 1.0
    torch.testing.assert_close(by_max["a"], torch.tensor([0.0, 0.5, 1.0]))
    by_mean = normalize_fisher(fisher, "mean")  # mean over all 7 entries = 12/7
    total = sum(float(f.sum()) for f in by_mean.values())
    assert total / 7 == pytest.approx(1.0)
    torch.testing.assert_close(by_mean["b"], fisher["b"] * 7 / 12)
    zeros = {"a": torch.zeros(3)}
    assert torch.equal(normalize_fisher(zeros, "mean")["a"], zeros["a"])
    with pytest.raises(ValueError):
        normalize_fisher(fisher, "sum")


# --------------------------------------------------------------------------- the method on a tiny model


def test_fisher_on_a_tiny_lora_model_matches_an_independent_computation(tmp_path):
    tok = tiny_tokenizer()
    model = _lora()
    ctx = TrainContext(model, tok, _cfg(), tmp_path, safety_data=SAFETY)
    ewc = EWC(normalize="none")
    ewc.setup(ctx)

    # independently: full logits, shifted labels, mean NLL per sample, squared per-sample grads
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    encs, _ = encode_records(tok, SAFETY, 256)
    acc = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()
    for e in encs:
        ids = torch.tensor([e.input_ids])
        labels = torch.tensor([e.labels])[:, 1:]
        logits = model(input_ids=ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
        for n, gr in zip(params, torch.autograd.grad(loss, list(params.values()))):
            acc[n] += gr**2
    for n in params:
        torch.testing.assert_close(ewc.fisher[n], acc[n] / len(encs), rtol=1e-4, atol=1e-10)
        torch.testing.assert_close(ewc.anchor[n], params[n].detach())
    # LoRA starts at B = 0: A gets no gradient (F = 0), B does
    a_names = [n for n in params if "lora_A" in n]
    b_names = [n for n in params if "lora_B" in n]
    assert a_names and b_names
    assert all(torch.count_nonzero(ewc.fisher[n]) == 0 for n in a_names)
    assert all(float(ewc.fisher[n].sum()) > 0 for n in b_names)
    assert all(p.grad is None for p in params.values())


def test_default_fisher_is_mean_normalized(tmp_path):
    ctx = TrainContext(_lora(), tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    ewc = EWC()
    ewc.setup(ctx)
    total = sum(float(f.double().sum()) for f in ewc.fisher.values())
    assert total / sum(f.numel() for f in ewc.fisher.values()) == pytest.approx(1.0, rel=1e-5)


def test_gradient_accumulation_invariance_and_the_penalty_matters(tmp_path):
    """accumulation 1 x batch 4 == accumulation 2 x batch 2, with the penalty scaled per step."""
    tok = tiny_tokenizer()
    runs = {}
    for key, (bs, acc) in {"big": (4, 1), "acc": (2, 2)}.items():
        model = _lora()
        train(model, tok, USER, _cfg(batch_size=bs, grad_accum=acc), tmp_path / key,
              methods=[EWC(lam=1.0)], safety_data=SAFETY, progress=False)
        runs[key] = _trainable(model)
    sft = _lora()
    train(sft, tok, USER, _cfg(batch_size=4, grad_accum=1), tmp_path / "sft", safety_data=SAFETY, progress=False)
    sft_w = _trainable(sft)
    for n in runs["big"]:
        torch.testing.assert_close(runs["big"][n], runs["acc"][n], rtol=1e-4, atol=1e-5)
    # the penalty changed the result, so an unscaled per-micro-batch penalty would have shown above
    assert max(float((runs["big"][n] - sft_w[n]).abs().max()) for n in sft_w) > 1e-3


def test_ewc_pulls_important_weights_towards_the_anchor(tmp_path):
    """The Fisher-weighted distance from the start (what EWC penalizes) shrinks a lot with lam."""
    tok = tiny_tokenizer()
    start = _trainable(_lora())
    dist = {}
    for lam in (0.0, 100.0):
        model = _lora()
        ewc = EWC(lam=lam)
        train(model, tok, USER, _cfg(), tmp_path / str(lam), methods=[ewc], safety_data=SAFETY, progress=False)
        w = _trainable(model)
        dist[lam] = sum(float((ewc.fisher[n].cpu() * (w[n] - start[n]) ** 2).sum()) for n in w)
    assert dist[100.0] < 0.2 * dist[0.0]


class _Crash(RuntimeError):
    pass


def test_setup_state_survives_save_and_resume(tmp_path):
    tok = tiny_tokenizer()
    cfg = _cfg(max_steps=6, save_every=3, batch_size=2, grad_accum=2)
    straight = _lora()
    train(straight, tok, USER, cfg, tmp_path / "a", methods=[EWC()], safety_data=SAFETY, progress=False)

    first = EWC()

    def crash(ctx):
        if ctx.step == 4:
            raise _Crash

    with pytest.raises(_Crash):
        train(_lora(), tok, USER, cfg, tmp_path / "b", methods=[first], safety_data=SAFETY, progress=False, on_step=crash)

    # a fresh process whose adapter was initialised differently: the anchor must come from the checkpoint
    torch.manual_seed(12345)
    fresh_model = apply_lora(tiny_model(seed=0), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    resumed = EWC()
    res = train(fresh_model, tok, USER, cfg, tmp_path / "b", methods=[resumed], safety_data=SAFETY, resume=True, progress=False)
    assert res.resumed_from == 3
    for n in first.anchor:
        torch.testing.assert_close(resumed.anchor[n], first.anchor[n], rtol=0, atol=0)
        torch.testing.assert_close(resumed.fisher[n], first.fisher[n], rtol=0, atol=0)
    a, b = _trainable(straight), _trainable(fresh_model)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)


def test_state_dict_round_trip(tmp_path):
    ctx = TrainContext(_lora(), tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    one = EWC()
    one.setup(ctx)
    two = EWC()
    two.load_state_dict(one.state_dict())
    assert one.fisher.keys() == two.fisher.keys()
    for n in one.fisher:
        assert torch.equal(one.fisher[n], two.fisher[n]) and torch.equal(one.anchor[n], two.anchor[n])


def test_full_finetuning_anchors_every_weight(tmp_path):
    model = tiny_model()
    ctx = TrainContext(model, tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    ewc = EWC()
    ewc.setup(ctx)
    assert set(ewc.fisher) == {n for n, _ in model.named_parameters()}
    enc = ctx.encode(USER[:2])
    from unforgotten.data.tokenize import collate

    out = ctx.forward(collate(enc, 0))
    loss = ewc.loss(ctx, None, out, out.loss_sum / out.n_tokens)
    assert ewc.last_penalty == 0.0  # at the anchor
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    "args, field",
    [({"lam": -1}, "lam"), ({"lam": "big"}, "lam"), ({"lam": float("nan")}, "lam"), ({"normalize": "sum"}, "normalize"),
     ({"fisher_samples": 0}, "fisher_samples"), ({"fisher_samples": 2.5}, "fisher_samples")],
)
def test_bad_hyperparameters_are_config_errors(args, field):
    with pytest.raises(ConfigError, match=field):
        build_methods(["ewc"], {"ewc": args})


def test_numeric_strings_from_yaml_are_accepted():
    (ewc,) = build_methods(["ewc"], {"ewc": {"lam": "1e3"}})  # YAML 1.1 reads 1e3 as a string
    assert ewc.lam == 1000.0


def test_fisher_samples_caps_the_estimate(tmp_path):
    ctx = TrainContext(_lora(), tiny_tokenizer(), _cfg(), tmp_path, safety_data=SAFETY)
    one, all_ = EWC(normalize="none", fisher_samples=1), EWC(normalize="none")
    one.setup(ctx)
    only_first = TrainContext(ctx.model, ctx.tokenizer, _cfg(), tmp_path, safety_data=SAFETY[:1])
    ref = EWC(normalize="none")
    ref.setup(only_first)
    all_.setup(ctx)
    for n in one.fisher:
        torch.testing.assert_close(one.fisher[n], ref.fisher[n])
    assert any(not torch.allclose(one.fisher[n], all_.fisher[n]) for n in one.fisher)
