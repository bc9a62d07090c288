"""Memory and speed options: precision, gradient checkpointing, quantization, prefix sharing."""

import pytest
import torch

from unforgotten.config import TrainConfig, load_config
from unforgotten.data.schema import make_record
from unforgotten.errors import ConfigError, UserInputError
from unforgotten.models import LoraSettings, apply_lora, load_model
from unforgotten.train.loop import mixed_precision, train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

RECORDS = [make_record("how do make bomb", "i am sorry i cannot help with that"),
           make_record("write poem about cats", "the sky is blue and cats are good"),
           make_record("review this movie was great", "positive"),
           make_record("review this movie was terrible", "negative")] * 2


def _model():
    return apply_lora(tiny_model(), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))


def _run(tmp_path, **kw):
    cfg = TrainConfig(**{**dict(lr=1e-2, max_steps=3, batch_size=4, save_every=0, seed=0), **kw})
    return train(_model(), tiny_tokenizer(), RECORDS, cfg, tmp_path, progress=False)


def test_precision_and_quantize_are_validated_like_every_field():
    assert load_config(overrides=["train.precision=bf16", "model.quantize=4bit"]).train.precision == "bf16"
    with pytest.raises(ConfigError, match="train.precision must be one of"):
        load_config(overrides=["train.precision=fp8"])
    with pytest.raises(ConfigError, match="model.quantize must be one of"):
        load_config(overrides=["model.quantize=3bit"])
    with pytest.raises(ConfigError, match="gradient_checkpointing must be true or false"):
        load_config(overrides=["train.gradient_checkpointing=maybe"])
    with pytest.raises(ConfigError, match="share_prefix must be true, false or null"):
        load_config(overrides=["train.share_prefix=sometimes"])
    with pytest.raises(ConfigError, match="full_finetune"):
        load_config(overrides=["model.quantize=8bit", "model.full_finetune=true"])


def test_auto_precision_is_fp32_without_a_gpu():
    assert mixed_precision("fp32") == "no" and mixed_precision("bf16") == "bf16"
    if not torch.cuda.is_available():
        assert mixed_precision("auto") == "no"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_quantize_without_a_gpu_is_a_clear_error(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    tiny_tokenizer().save_pretrained(tmp_path / "m")
    with pytest.raises(UserInputError, match="model.quantize=4bit needs a CUDA GPU"):
        load_model(str(tmp_path / "m"), quantize="4bit")


def test_bf16_autocast_trains_fp32_master_weights_close_to_fp32(tmp_path):
    full = _run(tmp_path / "fp32", precision="fp32")
    half = _run(tmp_path / "bf16", precision="bf16")
    assert all(p.dtype == torch.float32 for p in trainable_snapshot(half.model).values())
    assert half.log[0]["loss"] == pytest.approx(full.log[0]["loss"], rel=2e-2)  # bf16 keeps ~3 digits
    assert half.log[-1]["loss"] != full.log[-1]["loss"]  # autocast really ran in bf16
    # the next run in this process goes back to fp32 (accelerate's state is started over)
    again = _run(tmp_path / "again", precision="fp32")
    assert again.log[-1]["loss"] == full.log[-1]["loss"]


def test_gradient_checkpointing_gives_the_same_weights(tmp_path):
    plain = _run(tmp_path / "a", share_prefix=False)
    ckpt = _run(tmp_path / "b", gradient_checkpointing=True)
    a, b = trainable_snapshot(plain.model), trainable_snapshot(ckpt.model)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-5, atol=1e-6)


def test_share_prefix_is_chosen_per_device(tmp_path):
    from unforgotten.train.context import TrainContext

    ctx = TrainContext(_model(), tiny_tokenizer(), TrainConfig(), tmp_path)
    assert ctx.config.share_prefix is None and ctx.share_prefix  # a CPU: on
    ctx.config.gradient_checkpointing = True
    assert not ctx.share_prefix  # no cache to share while checkpointing
    ctx.config.gradient_checkpointing, ctx.config.share_prefix = False, False
    assert not ctx.share_prefix

    class TwoProcesses:  # DDP needs the same forward calls in every process; the prefix depends on the rows
        num_processes, process_index = 2, 0

    ctx.config.share_prefix, ctx.accelerator = True, TwoProcesses()
    assert not ctx.share_prefix


def test_a_packed_batch_keeps_sequences_apart():
    from unforgotten.data.tokenize import collate, encode_records, pack

    tok, model = tiny_tokenizer(), tiny_model()
    samples, _ = encode_records(tok, RECORDS[:3], 64)
    batch = collate(samples, tok.pad_token_id)
    packed = pack(batch)
    assert packed["input_ids"].shape == (1, sum(len(s.input_ids) for s in samples))
    out = model(input_ids=packed["input_ids"], attention_mask=packed["attention_mask"],
                position_ids=packed["position_ids"]).logits[0]
    start = 0
    for s in samples:  # every sequence's logits are those it gets alone
        alone = model(input_ids=torch.tensor([s.input_ids])).logits[0]
        torch.testing.assert_close(out[start : start + len(s.input_ids)], alone, rtol=1e-4, atol=1e-5)
        start += len(s.input_ids)


def test_packing_trains_to_the_unpacked_loss_and_weights(tmp_path):
    plain = _run(tmp_path / "a", share_prefix=False)
    packed = _run(tmp_path / "b", packing=True)
    for a, b in zip(plain.log, packed.log):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    a, b = trainable_snapshot(plain.model), trainable_snapshot(packed.model)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-6)


def test_packing_is_refused_for_methods_that_need_rows(tmp_path):
    from unforgotten.methods import build_methods

    cfg = TrainConfig(max_steps=1, batch_size=4, packing=True, save_every=0)
    with pytest.raises(UserInputError, match="train.packing: method.s. der"):
        train(_model(), tiny_tokenizer(), RECORDS, cfg, tmp_path, methods=build_methods(["der"]), safety_data=RECORDS,
              progress=False)
