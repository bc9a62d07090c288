"""The embedded model end to end: wheel -> GGUF -> clean fp32 safetensors cache (slow: ~100 MB)."""

import os
import time

import pytest
import torch

from unforgotten.models import EMBEDDED_SHA256, _sha256, convert_gguf, embedded_gguf_path, load_model

pytestmark = pytest.mark.slow


@pytest.fixture
def real_cache(monkeypatch):
    # reuse the user's cache if there is one (conftest points UNFORGOTTEN_CACHE at a temp dir)
    if os.environ.get("UNFORGOTTEN_TEST_CACHE"):
        monkeypatch.setenv("UNFORGOTTEN_CACHE", os.environ["UNFORGOTTEN_TEST_CACHE"])


def test_embedded_model_converts_once_and_trains(real_cache, tmp_path):
    gguf = embedded_gguf_path()
    assert _sha256(gguf) == EMBEDDED_SHA256
    out = convert_gguf(gguf)
    assert (out / "model.safetensors").is_file()
    t = time.perf_counter()
    model, tok = load_model("embedded")
    assert time.perf_counter() - t < 3.0  # the cache, not a re-conversion
    assert not getattr(model, "is_quantized", False)
    assert getattr(model.config, "quantization_config", None) is None
    assert model.dtype == torch.float32 and tok.chat_template
    model.save_pretrained(tmp_path / "saved")  # fails on a model still flagged as quantized
    ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    loss = model(**ids, labels=ids["input_ids"]).loss
    loss.backward()
    assert torch.isfinite(loss) and model.model.embed_tokens.weight.grad is not None
