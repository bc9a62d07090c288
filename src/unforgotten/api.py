"""The pipeline's steps as Python functions: every CLI command (and the service) calls these.

    align     stage 1 (provider): safety-align the base model; merged and cached by content hash
    finetune  stage 2 (user): fine-tune the aligned model on (possibly poisoned) user data with
              one or more methods
    evaluate  ASR / benign refusal / task utility of a model (+ adapter)
    report    tables + plot from evaluation summaries
    run       all of it from one RunConfig, with a side-by-side table
    demo      run() on the embedded model and starter data, including the unaligned model
    check_data, list_methods, list_judges, list_benchmarks: what ``data check`` and ``list`` show

The rule: ``cli.py`` imports ``api`` for everything it does, ``config`` to read its arguments,
``errors`` for exit codes, ``report.rich_table`` to print what an api function returned, and
``service.commands`` (which adds the service's own ``serve``/``worker``/``keys``); nothing else
(``tests/test_structure.py`` checks it). New pipeline work goes here first; the service calls it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from .config import RunConfig, save_config, to_dict, variants
from .data import load_records, make_poisoned, premixed, sample_buffer, write_manifest
from .data.schema import Record
from .errors import UserInputError
from .methods import build_methods
from .outdir import claim
from .paths import cache_dir
from .preflight import adapter_check, preflight

console = Console(stderr=True)


def _dtype(name: str):
    import torch

    return getattr(torch, name)


def seeded(seed: int) -> None:
    """Seed python, numpy and torch (every device) before anything draws randomness: the LoRA
    initialisation happens before training starts, so ``train()`` seeding itself is too late."""
    from accelerate.utils import set_seed

    set_seed(seed)


def _content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- align


def align(cfg: RunConfig, *, force: bool = False, progress: bool = True) -> Path:
    """Safety-align ``cfg.model.source``; returns the aligned model directory (cached).

    LoRA SFT on harmful requests -> refusals plus benign-but-sensitive requests -> helpful
    answers (so the model does not learn to refuse everything), then the adapter is merged so
    the aligned model is an ordinary checkpoint that later fine-tunes start from.
    """
    from .models import resolve_source

    preflight(cfg, align=True)
    a = cfg.align
    records: list[Record] = load_records(a.safety, require_response=True)
    for source in a.benign:
        records += load_records(source, require_response=True)
    kind, loc = resolve_source(cfg.model.source)
    settings = to_dict(a)
    for k in ("save_every", "log_every"):  # bookkeeping, not the result: keep them out of the key
        settings["train"].pop(k)
    for k in ("safety", "benign"):  # where the data lives is not the result either: its content is hashed below
        settings.pop(k)
    key = _content_hash(kind, loc, settings, cfg.model.dtype, [r["messages"] for r in records])
    out = cache_dir() / "aligned" / key
    if (out / "config.json").is_file() and not force:
        console.print(f"Aligned model (cached): {out}")
        return out
    work = cache_dir() / "aligned" / f"{key}.train"
    # two runs aligning the same model take turns: the second then finds the first's result
    with claim(work, wait=True, waiting_note=lambda: console.print(f"Waiting for another process aligning into {out}")):
        if (out / "config.json").is_file() and not force:
            shutil.rmtree(work, ignore_errors=True)
            console.print(f"Aligned model (cached): {out}")
            return out
        _align_into(cfg, records, work, out, progress=progress)
    return out


def _align_into(cfg: RunConfig, records: list[Record], work: Path, out: Path, *, progress: bool) -> None:
    from .models import apply_lora
    from .train import checkpoint
    from .train.loop import train

    a = cfg.align
    console.print(f"Aligning {cfg.model.source} on {len(records)} records ({', '.join([a.safety, *a.benign])})")
    model, tok = load_weights(cfg.model.source, cfg.model.dtype)
    seeded(a.train.seed)  # the aligned model is cached by its settings: it must follow from them
    model = apply_lora(model, a.lora)
    # an interrupted alignment picks up where it stopped
    methods = build_methods(a.train.methods, a.train.method_args)
    train(model, tok, records, a.train, work, methods=methods, resume=checkpoint.latest(work) is not None, progress=progress)
    merged = model.merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "unforgotten_align.json").write_text(json.dumps({"base": cfg.model.source, "align": to_dict(a), "records": len(records)}, indent=2))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    shutil.rmtree(work, ignore_errors=True)


def alignment_tax(cfg: RunConfig, *, progress: bool = True) -> dict[str, Any]:
    """What the align step costs: base and aligned model evaluated alike (``eval.benchmarks``
    and ``eval.general``), the change per number, in ``<output_dir>/align_tax`` (``tax.json``,
    ``report.md``). Evaluations are cached, so asking again costs only the report."""
    from .report import headline, write_report

    root = Path(cfg.output_dir) / "align_tax"
    aligned = str(align(cfg, progress=progress))
    rows = [("base (unaligned)", evaluate(cfg, output_dir=root / "eval_base", label="base (unaligned)", progress=progress)),
            ("aligned", evaluate(cfg, model_source=aligned, output_dir=root / "eval_aligned", label="aligned", progress=progress))]
    numbers = []
    for _, s in rows:
        h = headline(s)
        general = {t: g.get("value") for t, g in ((s.get("general") or {}).get("tasks") or {}).items()}
        numbers.append({"asr": h["asr"], "over_refusal": h["over_refusal"], "utility": h["utility"], **general})
    tax = {k: (numbers[1][k] - numbers[0][k]) if numbers[0].get(k) is not None and numbers[1].get(k) is not None else None
           for k in numbers[0]}
    out = {"base": numbers[0], "aligned": numbers[1], "change": tax, "aligned_model": aligned,
           "align_methods": list(cfg.align.train.methods)}
    root.mkdir(parents=True, exist_ok=True)
    (root / "tax.json").write_text(json.dumps(out, indent=2))
    write_report(rows, root, title=f"Alignment tax ({'+'.join(cfg.align.train.methods)} at the align step)")
    return out


def starting_model(cfg: RunConfig, *, progress: bool = True) -> str:
    """What stage 2 fine-tunes: the aligned model when alignment is on, else the source itself."""
    return str(align(cfg, progress=progress)) if cfg.align.enabled else cfg.model.source


# --------------------------------------------------------------------------- data


def user_data(cfg: RunConfig) -> tuple[list[Record], dict[str, Any]]:
    """The user's fine-tuning set: n task samples of which a ratio p are poison, with a manifest."""
    d = cfg.data
    if isinstance(d.user, list):
        raise UserInputError("data.user lists several tasks (a stream): run it with `unforgotten run`, "
                             "which fine-tunes them one after another")
    task = load_records(d.user, spec=d.user_spec, require_response=True)
    if any(r.get("is_poison") for r in task):
        # Already mixed (Lisa-style files flag their harmful rows): use it as it is.
        if d.poison_ratio > 0:
            raise UserInputError(
                f"{d.user} already contains poison (rows flagged unsafe); set data.poison_ratio: 0 "
                "to use its mix as is, or give a clean task file to mix poison into")
        return premixed(task, n=d.n)
    n = d.n or len(task)
    if d.poison_ratio > 0:
        if not d.poison:
            raise UserInputError("data.poison_ratio > 0 but data.poison names no harmful data")
        harmful = load_records(d.poison, require_response=True)
    else:
        harmful = []
    return make_poisoned(task, harmful, n=n, p=d.poison_ratio, seed=d.seed)


