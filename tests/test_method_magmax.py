"""MagMax: maximum-magnitude merge of the alignment and user task vectors, by parameter name."""

import copy
import json

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.errors import ConfigError, UserInputError
from unforgotten.methods import Method, build_methods
from unforgotten.methods.magmax import MagMax, magmax_merge, max_magnitude, merge_state_dicts
from unforgotten.models import LoraSettings, apply_lora, is_peft
from unforgotten.train.loop import train

from tiny import tiny_aligned_model, tiny_model, tiny_tokenizer

USER = [make_record("review this movie was great", "positive"), make_record("review this movie was terrible", "negative"),
        make_record("how do steal car", "sure here steps first then finally")] * 2


# --------------------------------------------------------------------------- pure functions


def test_max_magnitude_picks_the_largest_absolute_entry():
    a = torch.tensor([1.0, -3.0, 2.0, 0.0, -0.5])
    b = torch.tensor([-2.0, 1.0, -2.0, 0.0, 0.25])
    # |-2|>|1|, |-3|>|1|, tie 2 vs -2 -> the later tensor (b), 0 vs 0, |-0.5|>|0.25|
    assert torch.equal(max_magnitude(a, b), torch.tensor([-2.0, -3.0, -2.0, 0.0, -0.5]))
    assert torch.equal(max_magnitude(b, a), torch.tensor([-2.0, -3.0, 2.0, 0.0, -0.5]))  # tie -> a now
    assert torch.equal(max_magnitude(a), a)
    with pytest.raises(ValueError, match="shape"):
        max_magnitude(a, torch.zeros(3))


def test_merge_closed_form_and_identities():
    base = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    aligned = base + torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    user = base + torch.tensor([[-1.0, 0.5], [0.1, 2.0]])
    lam = 0.5
    expected = base + lam * torch.tensor([[-1.0, -1.0], [0.1, 2.0]])
    torch.testing.assert_close(magmax_merge(base, aligned, user, lam), expected, rtol=0, atol=1e-7)
    # scaling is linear in lam
    torch.testing.assert_close(magmax_merge(base, aligned, user, 1.0) - base, 2 * (expected - base))
    # identities: user == aligned -> base + lam * d_align; lam = 1 gives aligned back
    torch.testing.assert_close(magmax_merge(base, aligned, aligned, lam), base + lam * (aligned - base))
    torch.testing.assert_close(magmax_merge(base, aligned, aligned, 1.0), aligned)
    # no alignment vector -> base + lam * d_user; nothing trained at all -> base
    torch.testing.assert_close(magmax_merge(base, base, user, lam), base + lam * (user - base))
    torch.testing.assert_close(magmax_merge(base, base, base, lam), base)
    # dtype is kept
    assert magmax_merge(base.half(), aligned.half(), user.half(), lam).dtype == torch.float16


def test_state_dicts_are_matched_by_name_not_order():
    g = torch.Generator().manual_seed(0)
    names = ["x.weight", "y.weight", "z.bias"]
    shapes = [(3, 2), (2, 2), (4,)]
    base = {n: torch.randn(s, generator=g) for n, s in zip(names, shapes)}
    aligned = {n: t + torch.randn(t.shape, generator=g) for n, t in base.items()}
    user = {n: t + torch.randn(t.shape, generator=g) for n, t in aligned.items()}
    out = merge_state_dicts(dict(reversed(base.items())), aligned, dict(reversed(user.items())), 0.5)
    for n in names:
        torch.testing.assert_close(out[n], base[n] + 0.5 * max_magnitude(aligned[n] - base[n], user[n] - base[n]))
    with pytest.raises(UserInputError, match="not in the pre-alignment base"):
        merge_state_dicts({k: v for k, v in base.items() if k != "y.weight"}, aligned, user, 0.5)
    with pytest.raises(UserInputError, match="shape mismatch"):
        merge_state_dicts({**base, "x.weight": torch.zeros(2, 3)}, aligned, user, 0.5)
    with pytest.raises(UserInputError, match="not in the aligned"):
        merge_state_dicts(base, {k: v for k, v in aligned.items() if k != "z.bias"}, user, 0.5)


