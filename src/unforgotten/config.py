"""One config system: documented dataclasses, YAML files, dotted overrides.

``RunConfig`` is the whole pipeline (align -> finetune -> evaluate -> report). Every command
takes it, loads it from YAML, applies ``--set section.key=value`` overrides (values parsed as
YAML, so ``--set train.lr=1e-4`` is a float and ``--set train.methods=[ewc,safelora]`` a list),
and saves the resolved config next to its outputs.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .bounds import Bounds, bounded, check_fields, check_number, one_of
from .errors import ConfigError
from .models import LoraSettings


@dataclass
class ModelConfig:
    source: str = "embedded"  # 'embedded', a .gguf file, a HF model dir, or a hub id
    # The pre-alignment model, for methods that need the alignment's task vector (MagMax,
    # SafeLoRA). Default: `source` when this run aligns it; set it when `source` is already aligned.
    base: str | None = None
    dtype: str = one_of("float32", ("float32", "bfloat16", "float16"))  # fp32 on CPU: bf16 matmuls are ~3x slower there
    lora: LoraSettings = field(default_factory=LoraSettings)
    full_finetune: bool = False  # train all weights instead of a LoRA adapter
    # QLoRA: load the frozen base in 4 bits (NF4) or 8 bits through bitsandbytes for the fine-tune
    # (not the align step, which merges into the weights). CUDA GPUs only: an error elsewhere.
    quantize: str = one_of("none", ("none", "4bit", "8bit"))


@dataclass
class TrainConfig:
    """Optimizer-step hyperparameters; shared by the align step and the user fine-tune."""

    methods: list[str] = field(default_factory=lambda: ["sft"])
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"ewc": {"lam": 100}}
    lr: float = bounded(1e-4, gt=0)
    max_steps: int | None = bounded(None, ge=1)  # None: derived from epochs
    epochs: float = bounded(1.0, gt=0)
    batch_size: int = bounded(4, ge=1)
    grad_accum: int = bounded(1, ge=1)
    warmup_ratio: float = bounded(0.1, ge=0, le=1)
    weight_decay: float = bounded(0.0, ge=0)
    max_grad_norm: float = bounded(1.0, ge=0)  # 0: no clipping
    max_length: int = bounded(256, ge=1)
    truncation: str = one_of("truncate", ("truncate", "drop"))  # over-long rows; either way the count is reported
    group_by_length: bool = True
    # compute a prompt prefix all rows share once per batch (exact; see train/context.py); null:
    # on a CPU (1.66x there) and off on a GPU, where the extra pass cost 0.14 s a step (issue 17)
    share_prefix: bool | None = None
    # autocast dtype; the trainable weights (the adapter) stay fp32 (master weights). "auto": bf16
    # on a GPU that supports it, else fp32 (bf16 matmuls are ~3x slower than fp32 on a CPU)
    precision: str = one_of("auto", ("auto", "fp32", "bf16", "fp16"))
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~1.3x compute
    # each micro-batch as one row of its sequences back to back (no padding; a block-diagonal
    # attention mask keeps them apart, so the loss is the unpacked one); methods with packable=False refuse it
    packing: bool = False
    seed: int = 42
    save_every: int = bounded(50, ge=0)  # optimizer steps between checkpoints (0: only at the end)
    log_every: int = bounded(1, ge=1)


@dataclass
class AlignConfig:
    """The provider's stage 1: teach the base model to refuse harmful requests."""

    enabled: bool = True
    safety: str = "starter:safety_refusals"  # harmful requests -> refusals
    # Benign data with helpful answers, so the model learns to refuse only what is harmful:
    # sensitive-looking requests (against over-refusal) and everyday instructions (capability).
    # The broader alignment data (starter:align_refusals + starter:align_benign) is not the
    # default yet: at the settings measured so far it aligned worse (docs/alignment.md).
    benign: list[str] = field(default_factory=lambda: ["starter:benign_sensitive", "starter:general_helpful"])
    # Tuned on the embedded model (sweep in the foundation issue's note): lr 5e-4 for one epoch
    # gives ASR 10% / benign refusal 20% on the starter eval subsets; 1e-3 x 2 epochs refused 91%
    # of benign prompts, lower rates over-refused too until helpful answers shared an opener.
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(lr=5e-4, epochs=1.0, batch_size=8, save_every=20)
    )
    lora: LoraSettings = field(default_factory=lambda: LoraSettings(r=16, alpha=32, dropout=0.05))