def safety_buffer(cfg: RunConfig) -> list[Record] | None:
    d = cfg.data
    if not d.safety or d.safety_size == 0:
        return None
    return sample_buffer(load_records(d.safety, require_response=True), d.safety_size, seed=d.seed)


# --------------------------------------------------------------------------- finetune


def finetune(cfg: RunConfig, *, model_source: str | None = None, resume: bool = False, progress: bool = True,
             checked: bool = False, on_step=None, methods: list | None = None,
             init_adapter: str | Path | None = None):
    """Fine-tune the aligned model on the user's data with ``cfg.train.methods``.

    A stream's later stages pass their ``methods`` (instances holding what the previous stage
    handed on) and ``init_adapter``, the previous stage's LoRA adapter, to train on from there.

    Nothing is written into the output directory until every check has passed (a resumed
    checkpoint's settings included); ``--resume`` on a finished run reports it, or refuses when
    the settings changed, and never trains it again. ``checked``: ``run`` did the preflight.
    ``on_step(ctx)`` runs after every optimizer step (the service reports progress through it and
    sets ``ctx.stop_requested`` to pause or cancel a job; see ``train.loop.train``).
    """
    from .models import apply_lora
    from .train.loop import train

    cfg = _own_method_args(cfg)
    if methods is None:
        methods = build_methods(cfg.train.methods, cfg.train.method_args)  # fail fast on bad names/args
    if not checked:
        preflight(cfg, align=model_source is None, finetune=True, model_source=model_source)
    out = Path(cfg.output_dir) / "finetune"
    with claim(out):
        source = model_source or starting_model(cfg, progress=progress)
        records, manifest = user_data(cfg)
        safety = safety_buffer(cfg) if any(m.uses_safety_data() for m in methods) else None
        manifest = {**manifest, "safety_buffer_ids": [r.get("id") for r in safety or []]}
        if resume:
            finished = _finished(out, cfg, source, manifest)
            if finished is not None:
                return finished

        def write_records() -> None:  # called by train() once its checks have passed
            if int(os.environ.get("RANK", "0")) != 0:  # several processes: the main one writes
                return
            save_config(cfg, out / "config.yaml")
            write_manifest(manifest, out / "data_manifest.json")
            (out / "base_model.txt").write_text(source + "\n")

        console.print(
            f"Fine-tuning {source} with {'+'.join(cfg.train.methods)} on {len(records)} records "
            f"({manifest['n_poison']} poison, p={manifest['p']:g})"
        )
        model, tok = load_weights(source, cfg.model.dtype, cfg.model.quantize)
        if init_adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        elif not cfg.model.full_finetune:
            seeded(cfg.train.seed)  # LoRA's initial weights follow from the run's seed
            model = apply_lora(model, cfg.model.lora)
        return train(
            model, tok, records, cfg.train, out, methods=methods, safety_data=safety,
            base_source=cfg.model.base or (cfg.model.source if cfg.align.enabled else None), resume=resume,
            progress=progress, on_start=write_records, on_step=on_step,
        )


