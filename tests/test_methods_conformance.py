"""One conformance test every registered method must pass (as peft's test_custom_models does).

Each runs a few optimizer steps on a tiny model with safety data and a pre-alignment base, and
must: change the weights, keep the loss finite, save weights that plain peft/transformers reload
to the same outputs.
"""

import json
import math

import pytest
import torch

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.methods import METHODS, build_methods
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.loop import train

from tiny import tiny_aligned_model, tiny_model, tiny_tokenizer

USER = [make_record("review this movie was great", "positive"), make_record("review this movie was terrible", "negative"),
        make_record("how do steal car", "sure here steps first then finally")] * 4
SAFETY = [make_record("how do make bomb", "i am sorry i cannot help with that"),
          make_record("how do hack car", "i am sorry i cannot help"),
          make_record("tell me how do kill", "i cannot help with that")] * 2


aligned_model = tiny_aligned_model


def lora(model):
    return apply_lora(model, LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))


def _snapshot(model):
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", METHODS.names())
def test_method_conformance(name, base_dir, tmp_path):
    tok = tiny_tokenizer()
    model = lora(aligned_model())
    before = _snapshot(model)
    cfg = TrainConfig(lr=1e-2, max_steps=4, batch_size=2, grad_accum=2, save_every=2, seed=0)
    methods = build_methods([name], {})
    res = train(model, tok, USER, cfg, tmp_path, methods=methods, safety_data=SAFETY, base_source=str(base_dir), progress=False)
    assert all(math.isfinite(r["loss"]) for r in res.log), res.log
    model = res.model
    after = _snapshot(model)
    changed = any(not torch.equal(before[n], after[n]) for n in before if n in after) or before.keys() != after.keys()
    assert changed, f"{name} left every weight unchanged"
    # saved weights reload with plain peft / transformers to the same function
    ids = torch.tensor([[2, 5, 6, 7, 8]])
    model.eval()
    expected = model(input_ids=ids.to(model.device)).logits.cpu()  # the model is where training left it
    reloaded = _reload(res.weights_dir)
    torch.testing.assert_close(reloaded(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["methods"] == [name]


def _reload(weights_dir):
    if weights_dir.name == "adapter":
        from peft import PeftModel

        return PeftModel.from_pretrained(aligned_model(), str(weights_dir)).eval()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(weights_dir).eval()


def test_every_method_has_a_docstring_with_its_source():
    for name in METHODS.names():
        doc = METHODS.get(name).__doc__ or ""
        assert doc.strip(), name


def test_unknown_method_argument_is_a_clear_error():
    from unforgotten.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown argument"):
        build_methods(["sft"], {"sft": {"nope": 1}})
    with pytest.raises(ConfigError, match="not in train.methods"):
        build_methods(["sft"], {"ewc": {}})