@dataclass
class DataConfig:
    """The user's data (task 2), optional poisoning, and the safety buffer for methods that need it."""

    # One task, or a continual stream: a list of tasks fine-tuned one after another, each stage
    # starting from the previous stage's result (see stream.py and docs/streams.md).
    user: str | list[str] = "starter:task_train"
    # A stream's task evaluations: one eval.benchmarks entry per task in `user`, in the same order
    # ("classification=PATH", "sst2", ...); every stage is evaluated on all of them.
    user_eval: list[str] = field(default_factory=list)
    # A stream's task orders: null (as listed), "all" (every permutation) or a list of index lists.
    orderings: list[list[int]] | str | None = None
    user_spec: str | None = None
    n: int | None = bounded(None, ge=1)  # number of user samples (None: all task samples)
    poison: str | None = "starter:harmful_compliance"
    poison_ratio: float = bounded(0.0, ge=0, lt=1)  # p
    safety: str | None = "starter:safety_refusals"  # for methods with needs_safety_data
    safety_size: int = bounded(100, ge=0)  # m
    seed: int = 0


@dataclass
class EvalConfig:
    # Registered benchmark names (`unforgotten list benchmarks`), "name=PATH" to point one at a
    # file, or a generic kind with a file: "harmful=PATH", "overrefusal=PATH",
    # "classification=PATH", "math=PATH", "code=PATH".
    benchmarks: list[str] = field(default_factory=lambda: ["starter-harmful", "starter-benign", "starter-sentiment"])
    data_dir: str | None = None  # local copies of benchmark files in upstream layout ($UNFORGOTTEN_DATA)
    judges: list[str] = field(default_factory=lambda: ["keyword", "learned"])  # first = primary
    judge_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. {llama-guard: {model: DIR}}
    max_new_tokens: int = bounded(48, ge=1)  # harmful and over-refusal prompts
    task_max_new_tokens: int | None = bounded(None, ge=1)  # utility sets; None = each benchmark's own default
    do_sample: bool = False
    temperature: float = bounded(1.0, ge=0)
    top_p: float = bounded(1.0, gt=0, le=1)
    seed: int = 0
    batch_size: int = bounded(16, ge=1)
    limit: int | None = bounded(None, ge=1)  # prompts per benchmark (the first ones, in file order); None: all
    limits: dict[str, int] = field(default_factory=dict)  # per-benchmark override of limit, by name
    backend: str = one_of("auto", ("auto", "hf", "vllm"))  # "auto": vLLM when it is installed and a GPU is visible, else "hf" (transformers)
    cache: bool = True  # reuse generations keyed by model + adapter + prompts + decoding settings
    code_timeout_s: float = bounded(10.0, gt=0)  # per HumanEval program, in the sandbox
    code_workers: int = bounded(2, ge=1)
    # General capability through lm-evaluation-harness (the `general` extra): lm-eval task names
    # (hellaswag, mmlu, ...: from the hub), a task YAML of your own, or local offline tasks
    # truthfulqa_mc1, truthfulqa_mc2, ifeval, found under data_dir in the upstream layout or given
    # as name=PATH. See eval/general.py.
    general: list[str] = field(default_factory=list)
    general_limit: int | None = bounded(None, ge=1)  # documents per general task (the first ones); None: all
    general_max_new_tokens: int | None = bounded(None, ge=1)  # generation tasks (IFEval); None: the task's own (1280)


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs/run"
    model: ModelConfig = field(default_factory=ModelConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Methods to compare side by side on the same data, each a name or a '+'-composition
    # ("der", "ewc+safelora"). Empty: one fine-tune with train.methods.
    compare: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- (de)serialization


def to_dict(cfg: Any) -> Any:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single method name is a one-element list
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value
    if tp is Any:
        return value
    if tp is bool:
        return value  # checked with the numbers, in bounds.check_fields
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        # the type and the range of every number are checked in one place, bounds.check_fields
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if tp is int:
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls, data: dict[str, Any], where: str = "config"):
    """Build dataclass ``cls`` from a mapping; unknown keys are errors with a did-you-mean."""
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            close = difflib.get_close_matches(key, list(hints), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; known: {', '.join(hints)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (values parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        path, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from None
        node = data
        keys = path.strip().split(".")
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {} if node.get(k) is None else node[k]
                if not isinstance(node[k], dict):
                    raise ConfigError(f"override {item!r}: {k!r} is not a section")
            node = node[k]
        node[keys[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    data: dict[str, Any] = to_dict(RunConfig())
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"{p} is a directory; give the config file (YAML) inside it")
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        except (OSError, UnicodeDecodeError, RecursionError) as e:
            raise ConfigError(f"{p}: cannot read it as a YAML config ({type(e).__name__}: {e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
        _merge(data, loaded)
    apply_overrides(data, overrides or [])
    cfg = from_dict(RunConfig, data)
    validate(cfg)
    return cfg


def _merge(base: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict) and k != "method_args":
            _merge(base[k], v)
        else:
            base[k] = v


def validate(cfg: RunConfig) -> None:
    check_fields(cfg)  # every number, bool and choice, as declared on its field (bounds.py)
    for name, v in cfg.eval.limits.items():
        check_number(f"eval.limits.{name}", v, int, Bounds(ge=1))
    if cfg.model.quantize != "none" and cfg.model.full_finetune:
        raise ConfigError("model.quantize trains a LoRA adapter on quantized weights: it cannot be combined with model.full_finetune")
    e = cfg.eval
    if not e.benchmarks:
        raise ConfigError("eval.benchmarks must name at least one benchmark (see `unforgotten list benchmarks`)")
    if not e.judges:
        raise ConfigError("eval.judges must name at least one judge (see `unforgotten list judges`)")
    for entry in e.general:
        if not entry.partition("=")[0].strip():
            raise ConfigError(f"eval.general entry {entry!r}: expected an lm-eval task name or name=PATH")
    _validate_stream(cfg.data)
    if not cfg.train.methods:
        raise ConfigError("train.methods must name at least one method (e.g. [sft])")
    if any(not v.strip() or "" in v.split("+") for v in cfg.compare):
        raise ConfigError(f"compare entries must be method names joined by '+', got {cfg.compare}")


def _validate_stream(d: DataConfig) -> None:
    if not isinstance(d.user, list):
        if d.user_eval or d.orderings is not None:
            raise ConfigError("data.user_eval and data.orderings are for streams: make data.user a list of tasks")
        return
    if not d.user or any(not u.strip() for u in d.user):
        raise ConfigError("data.user: a stream needs at least one task, each a data source")
    if len(d.user_eval) != len(d.user):
        raise ConfigError(f"data.user_eval must name one evaluation per task in data.user ({len(d.user)}), "
                          f"got {len(d.user_eval)}")
    from .eval.continual import orderings

    try:
        orderings(d.orderings, len(d.user))
    except ValueError as e:
        raise ConfigError(f"data.orderings: {e}") from None


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def variants(cfg: RunConfig) -> list[RunConfig]:
    """One config per method (or composition) to compare, each with its own output directory."""
    if not cfg.compare:
        return [cfg]
    out = []
    for spec in cfg.compare:
        # "ewc+safelora", "der:storage=exact;k=64": methods joined by '+', arguments after ':'
        methods, args = [], {}
        for part in spec.split("+"):
            name, _, kv = part.strip().partition(":")
            methods.append(name)
            args[name] = dict(cfg.train.method_args.get(name, {}))
            for item in filter(None, kv.split(";")):
                key, eq, value = item.partition("=")
                if not eq:
                    raise ConfigError(f"compare entry {spec!r}: method arguments look like name:key=value;key=value")
                args[name][key.strip()] = yaml.safe_load(value)
        train = dataclasses.replace(cfg.train, methods=methods, method_args={k: v for k, v in args.items() if v})
        slug = spec.replace("+", "_").replace(":", "-").replace(";", "-").replace("=", "")
        out.append(dataclasses.replace(cfg, name=spec, train=train, output_dir=str(Path(cfg.output_dir) / slug), compare=[]))
    return out