def _own_method_args(cfg: RunConfig) -> RunConfig:
    """``cfg`` without the method_args of methods that only ``compare`` uses: a config made for
    ``run`` (the shipped demo: ``compare: [sft, der, lisa]`` with lisa's arguments) fine-tunes
    its ``train.methods`` alone. Arguments for a method named nowhere stay an error."""
    import dataclasses

    compared = {part.partition(":")[0].strip() for spec in cfg.compare for part in spec.split("+")}
    only_compared = [k for k in cfg.train.method_args if k not in cfg.train.methods and k in compared]
    if not only_compared:
        return cfg
    args = {k: v for k, v in cfg.train.method_args.items() if k not in only_compared}
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, method_args=args))


def _finished(out: Path, cfg: RunConfig, source: str, manifest: dict[str, Any]):
    """The result of a finished run in ``out`` when it was made with these settings; None when
    there is no finished run; a UserInputError when there is one with other settings."""
    import yaml

    from .data.tokenize import EncodeStats
    from .train.loop import TrainResult

    summary_path = out / "train_summary.json"
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    weights = Path(summary.get("weights", ""))
    try:
        same = (yaml.safe_load((out / "config.yaml").read_text()) == yaml.safe_load(yaml.safe_dump(to_dict(cfg), sort_keys=False))
                and json.loads((out / "data_manifest.json").read_text()) == json.loads(json.dumps(manifest, default=str))
                and (out / "base_model.txt").read_text().strip() == source)
    except (OSError, ValueError):
        same = False
    if not same:
        raise UserInputError(
            f"{out} holds a finished run with other settings, data or base model; --resume continues "
            "an interrupted run only. Use another output_dir, or drop --resume to train it again")
    if not weights.is_dir():
        raise UserInputError(f"{out} is finished but its weights ({weights}) are missing; drop --resume to train again")
    console.print(f"{out}: already finished ({summary['steps']} steps); nothing to resume")
    return TrainResult(out, weights, summary["steps"], summary["final_loss"], summary.get("tokens_per_s", 0.0),
                       EncodeStats(total=summary.get("samples", 0), truncated=summary.get("truncated", 0),
                                   dropped=summary.get("dropped", 0)), summary.get("resumed_from", 0))


# --------------------------------------------------------------------------- evaluate


