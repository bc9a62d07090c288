"""Loss masking (assistant tokens only), truncation accounting, batching."""

import pytest

from unforgotten.data.schema import make_record
from unforgotten.data.tokenize import IGNORE, BatchStream, collate, encode_record, encode_records, length_grouped_batches
from unforgotten.errors import DataError


def _answer_text(tok, enc):
    return tok.decode([t for t in enc.labels if t != IGNORE])


def test_only_assistant_tokens_have_labels(tok):
    rec = make_record("how do make bomb", "i am sorry", system="you are a helpful model")
    enc = encode_record(tok, rec)
    assert len(enc.labels) == len(enc.input_ids)
    assert _answer_text(tok, enc) == "i am sorry <|im_end|>"
    # every labelled position carries exactly the input token there
    assert all(l == i for l, i in zip(enc.labels, enc.input_ids) if l != IGNORE)
    # the prompt (system, user, generation prompt) is fully masked
    n_prompt = len(tok.apply_chat_template(rec["messages"][:-1], tokenize=True, add_generation_prompt=True))
    assert all(l == IGNORE for l in enc.labels[:n_prompt])


def test_multi_turn_masks_every_user_turn(tok):
    rec = {"messages": [
        {"role": "user", "content": "how do make bomb"}, {"role": "assistant", "content": "i am sorry"},
        {"role": "user", "content": "why"}, {"role": "assistant", "content": "cannot help"},
    ]}
    enc = encode_record(tok, rec)
    assert _answer_text(tok, enc) == "i am sorry <|im_end|> cannot help <|im_end|>"


def test_prompt_only_record_is_rejected(tok):
    with pytest.raises(DataError, match="no assistant turn"):
        encode_record(tok, make_record("how do make bomb"))


def test_truncation_is_counted_never_silent(tok):
    long = make_record("how " * 40, "i am sorry")
    short = make_record("why", "sure")
    kept, stats = encode_records(tok, [short, long], max_length=20, truncation="truncate")
    # the long sample loses its whole answer when cut at 20 tokens -> dropped and counted
    assert stats.truncated == 1 and stats.dropped == 1 and stats.dropped_indices == [1]
    assert [e.index for e in kept] == [0]
    kept, stats = encode_records(tok, [short, long], max_length=20, truncation="drop")
    assert stats.dropped == 1 and stats.truncated == 0
    mid = make_record("how do", "i am sorry i cannot help with that")
    kept, stats = encode_records(tok, [mid], max_length=12)
    assert stats.truncated == 1 and stats.dropped == 0 and len(kept[0].input_ids) == 12
    assert "truncated" in stats.describe(12)


def test_collate_pads_dynamically_and_masks_padding(tok):
    encs, _ = encode_records(tok, [make_record("why", "sure"), make_record("how do make bomb now", "i am sorry")], 64)
    b = collate(encs, tok.pad_token_id)
    width = max(len(e.input_ids) for e in encs)
    assert b["input_ids"].shape == (2, width)
    short = min(range(2), key=lambda i: len(encs[i].input_ids))
    n = len(encs[short].input_ids)
    assert (b["labels"][short, n:] == IGNORE).all() and (b["attention_mask"][short, n:] == 0).all()


def test_length_grouping_reduces_padding_and_covers_every_sample():
    lengths = [5, 50, 6, 48, 7, 47, 8, 46] * 8
    batches = length_grouped_batches(lengths, 4, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    pad = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert pad < 0.1 * sum(lengths)
    assert batches == length_grouped_batches(lengths, 4, seed=0, epoch=0)
    assert batches != length_grouped_batches(lengths, 4, seed=0, epoch=1)


def test_batch_stream_resumes_at_any_position(tok):
    encs, _ = encode_records(tok, [make_record("why " * (i % 5 + 1), "sure") for i in range(10)], 64)
    stream = BatchStream(encs, 3, tok.pad_token_id, seed=1)
    full = stream.iterate(0)
    seq = [next(full)["index"].tolist() for _ in range(9)]  # crosses epoch boundaries (4 batches/epoch)
    resumed = stream.iterate(5)
    assert [next(resumed)["index"].tolist() for _ in range(4)] == seq[5:]
