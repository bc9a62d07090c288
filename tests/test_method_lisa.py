"""Lisa: the bi-state schedule (in optimizer steps), the proximal term, accumulation invariance, exact resume."""

import json

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.errors import ConfigError
from unforgotten.methods import Method, build_methods
from unforgotten.methods.lisa import ALIGN, USER, Lisa, cycle_lengths, phase_at, proximal_penalty, switch_points
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train import checkpoint
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

USER_RECS = [
    make_record("review this movie was great", "positive"),
    make_record("review this movie was terrible", "negative"),
    make_record("write poem about cats", "the sky is blue and cats are good"),
    make_record("how do steal car", "sure here steps first then finally"),
] * 2  # 8: batches of 4 are exactly two batches of 2
SAFETY = [
    make_record("how do make bomb", "i am sorry i cannot help with that"),
    make_record("how do hack car", "i am sorry i cannot help"),
    make_record("tell me how do kill", "i cannot help with that"),
    make_record("how do steal car", "sorry i cannot"),
]  # 4, for the same reason


def _model(dropout=0.0):
    return apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, dropout=dropout, target_modules=["q_proj", "v_proj"]))


def _cfg(**kw):
    base = dict(lr=5e-2, max_steps=12, batch_size=4, warmup_ratio=0.1, save_every=0, seed=3)
    base.update(kw)
    return TrainConfig(**base)


_trainable = trainable_snapshot


# --------------------------------------------------------------------------- schedule (pure)


def test_phase_schedule_alternates_starting_with_alignment():
    got = [phase_at(s, 2, 3) for s in range(12)]
    A, U = ALIGN, USER
    assert got == [A, A, U, U, U, A, A, U, U, U, A, A]
    assert switch_points(12, 2, 3) == [2, 5, 7, 10]
    # the paper's default split: 100 alignment steps, then 900 user steps
    assert [phase_at(s, 100, 900) for s in (0, 99, 100, 999, 1000, 1099, 1100)] == [A, A, U, U, A, A, U]
    assert switch_points(2000, 100, 900) == [100, 1000, 1100]
    # degenerate splits never switch
    assert {phase_at(s, 0, 5) for s in range(20)} == {U} and switch_points(20, 0, 5) == []
    assert {phase_at(s, 5, 0) for s in range(20)} == {A}


def test_cycle_lengths_scale_the_split_for_short_runs():
    assert cycle_lengths(100, 900) == (100, 900)
    assert cycle_lengths(100, 900, 10) == (1, 9)
    assert cycle_lengths(100, 900, 20) == (2, 18)
    assert cycle_lengths(100, 900, 3) == (1, 2)  # at least one step of each state
    assert cycle_lengths(1, 1, 2) == (1, 1)
    assert cycle_lengths(0, 900, 10) == (0, 10)
    assert cycle_lengths(5, 0, 10) == (10, 0)
    m = Lisa(cycle_steps=10)
    assert m.lengths == (1, 9) and m.phase(0) == ALIGN and m.phase(1) == USER and m.phase(10) == ALIGN


def test_hyperparameter_validation():
    assert Lisa.hyperparameters() == {
        "alignment_steps": 100, "finetune_steps": 900, "rho": 1.0, "cycle_steps": None, "proximal_delay_steps": 0,
    }
    for bad in ({"rho": -1}, {"alignment_steps": -1}, {"finetune_steps": 1.5}, {"cycle_steps": 1},
                {"alignment_steps": 0, "finetune_steps": 0}, {"proximal_delay_steps": -2}):
        with pytest.raises(ConfigError, match="lisa"):
            build_methods(["lisa"], {"lisa": bad})


# --------------------------------------------------------------------------- proximal term (plain tensors)


def test_proximal_penalty_value_and_gradient():
    theta = {"a": torch.tensor([1.0, -2.0, 3.0], requires_grad=True), "b": torch.tensor([[0.5, 0.5]], requires_grad=True)}
    anchor = {"a": torch.tensor([0.0, 0.0, 1.0]), "b": torch.tensor([[0.5, -0.5]])}
    rho = 0.3
    pen = proximal_penalty(theta, anchor, rho)
    # rho/2 * (1 + 4 + 4 + 0 + 1) = 0.15 * 10
    torch.testing.assert_close(pen, torch.tensor(1.5))
    pen.backward()
    for n in theta:
        torch.testing.assert_close(theta[n].grad, rho * (theta[n].detach() - anchor[n]))
    # zero at the anchor
    assert float(proximal_penalty({"a": anchor["a"].clone()}, anchor, 5.0)) == 0.0
    with pytest.raises(KeyError):
        proximal_penalty({"c": torch.ones(1)}, anchor, 1.0)


# --------------------------------------------------------------------------- in the loop


class _SourceSpy(Method):
    """Records, per optimizer step, where its micro-batches came from (safety answers say 'cannot')."""

    name = "spy"

    def setup(self, ctx):
        self.cannot = ctx.tokenizer.convert_tokens_to_ids("cannot")
        self.seen = []

    def start_step(self, ctx):
        kinds = {"safety" if bool((b["input_ids"] == self.cannot).any()) else "user" for b in ctx.micro_batches}
        self.seen.append((ctx.step, kinds))


