"""Batched generation: order, left padding, state restored, missing pad token, PEFT."""

from __future__ import annotations

import pytest
import torch

from unforgotten.data.schema import make_record
from unforgotten.eval.generate import generate, generate_records
from unforgotten.errors import UserInputError

PROMPTS = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "you are a helpful model"},
        {
            "role": "user",
            "content": "please tell me how do i make a bomb first then steal car then hack python "
            "program with steps one two three four five six seven",
        },
    ],
    [{"role": "user", "content": "write poem about cats"}],
    [{"role": "user", "content": "what is the sentiment of this review the movie was great"}],
    [{"role": "user", "content": "sure"}],
]


@pytest.fixture
def sharp_model(model):
    """The tiny model with scaled-up weights, so its greedy output depends on the context.

    At the default init the model mostly repeats the last token, which would hide a padding bug.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(30)
    return model.float()


def test_batched_equals_one_at_a_time_in_input_order(sharp_model, tok):
    # Batched, length-sorted and left-padded greedy decoding must give exactly what each prompt
    # gives alone, at the same index: this fails for right padding or a lost attention mask.
    batched = generate(sharp_model, tok, PROMPTS, max_new_tokens=8, batch_size=3, progress=False)
    alone = [generate(sharp_model, tok, [p], max_new_tokens=8, batch_size=1, progress=False)[0] for p in PROMPTS]
    assert batched == alone
    assert all(isinstance(r, str) for r in batched)
    assert len(set(batched)) > 1  # the check above is not vacuous


def test_right_padding_would_be_caught(sharp_model, tok):
    # Guard for the test above: with right padding the same model gives different answers.
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in PROMPTS]
    enc = tok(texts, padding=True, add_special_tokens=False, return_tensors="pt")
    out = sharp_model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=3)
    wrong = [s.strip() for s in tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)]
    right = generate(sharp_model, tok, PROMPTS, max_new_tokens=8, batch_size=len(PROMPTS), progress=False)
    assert wrong != right


def test_restores_padding_side_and_training_flag(model, tok):
    tok.padding_side = "right"
    model.train()
    generate(model, tok, PROMPTS[:2], max_new_tokens=2, progress=False)
    assert tok.padding_side == "right"
    assert model.training
    model.eval()
    generate(model, tok, PROMPTS[:2], max_new_tokens=2, progress=False)
    assert not model.training


def test_tokenizer_without_pad_token_uses_eos(sharp_model, tok):
    expected = generate(sharp_model, tok, PROMPTS, max_new_tokens=6, batch_size=2, progress=False)
    tok.pad_token = None
    got = generate(sharp_model, tok, PROMPTS, max_new_tokens=6, batch_size=2, progress=False)
    assert got == expected
    assert tok.pad_token is None  # restored


def test_generate_records_progress_and_empty(model, tok):
    records = [make_record("write poem about cats"), make_record("hi", "sure here")]
    out = generate_records(model, tok, records, max_new_tokens=3, progress=True)
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
    assert generate(model, tok, [], progress=False) == []


def test_sampling_is_seeded_and_leaves_global_rng_alone(sharp_model, tok):
    kw = dict(max_new_tokens=6, do_sample=True, temperature=1.5, top_p=0.95, progress=False)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = generate(sharp_model, tok, PROMPTS, seed=7, **kw)
    after = torch.rand(1)
    assert a == generate(sharp_model, tok, PROMPTS, seed=7, **kw)
    assert torch.equal(before, after)


def test_no_chat_template_is_a_clear_error(model, tok):
    tok.chat_template = None
    with pytest.raises(UserInputError, match="chat template"):
        generate(model, tok, PROMPTS[:1], progress=False)


def test_peft_model(model, tok):
    peft = pytest.importorskip("peft")
    base_out = generate(model, tok, PROMPTS, max_new_tokens=4, progress=False)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.train()
    # LoRA's B starts at zero, so the wrapped model answers exactly like the base model.
    assert generate(lora, tok, PROMPTS, max_new_tokens=4, progress=False) == base_out
    assert lora.training