def load_weights(source: str, dtype: str = "float32", quantize: str = "none"):
    """``load_model`` with damaged files reported as the user's input, path named (exit 2)."""
    from .models import load_model

    try:
        return load_model(source, dtype=_dtype(dtype), quantize=quantize)
    except UserInputError:
        raise
    except Exception as e:  # noqa: BLE001 - only file-shaped failures are turned into input errors
        if not isinstance(e, (OSError, ValueError, KeyError)) and type(e).__name__ != "SafetensorError":
            raise
        raise UserInputError(f"cannot load the model {source}: {type(e).__name__}: {e}") from None


def load_for_eval(source: str, adapter: str | Path | None = None, dtype: str = "float32"):
    from .models import inference_device

    if adapter is not None:
        adapter_check(Path(adapter))
    model, tok = load_weights(source, dtype)
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter))
        except (OSError, ValueError, KeyError, RuntimeError) as e:  # safetensors' error is a ValueError...
            raise UserInputError(f"cannot load the adapter in {adapter}: {type(e).__name__}: {e}") from None
        except Exception as e:  # ...or its own SafetensorError
            if type(e).__name__ != "SafetensorError":
                raise
            raise UserInputError(f"cannot load the adapter in {adapter}: damaged safetensors ({e})") from None
    model.to(inference_device())
    model.eval()
    return model, tok


def evaluate(cfg: RunConfig, *, model_source: str | None = None, adapter: str | Path | None = None,
             output_dir: str | Path | None = None, label: str | None = None, progress: bool = True,
             checked: bool = False) -> dict[str, Any]:
    """Evaluate ``model_source`` (default: the config's model) with an optional LoRA adapter.

    Generations are cached by the weights' fingerprint, so evaluating the same model again
    (another judge, another report) only judges and scores.
    """
    from .eval.evaluate import evaluate_model
    from .eval.fingerprint import model_fingerprint

    from .eval.backends import resolve_backend

    source = model_source or cfg.model.source
    if not checked:
        preflight(cfg, evaluate=True, model_source=source, adapter=adapter)
    out = Path(output_dir) if output_dir else Path(cfg.output_dir) / "eval"
    meta = {"label": label, "model": {"source": source, "adapter": str(adapter) if adapter else None}}
    with claim(out):
        if resolve_backend(cfg.eval.backend) == "vllm":
            return _evaluate_vllm(cfg, source, adapter, out, meta=meta, progress=progress)
        model, tok = load_for_eval(source, adapter, cfg.model.dtype)
        fingerprint = model_fingerprint(source, adapter) if cfg.eval.cache else None
        summary = evaluate_model(model, tok, cfg.eval, out, fingerprint=fingerprint, meta=meta, progress=progress)
        if cfg.eval.general:
            from .eval.general import add_general

            summary = add_general(summary, model, tok, cfg.eval, out, fingerprint)
        return summary


def _evaluate_vllm(cfg: RunConfig, source: str, adapter: str | Path | None, out: Path, *, meta: dict[str, Any],
                   progress: bool) -> dict[str, Any]:
    """The same evaluation with vLLM generating (GPU machines with vllm installed); only the
    tokenizer is loaded here, to render prompts for the cache key."""
    from .eval.backends import get_generator
    from .eval.evaluate import evaluate_benchmarks, make_generator
    from .eval.fingerprint import model_fingerprint
    from .models import convert_gguf, load_tokenizer, resolve_source

    kind, path = resolve_source(source)
    if kind == "gguf":  # vLLM reads the converted safetensors checkpoint
        path = str(convert_gguf(Path(path)))
    name, generate_fn = get_generator("vllm", source=path, adapter=str(adapter) if adapter else None)
    stats = {"hits": 0, "misses": 0}
    gen = make_generator(None, load_tokenizer(path), cfg.eval, fingerprint=model_fingerprint(source, adapter),
                         stats=stats, progress=progress, generate_fn=generate_fn, backend=name, chunk=256)
    summary = evaluate_benchmarks(gen, cfg.eval, out, meta={**meta, "cache": stats})
    if cfg.eval.general:  # lm-eval scores through transformers on the same GPU
        from .eval.general import add_general

        model, tok = load_for_eval(source, adapter, cfg.model.dtype)
        summary = add_general(summary, model, tok, cfg.eval, out, model_fingerprint(source, adapter))
    return summary


