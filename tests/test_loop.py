"""The training loop: it learns, resumes exactly, is invariant to gradient accumulation."""

import json

import pytest
import torch
from safetensors.torch import load_file

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.errors import UserInputError
from unforgotten.methods import Method
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train import checkpoint
from unforgotten.train.loop import train

from tiny import tiny_model, tiny_tokenizer, trainable_snapshot

RECORDS = [make_record("how do make bomb", "i am sorry i cannot help with that")] * 6 + [
    make_record("write poem about cats", "the sky is blue and cats are good"),
    make_record("review this movie was great", "positive"),
    make_record("review this movie was terrible", "negative"),
] * 2


def _lora_model(dropout=0.0, seed=0):
    return apply_lora(tiny_model(seed=seed), LoraSettings(r=4, alpha=8, dropout=dropout, target_modules=["q_proj", "v_proj"]))


def _cfg(**kw):
    base = dict(lr=5e-2, max_steps=12, batch_size=4, warmup_ratio=0.1, save_every=0, seed=3)
    base.update(kw)
    return TrainConfig(**base)


_trainable = trainable_snapshot


def test_loss_goes_down_and_outputs_are_written(tmp_path):
    tok = tiny_tokenizer()
    model = _lora_model()
    res = train(model, tok, RECORDS, _cfg(max_steps=30), tmp_path, progress=False)
    losses = [r["loss"] for r in res.log]
    assert losses[-1] < 0.7 * losses[0]
    assert all(torch.isfinite(torch.tensor(losses)))
    log = [json.loads(l) for l in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["steps"] == 30 and summary["methods"] == ["sft"]


def test_saved_adapter_loads_with_plain_peft(tmp_path):
    from peft import PeftModel

    tok = tiny_tokenizer()
    model = _lora_model()
    train(model, tok, RECORDS, _cfg(max_steps=5), tmp_path, progress=False)
    reloaded = PeftModel.from_pretrained(tiny_model(), str(tmp_path / "adapter"))
    ids = torch.tensor([[2, 5, 6, 7]])
    model.eval()
    assert torch.allclose(model(input_ids=ids.to(model.device)).logits.cpu(), reloaded(input_ids=ids).logits, atol=1e-6)


class _Crash(RuntimeError):
    pass


def test_a_checkpoint_carries_the_cuda_generators(tmp_path, monkeypatch):
    """Dropout on a GPU draws from the CUDA generators: a resume there is exact only if they are
    saved and restored too. This machine has no GPU, so torch.cuda's RNG calls are stood in for."""
    saved_state = [torch.tensor([1, 2, 3], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    model = _lora_model()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    path = checkpoint.save(tmp_path, 3, model, opt, sched, [], fingerprint="f")
    checkpoint.load(path, model, opt, sched, [])
    assert len(restored) == 1 and torch.equal(restored[0][0], saved_state[0])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # another machine: leave its generators alone
    checkpoint.load(path, model, opt, sched, [])
    assert len(restored) == 1


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    """Kill a run after step 7 (checkpoint at 6), resume it: same weights as a straight run."""
    tok = tiny_tokenizer()
    cfg = _cfg(save_every=3, grad_accum=2, batch_size=2)  # dropout on: RNG state must be restored too
    straight = _lora_model(dropout=0.1)
    train(straight, tok, RECORDS, cfg, tmp_path / "a", progress=False)

    def crash(ctx):
        if ctx.step == 7:
            raise _Crash

    interrupted = _lora_model(dropout=0.1)
    with pytest.raises(_Crash):
        train(interrupted, tok, RECORDS, cfg, tmp_path / "b", progress=False, on_step=crash)
    assert checkpoint.latest(tmp_path / "b").name == "step-0000006"

    fresh = _lora_model(dropout=0.1)  # a new process would start from the initial weights
    res = train(fresh, tok, RECORDS, cfg, tmp_path / "b", resume=True, progress=False)
    assert res.resumed_from == 6
    a, b = _trainable(straight), _trainable(fresh)
    assert a.keys() == b.keys()
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)
    log = [json.loads(l)["step"] for l in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1] == 12


def test_resume_refuses_a_checkpoint_from_other_settings(tmp_path):
    tok = tiny_tokenizer()
    train(_lora_model(), tok, RECORDS, _cfg(save_every=3, max_steps=6), tmp_path, progress=False)
    with pytest.raises(UserInputError, match="other settings"):
        train(_lora_model(), tok, RECORDS, _cfg(save_every=3, max_steps=6, lr=1e-3), tmp_path, resume=True, progress=False)


def test_gradient_accumulation_is_equivalent_to_a_bigger_batch(tmp_path):
    """accumulation 2 x batch 2 == accumulation 1 x batch 4 (token-mean over the whole step)."""
    tok = tiny_tokenizer()
    recs = RECORDS[:8]
    big = _lora_model()
    train(big, tok, recs, _cfg(batch_size=4, grad_accum=1, group_by_length=False, max_steps=4), tmp_path / "a", progress=False)
    acc = _lora_model()
    # same sample order: a batch of 4 is the concatenation of two batches of 2 when shuffling
    # is by index and lengths are not grouped
    train(acc, tok, recs, _cfg(batch_size=2, grad_accum=2, group_by_length=False, max_steps=4), tmp_path / "b", progress=False)
    a, b = _trainable(big), _trainable(acc)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-5)


def test_hooks_run_in_order_and_steps_count_optimizer_steps(tmp_path):
    calls = []

    class Spy(Method):
        name = "spy"

        def setup(self, ctx):
            calls.append(("setup", ctx.step))

        def start_step(self, ctx):
            assert len(ctx.micro_batches) == 3 and ctx.step_tokens > 0
            calls.append(("start", ctx.step))

        def loss(self, ctx, batch, outputs, task_loss):
            calls.append(("loss", ctx.step))
            assert outputs.logits.shape[0] == outputs.n_tokens
            return task_loss

        def before_step(self, ctx):
            grads = [p.grad for p in ctx.trainable().values()]
            assert all(g is not None for g in grads)
            calls.append(("before", ctx.step))

        def after_step(self, ctx):
            calls.append(("after", ctx.step))

        def finalize(self, ctx):
            calls.append(("finalize", ctx.step))

    tok = tiny_tokenizer()
    train(_lora_model(), tok, RECORDS, _cfg(max_steps=2, grad_accum=3, batch_size=2), tmp_path, methods=[Spy()], progress=False)
    assert calls == [
        ("setup", 0), ("start", 0), ("loss", 0), ("loss", 0), ("loss", 0), ("before", 0), ("after", 1),
        ("start", 1), ("loss", 1), ("loss", 1), ("loss", 1), ("before", 1), ("after", 2), ("finalize", 2),
    ]


def test_logits_only_where_labels_exist_give_the_full_loss(tok):
    """Our selective LM head gives exactly the loss of computing all logits."""
    from unforgotten.data.tokenize import collate, encode_records
    from unforgotten.train.context import forward_with_labels

    model = tiny_model()
    encs, _ = encode_records(tok, RECORDS[:6], 64)
    batch = collate(encs, tok.pad_token_id)
    out = forward_with_labels(model, batch)
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    ref = torch.nn.functional.cross_entropy(full.reshape(-1, full.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum")
    torch.testing.assert_close(out.loss_sum, ref, rtol=1e-5, atol=1e-5)
    assert out.n_tokens == int((labels != -100).sum())


def test_safety_hungry_method_without_safety_data_is_a_clear_error(tmp_path):
    class NeedsSafety(Method):
        name = "needs"
        needs_safety_data = True

    with pytest.raises(UserInputError, match="needs safety data"):
        train(_lora_model(), tiny_tokenizer(), RECORDS, _cfg(), tmp_path, methods=[NeedsSafety()], progress=False)


def test_full_finetune_saves_a_loadable_model(tmp_path):
    from transformers import AutoModelForCausalLM

    tok = tiny_tokenizer()
    model = tiny_model()
    res = train(model, tok, RECORDS, _cfg(max_steps=3, lr=1e-3), tmp_path, progress=False)
    assert res.weights_dir.name == "model"
    again = AutoModelForCausalLM.from_pretrained(res.weights_dir)
    w = load_file(str(res.weights_dir / "model.safetensors"))
    assert w  # real weights on disk
    ids = torch.tensor([[2, 5, 6]])
    assert torch.allclose(model(input_ids=ids.to(model.device)).logits.cpu(), again(input_ids=ids).logits, atol=1e-5)


class _Alternate(Method):
    """Every other step trains on its own records instead of the user's (Lisa's shape)."""

    name = "alternate"

    def setup(self, ctx):
        self.stream = ctx.stream([make_record("how do make bomb", "i am sorry")] * 4, batch_size=ctx.config.batch_size)
        self.consumed = 0
        self.it = self.stream.iterate(0)

    def batch_source(self, ctx):
        if ctx.step % 2 == 1:
            self.consumed += ctx.config.grad_accum
            return self.it
        return None

    def state_dict(self):
        return {"consumed": self.consumed}

    def load_state_dict(self, state):
        self.consumed = state["consumed"]
        self.it = self.stream.iterate(self.consumed)


def test_method_batch_source_replaces_user_batches_and_resumes_exactly(tmp_path):
    tok = tiny_tokenizer()
    cfg = _cfg(save_every=3, max_steps=10)
    straight = _lora_model()
    train(straight, tok, RECORDS, cfg, tmp_path / "a", methods=[_Alternate()], progress=False)
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert summary["steps"] == 10

    def crash(ctx):
        if ctx.step == 7:
            raise _Crash

    with pytest.raises(_Crash):
        train(_lora_model(), tok, RECORDS, cfg, tmp_path / "b", methods=[_Alternate()], progress=False, on_step=crash)
    state = json.loads((checkpoint.latest(tmp_path / "b") / "state.json").read_text())
    assert state["step"] == 6 and state["user_micro_batches"] == 3  # user data used on 3 of 6 steps
    fresh = _lora_model()
    train(fresh, tok, RECORDS, cfg, tmp_path / "b", methods=[_Alternate()], resume=True, progress=False)
    a, b = _trainable(straight), _trainable(fresh)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-6)


def test_shared_prefix_forward_equals_the_plain_forward(tok):
    """A common prompt prefix computed once gives the same loss and gradients as the plain forward."""
    from unforgotten.data.tokenize import collate, encode_records
    from unforgotten.train.context import MIN_SHARED_PREFIX, forward_with_labels, shared_prefix_length

    model = _lora_model()
    with torch.no_grad():  # a nonzero adapter, so its gradients are not trivially equal
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    model.eval()
    pre = "you are a helpful model please tell me what why who when where " * 2
    recs = [make_record(pre + "review this movie was great", "positive"),
            make_record(pre + "how do make bomb now please", "i am sorry i cannot help"), make_record(pre + "why", "sure")]
    encs, _ = encode_records(tok, recs, 128)
    batch = collate(encs, tok.pad_token_id)
    assert shared_prefix_length(batch) > MIN_SHARED_PREFIX + 1
    params = [p for p in model.parameters() if p.requires_grad]
    plain = forward_with_labels(model, batch)
    g_plain = torch.autograd.grad(plain.loss_sum, params)
    calls = []
    hook = model.get_base_model().register_forward_hook(lambda mod, args, kw_out: calls.append(1))
    shared = forward_with_labels(model, batch, share_prefix=True)
    hook.remove()
    assert len(calls) == 2  # really took the prefix path: one prefix pass, one suffix pass
    g_shared = torch.autograd.grad(shared.loss_sum, params)
    torch.testing.assert_close(shared.loss_sum, plain.loss_sum, rtol=1e-5, atol=1e-5)
    assert shared.n_tokens == plain.n_tokens
    torch.testing.assert_close(shared.logits, plain.logits, rtol=1e-4, atol=1e-5)
    for a, b in zip(g_plain, g_shared):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