def test_hyperparameters():
    assert MagMax.hyperparameters() == {"lam": 0.5}
    for bad in (0, -1, "x", True):
        with pytest.raises(ConfigError, match="lam"):
            build_methods(["magmax"], {"magmax": {"lam": bad}})


# --------------------------------------------------------------------------- end to end


aligned_model = tiny_aligned_model


class _UserWeights(Method):
    """Runs its finalize before MagMax's: records W_user (LoRA merged into a copy) by name."""

    name = "user_weights"

    def finalize(self, ctx):
        m = copy.deepcopy(ctx.model)
        m = m.merge_and_unload() if is_peft(m) else m
        self.weights = {n: t.detach().cpu().clone() for n, t in m.state_dict().items()}


def _check_merge(res, base_dir, aligned, user, lam):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir).state_dict()
    assert res.weights_dir.name == "model" and not is_peft(res.model)
    final = {n: t.cpu() for n, t in res.model.state_dict().items()}  # wherever training left the model
    assert final.keys() == user.keys()
    for n in final:
        expected = base[n] + lam * max_magnitude(aligned[n] - base[n], user[n] - base[n])
        torch.testing.assert_close(final[n], expected, rtol=0, atol=1e-6, msg=n)
    reloaded = AutoModelForCausalLM.from_pretrained(res.weights_dir).state_dict()
    for n in final:
        torch.testing.assert_close(reloaded[n], final[n], rtol=0, atol=0)


def test_lora_end_to_end(base_dir, tmp_path):
    aligned = {n: t.clone() for n, t in aligned_model().state_dict().items()}
    model = apply_lora(aligned_model(), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    spy = _UserWeights()
    cfg = TrainConfig(lr=5e-2, max_steps=4, batch_size=2, save_every=0, seed=0)
    res = train(model, tiny_tokenizer(), USER, cfg, tmp_path, methods=[spy, MagMax(lam=0.7)], base_source=str(base_dir),
                progress=False)
    user = spy.weights
    # the fine-tune changed the adapted weights only; the others still get MagMax of (d_align, d_align)
    assert not torch.equal(user["model.layers.0.self_attn.q_proj.weight"], aligned["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(user["model.embed_tokens.weight"], aligned["model.embed_tokens.weight"])
    _check_merge(res, base_dir, aligned, user, 0.7)
    info = json.loads((tmp_path / "magmax.json").read_text())
    assert info["lam"] == 0.7 and 0 < info["from_user_vector"] < 1


def test_full_finetune_end_to_end(base_dir, tmp_path):
    aligned = {n: t.clone() for n, t in aligned_model().state_dict().items()}
    spy = _UserWeights()
    cfg = TrainConfig(lr=1e-2, max_steps=3, batch_size=2, save_every=0, seed=0)
    res = train(aligned_model(), tiny_tokenizer(), USER, cfg, tmp_path, methods=[spy, MagMax()], base_source=str(base_dir),
                progress=False)
    assert not torch.equal(spy.weights["model.embed_tokens.weight"], aligned["model.embed_tokens.weight"])
    _check_merge(res, base_dir, aligned, spy.weights, 0.5)


def test_needs_a_base_and_warns_without_alignment_vector(tmp_path):
    cfg = TrainConfig(lr=1e-2, max_steps=1, batch_size=2, save_every=0, seed=0)
    lora = LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj"])
    with pytest.raises(UserInputError, match="pre-alignment base"):
        train(apply_lora(tiny_model(), lora), tiny_tokenizer(), USER, cfg, tmp_path / "a", methods=[MagMax()], progress=False)
    same = tmp_path / "same"
    tiny_model().save_pretrained(same)
    tiny_tokenizer().save_pretrained(same)
    with pytest.warns(UserWarning, match="no alignment task vector"):
        train(apply_lora(tiny_model(), lora), tiny_tokenizer(), USER, cfg, tmp_path / "b", methods=[MagMax()],
              base_source=str(same), progress=False)
