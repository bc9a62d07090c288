"""Batched generation from chat prompts with a Hugging Face model (or a PEFT wrapper of one).

Why it is written this way:

* **Batched, not one prompt at a time.** Many safety harnesses decode prompt by prompt; on a GPU
  that leaves most of it idle. We decode ``batch_size`` prompts per ``model.generate`` call.
* **Left padding.** A decoder-only model continues from the *last* position of each row. With
  right padding the last positions of short rows are pad tokens, so the model would continue
  from padding. Left padding puts every prompt's last real token in the same final column, the
  attention mask hides the pads, and HF derives position ids from the mask, so a batched greedy
  decode equals the one-prompt-alone decode (the tests check exactly this). It also means the
  new tokens of every row start at the same column, so we can slice them off in one go.
* **Sorted by length.** Each batch is padded to its longest prompt; grouping prompts of similar
  length wastes little compute on pads. Longest first, so a batch that does not fit in memory
  fails at once rather than at the end. Outputs are put back in the caller's order.
* **The tokenizer's own chat template** (``add_generation_prompt=True``), tokenized with
  ``add_special_tokens=False``: the template already writes BOS where the model expects it, and
  adding it again would give the model an input it never saw in training.
* **Greedy by default**, so results are reproducible. Sampling is seeded; note that sampled
  outputs depend on ``batch_size`` (the random stream is shared across a batch).

Tokenizer and model state (``padding_side``, a missing pad token, the ``training`` flag) are
changed only for the duration of the call and always restored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..data.schema import Record, prompt_messages
from ..errors import UserInputError

Messages = list[dict[str, str]]


def render_prompt(tokenizer: Any, messages: Messages) -> str:
    """The prompt text the model sees: the chat template with the assistant turn opened."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise UserInputError(
            "The tokenizer has no chat template, so chat prompts cannot be rendered. "
            "Use a chat/instruct model or set tokenizer.chat_template."
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@contextlib.contextmanager
def _generation_state(model: Any, tokenizer: Any) -> Iterator[tuple[int, list[int] | None]]:
    """Left padding, a pad token, eval mode; restores all three afterwards.

    Yields ``(pad_token_id, eos_token_ids)``. A tokenizer without a pad token borrows EOS as pad
    (the usual convention); the attention mask, not the token id, is what hides padding, so
    this is safe even when EOS also occurs inside the prompt.
    """
    old_side = tokenizer.padding_side
    old_pad = tokenizer.pad_token
    was_training = model.training
    try:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise UserInputError("The tokenizer has neither a pad token nor an EOS token to pad with.")
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()
        yield tokenizer.pad_token_id, _eos_ids(model, tokenizer)
    finally:
        tokenizer.padding_side = old_side
        tokenizer.pad_token = old_pad
        model.train(was_training)


def _eos_ids(model: Any, tokenizer: Any) -> list[int] | None:
    """Stop ids: the tokenizer's EOS plus the model's generation-config EOS ids.

    Chat models often end a turn with a token other than the tokenizer's EOS (Llama-3 lists
    both ``<|eot_id|>`` and ``<|end_of_text|>`` in its generation config); passing only one would
    let the model run past the end of its turn.
    """
    ids: list[int] = []
    for value in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        for i in value if isinstance(value, (list, tuple)) else [value]:
            if i is not None and i not in ids:
                ids.append(int(i))
    return ids or None


def _device(model: Any) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(model.parameters()).device


def _progress(enabled: bool) -> Any:
    """A progress bar over batches (plain lines when stderr is not a terminal); ``disable``
    makes it a no-op context manager."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ..progress import progress_bar

    return progress_bar(
        TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        disable=not enabled, transient=True,
    )


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """Generate one response per chat prompt; ``result[i]`` answers ``prompts[i]``.

    ``prompts`` are lists of ``{"role", "content"}`` messages ending with a user turn, rendered
    with the tokenizer's chat template and decoded by :func:`generate_text`.
    """
    if not prompts:
        return []
    texts = [render_prompt(tokenizer, list(p)) for p in prompts]
    return generate_text(
        model, tokenizer, texts, max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=do_sample,
        temperature=temperature, top_p=top_p, seed=seed, progress=progress,
    )


def generate_text(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> list[str]:
    """Continue already-rendered prompt strings (a judge's own template, or chat-rendered text).

    Prompts are tokenized with ``add_special_tokens=False`` (the text carries its own BOS if the
    model wants one), sorted by token length (longest first), left-padded and decoded
    ``batch_size`` at a time, stopping at EOS. Only the new tokens are decoded, with special
    tokens skipped and surrounding whitespace stripped. Sampling (``do_sample=True``) uses
    temperature and nucleus (``top_p``) only, with top-k disabled, seeded by ``seed``.
    Works for any model with HF's ``.generate``, PEFT models included.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not texts:
        return []

    texts = list(texts)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    # Stable sort: equal lengths keep their input order, so batching is deterministic.
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    outputs: list[str | None] = [None] * len(texts)
    device = _device(model)

    with _generation_state(model, tokenizer) as (pad_id, eos_ids):
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": do_sample,
            "pad_token_id": pad_id,
            "eos_token_id": eos_ids,
        }
        if do_sample:
            gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
        rng_devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=rng_devices), torch.inference_mode(), _progress(progress) as bar:
            torch.manual_seed(seed)  # inside fork_rng: the caller's global RNG state is untouched
            task = bar.add_task("generate", total=len(batches))
            for idx in batches:
                enc = tokenizer(
                    [texts[i] for i in idx], padding=True, add_special_tokens=False, return_tensors="pt"
                ).to(device)
                out = model.generate(
                    input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **gen_kwargs
                )
                # Left padding: every row's prompt ends at the same column, new tokens follow it.
                new_tokens = out[:, enc["input_ids"].shape[1] :]
                decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                for i, text in zip(idx, decoded):
                    outputs[i] = text.strip()
                bar.advance(task)
    return [o if o is not None else "" for o in outputs]


def generate_records(model: Any, tokenizer: Any, records: Sequence[Record], **kwargs: Any) -> list[str]:
    """:func:`generate` for schema records: each record's prompt is its messages up to (not
    including) a final assistant turn, so training records can be evaluated as prompts too."""
    return generate(model, tokenizer, [prompt_messages(r) for r in records], **kwargs)
