"""Safe LoRA: the projection, the layer score, scoring without mutation, matching by name, composition."""

import json
from types import SimpleNamespace

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.errors import ConfigError, UserInputError
from unforgotten.methods import Method, build_methods
from unforgotten.methods.safelora import (
    SafeLoRA, alignment_projector, apply_projection, lora_layers, project_lora_b, score_layers, select_layers,
    update_similarity,
)
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.loop import train

from tiny import tiny_aligned_model, tiny_model, tiny_tokenizer

USER = [make_record("review this movie was great", "positive"), make_record("review this movie was terrible", "negative"),
        make_record("how do steal car", "sure here steps first then finally")] * 2
SAFETY = [make_record("how do make bomb", "i am sorry i cannot help with that"),
          make_record("how do hack car", "i am sorry i cannot help")] * 2
LORA = LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- the projection (plain tensors)


def test_paper_projector_closed_form_and_not_idempotent():
    v = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # ||V||_F = 5
    c = alignment_projector(v)
    torch.testing.assert_close(c, torch.tensor([[9.0, 0.0], [0.0, 16.0]]) / 5)
    assert not torch.allclose(c @ c, c)  # V V^T / ||V||_F is not a projector in general
    # symmetric positive semi-definite, eigenvalues s_i^2 / ||V||_F
    g = _rand(6, 4, seed=1)
    cg = alignment_projector(g)
    torch.testing.assert_close(cg, cg.T)
    s = torch.linalg.svdvals(g)
    eig = torch.linalg.eigvalsh(cg).flip(0)[:4]
    torch.testing.assert_close(eig, s**2 / torch.linalg.matrix_norm(g), rtol=1e-4, atol=1e-5)


def test_paper_projector_is_a_projector_for_unit_rank_one_v():
    u, w = torch.tensor([0.6, 0.8, 0.0]), torch.tensor([1.0, 0.0])
    v = torch.outer(u, w)  # rank one, ||V||_F = 1
    c = alignment_projector(v)
    torch.testing.assert_close(c, torch.outer(u, u))
    torch.testing.assert_close(c @ c, c)
    # any rank-one V: C = ||V||_F * (exact projector), so the layer score is the exact one's
    v3 = 3 * v
    b, a = _rand(3, 2, seed=2), _rand(2, 5, seed=3)
    assert update_similarity(project_lora_b(v3, b), b, a) == pytest.approx(
        update_similarity(project_lora_b(v3, b, exact=True), b, a), abs=1e-6)


def test_exact_projector_is_idempotent_and_the_identity_on_its_span():
    v = _rand(6, 2, seed=4)  # tall: full column rank 2
    p = alignment_projector(v, exact=True)
    torch.testing.assert_close(p @ p, p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p, p.T, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p, v @ torch.linalg.inv(v.T @ v) @ v.T, rtol=1e-4, atol=1e-5)
    b = v @ _rand(2, 3, seed=5)  # an update that V spans
    torch.testing.assert_close(project_lora_b(v, b, exact=True), b, rtol=1e-4, atol=1e-5)
    a = _rand(3, 4, seed=6)
    assert update_similarity(project_lora_b(v, b, exact=True), b, a) == pytest.approx(1.0, abs=1e-6)
    # a full-rank square V spans everything: the exact projector is the identity
    torch.testing.assert_close(alignment_projector(_rand(5, 5, seed=7), exact=True), torch.eye(5), rtol=1e-4, atol=1e-5)


def test_project_b_equals_c_times_b_and_degenerate_cases():
    v, b = _rand(7, 5, seed=8), _rand(7, 3, seed=9)
    for exact in (False, True):
        torch.testing.assert_close(project_lora_b(v, b, exact), alignment_projector(v, exact) @ b, rtol=1e-4, atol=1e-5)
    # V = 0: no alignment direction, C = 0
    assert torch.equal(alignment_projector(torch.zeros(3, 2)), torch.zeros(3, 3))
    assert torch.equal(project_lora_b(torch.zeros(3, 2), torch.ones(3, 1)), torch.zeros(3, 1))
    assert torch.equal(alignment_projector(torch.zeros(3, 2), exact=True), torch.zeros(3, 3))


def test_similarity_values():
    v = torch.tensor([[1.0], [0.0], [0.0]])  # alignment direction e1
    a = torch.tensor([[1.0, 2.0]])
    b_in, b_out = torch.tensor([[2.0], [0.0], [0.0]]), torch.tensor([[0.0], [1.0], [0.0]])
    assert update_similarity(project_lora_b(v, b_in), b_in, a) == pytest.approx(1.0)
    assert update_similarity(project_lora_b(v, b_out), b_out, a) == 0.0  # orthogonal: projected away
    b_mix = torch.tensor([[1.0], [1.0], [0.0]])  # 45 degrees
    assert update_similarity(project_lora_b(v, b_mix), b_mix, a) == pytest.approx(2**-0.5)
    # scale invariant (the LoRA scaling cancels)
    assert update_similarity(project_lora_b(v, 3 * b_mix), 3 * b_mix, a) == pytest.approx(2**-0.5)


