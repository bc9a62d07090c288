"""Check the whole config before any slow work: every name, path and method argument.

``run`` aligns, evaluates and fine-tunes for hours; a typo in the last benchmark name must not
wait for all of that to surface. ``preflight`` resolves everything the requested stages will
use (method names and arguments of every compared variant, data sources with their records
validated, model and adapter paths, benchmark entries and their files, judge names) and raises
the first problem as a ``UserInputError`` naming the field. It loads no model and writes
nothing. Numeric ranges are the config's own validation (``config.validate``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import RunConfig
from .errors import ConfigError, UserInputError


def preflight(cfg: RunConfig, *, align: bool = False, finetune: bool = False, evaluate: bool = False,
              model_source: str | None = None, adapter: str | Path | None = None,
              variants: list[RunConfig] | None = None) -> None:
    """``variants``: the fine-tunes ``run`` will do (``api.variants(cfg)``); default ``[cfg]``."""
    from .config import validate
    from .data import load_records
    from .methods import build_methods

    validate(cfg)  # every number's type and range (bounds.py), for configs built in Python too
    _model("model.source" if model_source is None else "--model", model_source or cfg.model.source)
    if cfg.model.base:
        _model("model.base", cfg.model.base)
    if align and cfg.align.enabled and model_source is None:
        for where, source in [("align.safety", cfg.align.safety)] + [
                (f"align.benign[{i}]", s) for i, s in enumerate(cfg.align.benign)]:
            _data(where, lambda s=source: load_records(s, require_response=True))
    if finetune:
        from .config import variants

        safety_needed = False
        for v in variants(cfg):
            try:
                methods = build_methods(v.train.methods, v.train.method_args)
            except UserInputError as e:
                where = f"compare entry {v.name!r}" if cfg.compare else "train.methods / train.method_args"
                raise type(e)(f"{where}: {e}") from None
            safety_needed |= any(m.uses_safety_data() for m in methods)
        d = cfg.data
        users = d.user if isinstance(d.user, list) else [d.user]  # a list: the tasks of a stream
        for i, user in enumerate(users):
            where = f"data.user[{i}]" if isinstance(d.user, list) else "data.user"
            _data(where, lambda u=user: load_records(u, spec=d.user_spec, require_response=True))
        if d.poison_ratio > 0 and d.poison:
            _data("data.poison", lambda: load_records(d.poison, require_response=True))
        if safety_needed and d.safety and d.safety_size > 0:
            _data("data.safety", lambda: load_records(d.safety, require_response=True))
    if evaluate:
        _evaluation(cfg)
    if adapter is not None:
        adapter_check(Path(adapter))


def _model(where: str, source: str) -> None:
    from .models import EMBEDDED_NAMES, resolve_source

    if str(source).lower() in EMBEDDED_NAMES:
        return  # fetched and converted on first use; nothing to check without doing that
    try:
        kind, loc = resolve_source(source)
        if kind == "hf_dir":
            for weights in sorted(Path(loc).glob("*.safetensors")):
                _safetensors_header(weights)
    except UserInputError as e:
        raise type(e)(f"{where}: {e}") from None


def _data(where: str, load) -> None:
    try:
        load()
    except UserInputError as e:
        raise type(e)(f"{where}: {e}") from None


def _evaluation(cfg: RunConfig) -> None:
    from .eval.backends import resolve_backend
    from .eval.benchmarks import data_dir, load_benchmark, parse_entry, resolve_source
    from .eval.judges import JUDGES

    e = cfg.eval
    entries = [(f"eval.benchmarks[{i}]", entry) for i, entry in enumerate(e.benchmarks)]
    entries += [(f"data.user_eval[{i}]", entry) for i, entry in enumerate(cfg.data.user_eval)]
    for field, entry in entries:
        where = f"{field} ({entry!r})"
        try:
            bench, path = parse_entry(entry)
            source, _ = resolve_source(bench, path, data_dir(e.data_dir))
            if path is not None or source != bench.hub:  # a local file: load and validate it now
                load_benchmark(entry, root=e.data_dir, limit=1)
        except UserInputError as err:
            raise type(err)(f"{where}: {err}") from None
    for i, name in enumerate(e.judges):
        try:
            JUDGES.get(name)
        except UserInputError as err:
            raise type(err)(f"eval.judges[{i}]: {err}") from None
    stray = [k for k in e.judge_args if k not in e.judges]
    if stray:
        raise ConfigError(f"eval.judge_args given for judges not in eval.judges: {stray}")
    resolve_backend(e.backend)
    if e.general:
        _general(cfg)


def _general(cfg: RunConfig) -> None:
    """lm-eval installed, and every local general task's file there and readable."""
    from .eval import general

    general.require_lm_eval()
    for i, entry in enumerate(cfg.eval.general):
        try:
            name, path = general.resolve_entry(entry, cfg.eval.data_dir)
            if path is not None:
                general.LOCAL_TASKS[name].docs(path)
        except UserInputError as err:
            raise type(err)(f"eval.general[{i}]: {err}") from None


def adapter_check(path: Path) -> None:
    config = path / "adapter_config.json"
    if not config.is_file():
        raise UserInputError(f"{path} is not a peft adapter directory (no adapter_config.json)")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserInputError(f"{config}: not valid JSON ({e})") from None
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        if (path / "adapter_model.bin").is_file():
            return
        raise UserInputError(f"{path}: no adapter_model.safetensors (or .bin) next to adapter_config.json")
    _safetensors_header(weights)


def _safetensors_header(path: Path) -> None:
    """Read the header only (cheap): a truncated or garbage file fails here, named, before any
    model is loaded."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as e:  # noqa: BLE001 - SafetensorError is not exported under one name
        raise UserInputError(f"{path}: not a readable safetensors file ({e})") from None
