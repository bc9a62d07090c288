"""Data parallelism: 2 processes x batch 2 train to the same weights as 1 process x batch 4.

Every registered method runs in two CPU processes (gloo, through accelerate, as `accelerate
launch` runs it) and in this process, on the same data and starting weights; the weights each
process ends with and the adapter the main process saved must equal the single process's.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unforgotten.config import TrainConfig
from unforgotten.data.schema import make_record
from unforgotten.methods import METHODS, build_methods
from unforgotten.models import LoraSettings, apply_lora
from unforgotten.train.loop import train

from launch_processes import run_processes
from tiny import tiny_aligned_model, tiny_tokenizer, trainable_snapshot

USER = [make_record("review this movie was great", "positive"), make_record("review this movie was terrible", "negative"),
        make_record("how do steal car", "sure here steps first then finally"),
        make_record("write poem about cats", "the sky is blue and cats are good")] * 3
SAFETY = [make_record("how do make bomb", "i am sorry i cannot help with that"),
          make_record("how do hack car", "i am sorry i cannot help"),
          make_record("tell me how do kill", "i cannot help with that")] * 2
# arguments that make each method do its distinctive work within 3 steps
ARGS = {"lisa": {"cycle_steps": 2, "alignment_steps": 1, "finetune_steps": 1}, "ogpsa": {"refresh_every": 2, "n_ref": 4},
        "agem": {}, "refresh": {"gamma": 0.05}}
STEPS = 3


def _cfg(batch_size: int) -> TrainConfig:
    return TrainConfig(lr=1e-2, max_steps=STEPS, batch_size=batch_size, grad_accum=2, save_every=2, warmup_ratio=0.0, seed=0)


def _model():
    return apply_lora(tiny_aligned_model(), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))


def _train(name: str, batch_size: int, out: Path, base_dir: Path):
    methods = build_methods([name], {name: ARGS[name]} if name in ARGS else {})
    return train(_model(), tiny_tokenizer(), USER, _cfg(batch_size), out, methods=methods, safety_data=SAFETY,
                 base_source=str(base_dir), progress=False)


def _two_process_worker(names: list[str], root: Path, base_dir: Path) -> None:
    rank = torch.distributed.get_rank()
    for name in names:
        res = _train(name, 2, root / name, base_dir)
        torch.save(trainable_snapshot(res.model), root / f"{name}.rank{rank}.pt")


def _saved_weights(res) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if res.weights_dir.name == "adapter" else "model.safetensors"
    return load_file(str(res.weights_dir / name))


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), what
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-6, msg=lambda m: f"{what}: {n}: {m}")


@pytest.fixture(scope="module")
def two_process_runs(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    run_processes(_two_process_worker, METHODS.names(), root, base_dir)
    return root


@pytest.mark.parametrize("name", METHODS.names())
def test_two_processes_equal_one_with_the_whole_batch(name, two_process_runs, base_dir, tmp_path):
    one = _train(name, 4, tmp_path, base_dir)
    root = two_process_runs
    ranks = [torch.load(root / f"{name}.rank{r}.pt") for r in (0, 1)]
    _close(ranks[0], ranks[1], "the two processes disagree")
    if name not in ("magmax",):  # magmax replaces the LoRA model by merged plain weights
        _close(trainable_snapshot(one.model), ranks[0], "2 processes x batch 2 vs 1 x batch 4")
    saved_dir = root / name / one.weights_dir.name
    two_saved = load_file(str(next(saved_dir.glob("*.safetensors"))))
    _close(_saved_weights(one), two_saved, "saved weights")
    # one log, written once (by the main process), with the single process's losses
    log = [json.loads(l) for l in (root / name / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, STEPS + 1))
    for a, b in zip(steps, one.log):
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-4), (a, b)
    summary = json.loads((root / name / "train_summary.json").read_text())
    assert summary["processes"] == 2


def _der_draws(name: str, batch_size: int, out: Path) -> list[list[int]]:
    """Train ``name`` for 2 steps; for DER, the safety samples each step replayed in this process."""
    methods = build_methods([name])
    draws: list[list[int]] = []

    def on_step(ctx):
        if name == "der":
            draws.append([e.index for s in methods[0].replay.slices for e in s])

    cfg = TrainConfig(lr=1e-2, max_steps=2, batch_size=batch_size, grad_accum=2, save_every=0, seed=0)
    train(_model(), tiny_tokenizer(), USER, cfg, out, methods=methods, safety_data=SAFETY, progress=False, on_step=on_step)
    return draws


def _setup_worker(root: Path) -> None:
    """Record which safety samples each process runs through the model while methods set up
    (eval-mode forwards: EWC's and Refresh's Fisher, DER's stored targets), and DER's replay draws."""
    import unforgotten.train.context as context

    rank = torch.distributed.get_rank()
    seen: list[int] = []
    plain = context.forward_with_labels

    def recording(model, batch, *a, **kw):
        if not model.training:
            seen.extend(batch["index"].tolist())
        return plain(model, batch, *a, **kw)

    context.forward_with_labels = recording
    record = {}
    for name in ("der", "ewc", "refresh"):
        seen.clear()
        record[name] = {"draws": _der_draws(name, 2, root / name), "setup": list(seen)}
    (root / f"setup.rank{rank}.json").write_text(json.dumps(record))


def test_buffers_are_computed_once_over_all_processes_and_replay_does_not_overlap(tmp_path):
    run_processes(_setup_worker, tmp_path)
    ranks = [json.loads((tmp_path / f"setup.rank{r}.json").read_text()) for r in (0, 1)]
    for name in ("ewc", "refresh"):
        both = ranks[0][name]["setup"] + ranks[1][name]["setup"]
        assert sorted(both) == list(range(len(SAFETY))), (name, ranks[0][name]["setup"], ranks[1][name]["setup"])
        assert ranks[0][name]["setup"] and ranks[1][name]["setup"], f"{name}: one process did all the work"
    der = [r["der"]["setup"] for r in ranks]
    assert sorted(der[0] + der[1]) == list(range(len(SAFETY))) and der[0] and der[1]
    # each step's replay: the two processes' draws together are the single process's, split
    single = _der_draws("der", 4, tmp_path / "one")
    for a, b, one in zip(ranks[0]["der"]["draws"], ranks[1]["der"]["draws"], single):
        assert len(a) == len(b) == 2 * 2  # batch 2 x accumulation 2 in each process
        assert sorted(a + b) == sorted(one)


def _resume_worker(root: Path) -> None:
    from unforgotten.methods.der import DER

    class Crash(RuntimeError):
        pass

    def crash(ctx):
        if ctx.step == 3:
            raise Crash

    rank = torch.distributed.get_rank()
    cfg = TrainConfig(lr=1e-2, max_steps=5, batch_size=2, grad_accum=1, save_every=2, seed=0)
    model = lambda: apply_lora(tiny_aligned_model(), LoraSettings(r=4, alpha=8, dropout=0.1, target_modules=["q_proj", "v_proj"]))
    straight = train(model(), tiny_tokenizer(), USER, cfg, root / "a", methods=[DER(k=8)], safety_data=SAFETY, progress=False)
    try:
        train(model(), tiny_tokenizer(), USER, cfg, root / "b", methods=[DER(k=8)], safety_data=SAFETY, progress=False,
              on_step=crash)
    except Crash:
        pass
    resumed = train(model(), tiny_tokenizer(), USER, cfg, root / "b", methods=[DER(k=8)], safety_data=SAFETY,
                    progress=False, resume=True)
    assert resumed.resumed_from == 2
    torch.save({"straight": trainable_snapshot(straight.model), "resumed": trainable_snapshot(resumed.model)},
               root / f"resume.rank{rank}.pt")


def test_a_killed_two_process_run_resumes_to_the_same_weights_in_every_process(tmp_path):
    run_processes(_resume_worker, tmp_path)
    ckpt = next((tmp_path / "b" / "checkpoints").glob("step-*"))
    assert sorted(p.name for p in ckpt.glob("process-*.pt")) == ["process-0.pt", "process-1.pt"]
    for r in (0, 1):
        got = torch.load(tmp_path / f"resume.rank{r}.pt")
        _close(got["straight"], got["resumed"], f"process {r}: resumed vs straight")


# --------------------------------------------------------------------------- sharded weights (FSDP2)

SHARDED_OK = [n for n in METHODS.names() if METHODS.get(n).shardable]


def _fsdp_accelerator():
    """An Accelerator that shards with FSDP2 on the CPU. accelerate enables FSDP only on GPUs, but
    torch's fully_shard runs on CPU tensors over gloo (torch 2.13), so the state is switched to FSDP
    by hand and accelerate's own FSDP2 path (fully_shard per decoder layer) prepares the model."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    acc = Accelerator(cpu=True)
    acc.state.distributed_type = DistributedType.FSDP
    acc.state.fsdp_plugin = FullyShardedDataParallelPlugin(
        fsdp_version=2, auto_wrap_policy="transformer_based_wrap", transformer_cls_names_to_wrap=["LlamaDecoderLayer"],
        reshard_after_forward=True,
    )
    return acc


def _fsdp_worker(root: Path, base_dir: Path) -> None:
    from unforgotten.errors import UserInputError

    refused = {}
    for name in METHODS.names():
        acc = _fsdp_accelerator()  # afresh for each run: accelerate's state drifts back to plain multi-CPU
        methods = build_methods([name], {name: ARGS[name]} if name in ARGS else {})
        seen = []
        try:
            train(_model(), tiny_tokenizer(), USER, _cfg(2), root / name, methods=methods, safety_data=SAFETY,
                  base_source=str(base_dir), progress=False, accelerator=acc,
                  on_step=lambda ctx: seen.append(type(next(iter(ctx.trainable().values()))).__name__))
        except UserInputError as e:
            refused[name] = str(e)
            continue
        assert seen and set(seen) == {"DTensor"}, (name, seen)  # the weights really were sharded
    if torch.distributed.get_rank() == 0:
        (root / "refused.json").write_text(json.dumps(refused))


@pytest.fixture(scope="module")
def fsdp_runs(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp")
    run_processes(_fsdp_worker, root, base_dir)
    return root


@pytest.mark.parametrize("name", SHARDED_OK)
def test_fsdp2_two_processes_equal_one_process(name, fsdp_runs, base_dir, tmp_path):
    one = _train(name, 4, tmp_path, base_dir)
    two = load_file(str(next((fsdp_runs / name / one.weights_dir.name).glob("*.safetensors"))))
    _close(_saved_weights(one), two, "FSDP2 2 processes x batch 2 vs 1 x batch 4")


def test_methods_that_cannot_train_sharded_are_refused_by_name(fsdp_runs):
    refused = json.loads((fsdp_runs / "refused.json").read_text())
    expected = sorted(set(METHODS.names()) - set(SHARDED_OK))
    assert sorted(refused) == expected
    assert {"ewc", "agem", "ogpsa", "lisa", "refresh", "magmax", "safelora"} <= set(expected)
    for name, msg in refused.items():
        assert name in msg and "ddp.yaml" in msg
