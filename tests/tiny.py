"""Tiny models and tokenizers built in code, in well under a second, for tests.

A word-level tokenizer (whitespace split, unknown words -> <unk>) with a ChatML chat template
like SmolLM2's, and a LlamaConfig with hidden size 16.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + ' ' + message['content'] + ' <|im_end|> ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant ' }}{% endif %}"
)

SPECIALS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
WORDS = (
    "system user assistant you are a helpful model i am sorry cannot help with that "
    "how do make bomb steal car hack write poem about cats dogs the sky is blue "
    "positive negative review this movie was great terrible good bad sentiment answer "
    "sure here steps first then finally what why who when where please tell me kill process "
    "python program one two three four five six seven eight nine ten"
).split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + sorted(set(WORDS)))}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_model(vocab_size: int | None = None, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    tok_len = len(SPECIALS) + len(set(WORDS))
    cfg = LlamaConfig(
        vocab_size=vocab_size or tok_len,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        tie_word_embeddings=True,
        # 0.02 (the default) makes logits near-uniform at hidden size 16, and tied embeddings
        # leave LoRA no way to sharpen them: tests could not see learning.
        initializer_range=0.2,
    )
    model = LlamaForCausalLM(cfg)
    model.eval()
    return model


def tiny_aligned_model(seed: int = 1) -> LlamaForCausalLM:
    """A stand-in 'aligned' model: the base ``tiny_model(seed)`` plus a fixed perturbation, so the
    alignment task vector W_aligned - W_base (MagMax, SafeLoRA) is known and nonzero."""
    m = tiny_model(seed=seed)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m


def tiny_lora(seed: int = 0):
    """The tiny model with a small LoRA adapter on q/v (no dropout): the method tests' default."""
    from unforgotten.models import LoraSettings, apply_lora

    return apply_lora(tiny_model(seed=seed), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))


def trainable_snapshot(model) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable parameters, to compare weights before/after or across runs
    (on the CPU, so the comparison holds wherever accelerate put the model)."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