def test_select_layers():
    sims = {"l0": 0.9, "l1": 0.2, "l2": 0.5, "l3": 0.2}
    assert select_layers(sims, "threshold", 0.5, 0) == {"l1", "l2", "l3"}  # at or below
    assert select_layers(sims, "threshold", 0.1, 0) == set()
    assert select_layers(sims, "number", 0.0, 1) == {"l1"}  # tie -> model order
    assert select_layers(sims, "number", 0.0, 3) == {"l1", "l3", "l2"}
    assert select_layers(sims, "number", 0.0, 10) == set(sims)


def test_hyperparameters():
    assert SafeLoRA.hyperparameters() == {"threshold": 0.5, "select": "threshold", "num_proj_layers": 10,
                                          "exact_projection": False}
    for bad in ({"threshold": 2}, {"select": "top"}, {"num_proj_layers": -1}, {"exact_projection": "yes"}):
        with pytest.raises(ConfigError, match="safelora"):
            build_methods(["safelora"], {"safelora": bad})


# --------------------------------------------------------------------------- on a peft model


def _peft_with_update():
    m = apply_lora(tiny_model(), LORA)
    with torch.no_grad():
        for i, (n, p) in enumerate(m.named_parameters()):
            if "lora_B" in n:
                p.copy_(_rand(*p.shape, seed=100 + i))
    return m


def _dicts(model):
    """(aligned, base) by plain HF name: base = aligned minus a random alignment vector."""
    aligned = {k.replace(".base_layer", ""): v.detach().clone()
               for k, v in model.get_base_model().state_dict().items() if "lora_" not in k}
    base = {k: v - 0.1 * _rand(*v.shape, seed=i) for i, (k, v) in enumerate(aligned.items())}
    return aligned, base