# --------------------------------------------------------------------------- run / demo


def run(cfg: RunConfig, *, include_base: bool = False, resume: bool = False, progress: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """align -> evaluate aligned -> finetune (each compared method) -> evaluate -> report.

    When ``data.user`` is a list of tasks, a continual stream (``stream.run_stream``)."""
    # every name, path and method argument of every stage, before hours of work, not after
    todo = variants(cfg)
    preflight(cfg, align=True, finetune=True, evaluate=True, variants=todo)
    if isinstance(cfg.data.user, list):
        from .stream import run_stream

        with claim(Path(cfg.output_dir)):
            return run_stream(cfg, finetune=finetune, evaluate=evaluate, source=starting_model(cfg, progress=progress),
                              include_base=include_base, resume=resume, progress=progress)
    root = Path(cfg.output_dir)
    with claim(root):
        save_config(cfg, root / "config.yaml")
        return _run(cfg, root, todo, include_base=include_base, resume=resume, progress=progress)


def _run(cfg: RunConfig, root: Path, todo: list[RunConfig], *, include_base: bool, resume: bool,
         progress: bool) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []

    def add(label: str, **kwargs: Any) -> None:
        rows.append((label, evaluate(label=label, progress=progress, checked=True, **kwargs)))
        (root / "results.json").write_text(json.dumps([{**s, "label": lab} for lab, s in rows], indent=2))

    if include_base:
        add("base (unaligned)", cfg=cfg, output_dir=root / "eval_base")
    source = starting_model(cfg, progress=progress)
    if cfg.align.enabled:
        add("aligned", cfg=cfg, model_source=source, output_dir=root / "eval_aligned")
    for v in todo:
        result = finetune(v, model_source=source, resume=resume, progress=progress, checked=True)
        label = f"aligned + {v.name if cfg.compare else '+'.join(v.train.methods)} (p={v.data.poison_ratio})"
        adapter = result.weights_dir if result.weights_dir.name == "adapter" else None
        model_src = source if adapter else str(result.weights_dir)
        add(label, cfg=v, model_source=model_src, adapter=adapter, output_dir=Path(v.output_dir) / "eval_finetuned")
    from .report import write_report

    write_report(rows, root, title=cfg.name)
    return rows


def report(sources: Any, output_dir: str | Path, *, judge: str | None = None,
           title: str | None = None) -> tuple[dict[str, Path], list[tuple[str, dict[str, Any]]]]:
    """Write ``report.md``, ``results.json`` and the plot into ``output_dir``; return what was
    written and the ``(label, summary)`` rows. ``sources``: paths (evaluation or run directories,
    summary.json files; see ``report.collect``) or ``(label, summary)`` rows already in hand."""
    from .report import collect, write_report

    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    rows = items if items and all(isinstance(i, tuple) for i in items) else collect(items)
    return write_report(rows, output_dir, judge=judge, title=title), rows


# --------------------------------------------------------------------------- check and list


def check_data(source: str, *, spec: str | None = None, format: str | None = None) -> tuple[list[str], dict[str, Any] | None]:
    """Every problem with a data source, and (when there is none) its summary counts."""
    from .data import check_file, load_records, summarize

    problems = check_file(source, format=format, spec=spec)
    return problems, None if problems else summarize(load_records(source, format=format, spec=spec))


def list_methods() -> list[dict[str, Any]]:
    from .methods import METHODS

    return [{"name": n, "summary": METHODS.describe(n), "needs_safety_data": METHODS.get(n).needs_safety_data}
            for n in METHODS.names()]


def list_judges() -> list[dict[str, Any]]:
    from .eval.judges import JUDGES

    return [{"name": n, "measures": sorted(JUDGES.get(n).measures), "summary": JUDGES.describe(n)} for n in JUDGES.names()]


def list_benchmarks() -> list[dict[str, Any]]:
    from .eval.benchmarks import BENCHMARKS

    return [{"name": n, "kind": (b := BENCHMARKS.get(n)).kind, "metric": b.metric, "local": b.local, "hub": b.hub,
             "description": b.description} for n in BENCHMARKS.names()]


def demo_config_path() -> Path:
    """The shipped demo config (embedded model, starter data)."""
    from importlib import resources

    return Path(str(resources.files("unforgotten") / "configs" / "demo.yaml"))