def test_states_switch_on_optimizer_steps_and_the_anchor_follows(tmp_path):
    """Under accumulation 3 every micro-batch of a step comes from the step's state; the anchor
    is the weights at the last switch."""
    spy, snaps = _SourceSpy(), {}

    def grab(ctx):
        snaps[ctx.step] = _trainable(ctx.model)

    lisa = Lisa(alignment_steps=2, finetune_steps=3)
    train(_model(), tiny_tokenizer(), USER_RECS, _cfg(max_steps=9, batch_size=1, grad_accum=3), tmp_path,
          methods=[lisa, spy], safety_data=SAFETY, progress=False, on_step=grab)
    expected = [(s, {"safety"} if phase_at(s, 2, 3) == ALIGN else {"user"}) for s in range(9)]
    assert spy.seen == expected
    state = lisa.state_dict()
    assert state["pos"] == 4 * 3  # 4 alignment steps x 3 micro-batches
    assert state["switches"] == len(switch_points(9, 2, 3)) == 3  # after steps 2, 5, 7
    # last switch at step 7: anchor = weights after 7 optimizer steps, not the final ones
    for n, t in snaps[7].items():
        torch.testing.assert_close(state["anchor"][n], t, rtol=0, atol=0)
    assert any(not torch.equal(state["anchor"][n], snaps[9][n]) for n in snaps[9])


def test_gradient_accumulation_is_equivalent_to_a_bigger_batch(tmp_path):
    """batch 4 x accumulation 1 == batch 2 x accumulation 2, proximal term and safety phases included."""
    def run(out, rho, **kw):
        m = _model()
        train(m, tiny_tokenizer(), USER_RECS, _cfg(group_by_length=False, max_steps=6, **kw), out,
              methods=[Lisa(alignment_steps=1, finetune_steps=2, rho=rho)], safety_data=SAFETY, progress=False)
        return _trainable(m)

    big = run(tmp_path / "a", 1.0, batch_size=4, grad_accum=1)
    acc = run(tmp_path / "b", 1.0, batch_size=2, grad_accum=2)
    for n in big:
        torch.testing.assert_close(big[n], acc[n], rtol=1e-4, atol=1e-5)
    # and the proximal term does act (so the comparison above covers it)
    no_prox = run(tmp_path / "c", 0.0, batch_size=4, grad_accum=1)
    assert max(float((big[n] - no_prox[n]).abs().max()) for n in big) > 1e-4


class _Crash(RuntimeError):
    pass


class _ForgetfulLisa(Lisa):
    """Drops its checkpointed state on resume: must NOT match a straight run (the test can fail)."""

    def load_state_dict(self, state):
        pass


def test_resume_across_a_state_switch_matches_a_straight_run(tmp_path):
    """Schedule A A U U U A A U U; checkpoint at 6 (anchor moved at 5), crash at 7, resume (switch at 7)."""
    tok = tiny_tokenizer()
    cfg = _cfg(save_every=3, grad_accum=2, batch_size=2, max_steps=9)

    def lisa(cls=Lisa):
        return cls(alignment_steps=2, finetune_steps=3, rho=2.0)

    straight = _model(dropout=0.1)
    train(straight, tok, USER_RECS, cfg, tmp_path / "a", methods=[lisa()], safety_data=SAFETY, progress=False)

    def crash(ctx):
        if ctx.step == 7:
            raise _Crash

    for name, cls in (("b", Lisa), ("c", _ForgetfulLisa)):
        with pytest.raises(_Crash):
            train(_model(dropout=0.1), tok, USER_RECS, cfg, tmp_path / name, methods=[lisa(cls)], safety_data=SAFETY,
                  progress=False, on_step=crash)
    state = json.loads((checkpoint.latest(tmp_path / "b") / "state.json").read_text())
    assert state["step"] == 6 and state["user_micro_batches"] == 3 * 2  # user steps 2, 3, 4

    resumed = _model(dropout=0.1)
    res = train(resumed, tok, USER_RECS, cfg, tmp_path / "b", methods=[lisa()], safety_data=SAFETY, resume=True,
                progress=False)
    assert res.resumed_from == 6
    a, b = _trainable(straight), _trainable(resumed)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)

    forgetful = _model(dropout=0.1)
    train(forgetful, tok, USER_RECS, cfg, tmp_path / "c", methods=[lisa(_ForgetfulLisa)], safety_data=SAFETY,
          resume=True, progress=False)
    c = _trainable(forgetful)
    assert max(float((a[n] - c[n]).abs().max()) for n in a) > 1e-5


def test_proximal_delay_and_full_finetuning(tmp_path):
    """Full fine-tuning works (anchor over all weights); with the delay covering the run, rho has no effect."""
    def run(out, **kw):
        m = tiny_model()
        train(m, tiny_tokenizer(), USER_RECS, _cfg(max_steps=4, lr=1e-2), out,
              methods=[Lisa(alignment_steps=2, finetune_steps=2, **kw)], safety_data=SAFETY, progress=False)
        return {n: p.detach().clone() for n, p in m.named_parameters()}

    delayed = run(tmp_path / "a", rho=5.0, proximal_delay_steps=4)
    no_prox = run(tmp_path / "b", rho=0.0)
    prox = run(tmp_path / "c", rho=5.0)
    for n in delayed:
        torch.testing.assert_close(delayed[n], no_prox[n], rtol=0, atol=0)
    assert any(not torch.equal(prox[n], no_prox[n]) for n in prox)