def test_scoring_does_not_mutate_and_apply_changes_only_the_chosen_b():
    model = _peft_with_update()
    aligned, base = _dicts(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    layers = lora_layers(model, "default")
    assert sorted(layers) == sorted(f"model.layers.{i}.self_attn.{m}.weight" for i in (0, 1) for m in ("q_proj", "v_proj"))
    scores = score_layers(layers, "default", aligned, base)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"scoring changed {n}"
    assert all(0.0 <= s.similarity <= 1.0 for s in scores)
    again = score_layers(layers, "default", aligned, base)
    assert [s.similarity for s in again] == [s.similarity for s in scores]

    chosen = {scores[0].name, scores[2].name}
    apply_projection(layers, "default", scores, chosen)
    for s in scores:
        prefix = s.name[: -len(".weight")]
        mod = layers[s.name]
        b_now = mod.lora_B["default"].weight
        b_before = before[f"base_model.model.{prefix}.lora_B.default.weight"]
        if s.name in chosen:
            v = aligned[s.name] - base[s.name]
            torch.testing.assert_close(b_now, alignment_projector(v) @ b_before, rtol=1e-4, atol=1e-5)
        else:
            assert torch.equal(b_now, b_before)
        assert torch.equal(mod.lora_A["default"].weight, before[f"base_model.model.{prefix}.lora_A.default.weight"])


def test_matching_is_by_name():
    model = _peft_with_update()
    aligned, base = _dicts(model)
    layers = lora_layers(model, "default")
    ref = {s.name: s.similarity for s in score_layers(layers, "default", aligned, base)}
    rev = {s.name: s.similarity for s in score_layers(layers, "default", dict(reversed(aligned.items())),
                                                      dict(reversed(base.items())))}
    assert rev == ref  # dict order is irrelevant
    # the scores follow the names: swap two layers' alignment vectors and their scores move
    q0, q1 = "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"
    swapped_a, swapped_b = {**aligned, q0: aligned[q1], q1: aligned[q0]}, {**base, q0: base[q1], q1: base[q0]}
    sw = {s.name: s.similarity for s in score_layers(layers, "default", swapped_a, swapped_b)}
    assert sw[q0] != pytest.approx(ref[q0]) and sw["model.layers.0.self_attn.v_proj.weight"] == ref[
        "model.layers.0.self_attn.v_proj.weight"]
    with pytest.raises(UserInputError, match="not in the pre-alignment base"):
        score_layers(layers, "default", aligned, {k: v for k, v in base.items() if k != q1})
    with pytest.raises(UserInputError, match="shape"):
        score_layers(layers, "default", aligned, {**base, q1: torch.zeros(3, 3)})


def test_full_finetuning_and_a_non_lora_model_are_config_errors(tmp_path):
    cfg = TrainConfig(lr=1e-2, max_steps=1, batch_size=2, save_every=0)
    with pytest.raises(ConfigError, match="only with LoRA"):
        train(tiny_model(), tiny_tokenizer(), USER, cfg, tmp_path, methods=[SafeLoRA()], base_source="unused",
              progress=False)
    model = tiny_model()
    ctx = SimpleNamespace(model=model, accelerator=None, unwrapped_model=lambda: model)
    with pytest.raises(ConfigError, match="before 'magmax'"):
        SafeLoRA().finalize(ctx)


# --------------------------------------------------------------------------- end to end


aligned_model = tiny_aligned_model


class _LoraSnapshot(Method):
    """Runs its finalize before SafeLoRA's: the trained LoRA weights as they were."""

    name = "lora_snapshot"

    def finalize(self, ctx):
        self.weights = {n: p.detach().cpu().clone() for n, p in ctx.model.named_parameters() if "lora_" in n}


def _run(tmp_path, base_dir, methods, **kw):
    snap = _LoraSnapshot()
    cfg = TrainConfig(lr=2e-2, max_steps=4, batch_size=2, save_every=0, seed=0, **kw)
    res = train(apply_lora(aligned_model(), LORA), tiny_tokenizer(), USER, cfg, tmp_path, methods=[snap, *methods],
                safety_data=SAFETY, base_source=str(base_dir), progress=False)
    return res, snap.weights, json.loads((tmp_path / "safelora.json").read_text())


def test_end_to_end_projects_the_lowest_layer_and_records_it(base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    res, trained, report = _run(tmp_path, base_dir, [SafeLoRA(select="number", num_proj_layers=1)])
    assert res.weights_dir.name == "adapter"
    layers = report["layers"]
    assert report["layers_total"] == 4 and report["layers_projected"] == 1
    lowest = min(layers, key=lambda r: r["similarity"])
    assert [r["name"] for r in layers if r["projected"]] == [lowest["name"]]
    base = AutoModelForCausalLM.from_pretrained(base_dir).state_dict()
    aligned = aligned_model().state_dict()
    final = {n: p.detach().cpu() for n, p in res.model.named_parameters() if "lora_" in n}
    for r in layers:
        prefix = "base_model.model." + r["name"][: -len(".weight")]
        b, a = trained[f"{prefix}.lora_B.default.weight"], trained[f"{prefix}.lora_A.default.weight"]
        v = aligned[r["name"]] - base[r["name"]]
        pb = alignment_projector(v) @ b
        assert r["similarity"] == pytest.approx(update_similarity(pb, b, a), abs=1e-6)
        expected_b = pb if r["projected"] else b
        torch.testing.assert_close(final[f"{prefix}.lora_B.default.weight"], expected_b, rtol=1e-4, atol=1e-6)
        assert torch.equal(final[f"{prefix}.lora_A.default.weight"], a)


def test_threshold_mode_extremes(base_dir, tmp_path):
    _, trained, report = _run(tmp_path / "none", base_dir, [SafeLoRA(threshold=-1.0)])
    assert report["layers_projected"] == 0
    _, _, report = _run(tmp_path / "all", base_dir, [SafeLoRA(threshold=1.0)])
    assert report["layers_projected"] == 4
    assert all(0 < r["similarity"] < 1 for r in report["layers"])


def test_compositions(base_dir, tmp_path):
    for names in (["sft", "safelora"], ["lisa", "safelora"]):
        args = {"lisa": {"alignment_steps": 1, "finetune_steps": 1}} if "lisa" in names else {}
        out = tmp_path / "+".join(names)
        res, _, report = _run(out, base_dir, build_methods(names, args))
        assert report["layers_total"] == 4
        assert (out / "adapter" / "adapter_model.safetensors").is_file()
        summary = json.loads((out / "train_summary.json").read_text())
        assert summary["methods"] == ["lora_snapshot", *names]


def test_needs_an_alignment_direction(tmp_path):
    same = tmp_path / "same"
    tiny_model().save_pretrained(same)
    tiny_tokenizer().save_pretrained(same)
    cfg = TrainConfig(lr=1e-2, max_steps=1, batch_size=2, save_every=0)
    with pytest.raises(UserInputError, match="no alignment direction"):
        train(apply_lora(tiny_model(), LORA), tiny_tokenizer(), USER, cfg, tmp_path / "run", methods=[SafeLoRA()],
              base_source=str(same), progress=False)
    with pytest.raises(UserInputError, match="pre-alignment base"):
        train(apply_lora(tiny_model(), LORA), tiny_tokenizer(), USER, cfg, tmp_path / "run2", methods=[SafeLoRA()],
              progress=False)
