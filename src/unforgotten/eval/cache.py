"""A per-prompt, crash-safe cache of generated responses.

Evaluations re-generate the same responses over and over: the same aligned model on the same
harmful prompts for every method compared, a rerun after a judge change, a run that crashed at
prompt 700 of 800. Generation is the slow part, so :func:`cached_generate` stores each response
under a key that names everything the response depends on:

    sha256( cache version, model fingerprint, backend, decoding settings, rendered prompt text )

* **model fingerprint** (``eval.fingerprint``): the content of the weights (+ adapter), not the
  path, so a re-trained model at the same path misses, and the same model copied elsewhere hits.
* **backend** ("hf", "vllm"): two engines can decode the same greedy prompt differently in the
  last bits, so their answers are kept apart.
* **decoding settings**: ``max_new_tokens`` and ``do_sample``; when sampling also
  ``temperature``, ``top_p``, ``seed`` and ``batch_size`` (HF sampling draws one random stream
  for a whole batch, so a sampled response depends on its batch-mates). Greedy decoding ignores
  temperature/top_p/seed and, with left padding, does not depend on the batch (``generate``'s
  tests check batched == alone), so those are left out of the key and greedy answers are shared
  across batch sizes.
* **the prompt as the model sees it**: the chat messages rendered with the tokenizer's chat
  template, so a changed template or system prompt misses.

Storage: ``<root>/<shard>.jsonl``, one shard per (model, backend, settings), one JSON line per
prompt, plus ``<shard>.meta.json`` saying what the shard holds. Misses are generated in chunks
(default four batches); each finished chunk is appended in one write and fsynced, so a crash
loses at most the chunk in progress, and a rerun generates only what is missing. A prompt set
that overlaps an earlier one generates only the new prompts. A damaged line (typically a
truncated last line after a kill) is skipped with a warning and its prompt regenerated.

Sampled responses: with the cache, misses are generated in chunks of the missing prompts, so a
sampled response is a properly seeded sample that repeats exactly on a rerun of the same call,
but it is not bit-identical to a single uncached ``generate`` call over a different prompt set
(the batch-mates differ). Greedy responses are identical either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..paths import cache_dir

#: Bump when the way responses are produced or post-processed changes (e.g. stripping), so old
#: entries stop matching.
CACHE_VERSION = 1

#: Decoding keys ``generate`` understands; they are passed to the generator.
GEN_KEYS = ("max_new_tokens", "batch_size", "do_sample", "temperature", "top_p", "seed")
_DEFAULTS = {"max_new_tokens": 64, "batch_size": 8, "do_sample": False, "temperature": 1.0, "top_p": 1.0, "seed": 0}

Messages = list[dict[str, str]]


def key_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The part of the decoding settings that can change a response (what the key hashes).

    Greedy: ``max_new_tokens``, ``do_sample``. Sampling adds ``temperature``, ``top_p``, ``seed``
    and ``batch_size``. Keys other than the known ones are kept as given (a generator with extra
    options must have them in the key).
    """
    s = {**_DEFAULTS, **settings}
    out: dict[str, Any] = {"max_new_tokens": int(s["max_new_tokens"]), "do_sample": bool(s["do_sample"])}
    if out["do_sample"]:
        out.update(temperature=float(s["temperature"]), top_p=float(s["top_p"]), seed=int(s["seed"]),
                   batch_size=int(s["batch_size"]))
    for k, v in settings.items():
        if k not in GEN_KEYS and k != "progress":
            out[k] = v
    return out


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class GenerationCache:
    """Cached responses under ``root`` (default ``cache_dir()/"generations"``)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "generations"
        self.root.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- keys

    @staticmethod
    def shard_id(fingerprint: str, backend: str, settings: dict[str, Any]) -> str:
        return _sha({"v": CACHE_VERSION, "model": fingerprint, "backend": backend, "settings": key_settings(settings)})[:32]

    @staticmethod
    def prompt_key(shard: str, prompt_text: str) -> str:
        """The full key of one response: its shard (model, backend, settings) and its prompt."""
        return hashlib.sha256(f"{shard}\0{prompt_text}".encode()).hexdigest()

    def shard_path(self, shard: str) -> Path:
        return self.root / f"{shard}.jsonl"

    # ---------------------------------------------------------------- read / write

    def load(self, shard: str) -> dict[str, str]:
        """All responses of a shard, ``{prompt_key: response}``; damaged lines are skipped."""
        path = self.shard_path(shard)
        out: dict[str, str] = {}
        if not path.is_file():
            return out
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    key, response = row["key"], row["response"]
                    if not isinstance(key, str) or not isinstance(response, str):
                        raise TypeError("key/response not strings")
                except (ValueError, KeyError, TypeError) as e:
                    warnings.warn(f"generation cache {path}: skipping damaged line {n} ({e.__class__.__name__}); "
                                  "its prompt will be regenerated", RuntimeWarning, stacklevel=2)
                    continue
                out[key] = response
        return out

    def append(self, shard: str, rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> None:
        """Append ``rows`` (each with ``key`` and ``response``) in one write, then fsync."""
        if not rows:
            return
        path = self.shard_path(shard)
        if meta is not None:
            meta_path = path.with_suffix(".meta.json")
            if not meta_path.is_file():
                tmp = meta_path.with_name(f"{meta_path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
                os.replace(tmp, meta_path)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        # A crash mid-write leaves a last line without its newline; start on a fresh line so the
        # damage stays confined to that one line instead of swallowing our first row too.
        if path.is_file() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    data = b"\n" + data
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        for p in self.root.glob("*.jsonl"):
            p.unlink()
        for p in self.root.glob("*.meta.json"):
            p.unlink()


# --------------------------------------------------------------------------- cached_generate


def _outer_progress(enabled: bool, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ..progress import progress_bar  # plain lines when stderr is not a terminal

    return progress_bar(TextColumn("generating (cached)"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        disable=not enabled, transient=True)


def cached_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    *,
    fingerprint: str,
    settings: dict[str, Any],
    cache: GenerationCache | None,
    generate_fn: Callable[..., list[str]] | None = None,
    backend: str = "hf",
    progress: bool = True,
    chunk: int | None = None,
) -> tuple[list[str], dict[str, int]]:
    """``generate`` with a per-prompt cache; returns ``(responses, {"hits": h, "misses": m})``.

    ``prompts`` are chat-message lists (as for ``eval.generate.generate``), rendered with the
    tokenizer's chat template for the key. ``fingerprint`` names the model (see
    ``eval.fingerprint.model_fingerprint`` / ``tensor_fingerprint``). ``settings`` holds the
    decoding arguments (``max_new_tokens``, ``batch_size``, ``do_sample``, ``temperature``,
    ``top_p``, ``seed``); all are passed on to ``generate_fn(model, tokenizer, prompts, **settings,
    progress=False)``, which defaults to ``eval.generate.generate``; only those that can change a
    response go into the key (:func:`key_settings`). ``backend`` names the engine for the key.

    Misses are generated ``chunk`` prompts at a time (default four batches) and each chunk is
    persisted before the next starts. ``cache=None`` disables caching: one plain call.
    ``hits``/``misses`` count prompts (positions in ``prompts``); a prompt repeated within one
    call is generated once.
    """
    from .generate import generate, render_prompt

    gen = generate_fn or generate
    gen_kwargs = {k: v for k, v in settings.items() if k != "progress"}
    prompts = [list(p) for p in prompts]
    if cache is None:
        responses = gen(model, tokenizer, prompts, **gen_kwargs, progress=progress) if prompts else []
        return list(responses), {"hits": 0, "misses": len(prompts)}

    shard = GenerationCache.shard_id(fingerprint, backend, settings)
    texts = [render_prompt(tokenizer, p) for p in prompts]
    keys = [GenerationCache.prompt_key(shard, t) for t in texts]
    stored = cache.load(shard) if prompts else {}
    responses: list[str | None] = [stored.get(k) for k in keys]
    hits = sum(r is not None for r in responses)

    todo: dict[str, int] = {}  # key -> first position needing it (dedupes repeats)
    for i, (k, r) in enumerate(zip(keys, responses)):
        if r is None and k not in todo:
            todo[k] = i
    missing = list(todo.values())
    if missing:
        bs = int(settings.get("batch_size", _DEFAULTS["batch_size"]))
        step = chunk or max(1, 4 * bs)
        meta = {"fingerprint": fingerprint, "backend": backend, "settings": key_settings(settings),
                "cache_version": CACHE_VERSION}
        with _outer_progress(progress, len(missing)) as bar:
            task = bar.add_task("generate", total=len(missing))
            for s in range(0, len(missing), step):
                idx = missing[s : s + step]
                out = gen(model, tokenizer, [prompts[i] for i in idx], **gen_kwargs, progress=False)
                if len(out) != len(idx):
                    raise RuntimeError(f"generator returned {len(out)} responses for {len(idx)} prompts")
                now = time.time()
                cache.append(shard, [{"key": keys[i], "response": r, "prompt": texts[i], "t": round(now, 3)}
                                     for i, r in zip(idx, out)], meta=meta)
                for i, r in zip(idx, out):
                    stored[keys[i]] = r
                bar.advance(task, len(idx))
        responses = [stored[k] for k in keys]
    return [r if r is not None else "" for r in responses], {"hits": hits, "misses": len(prompts) - hits}
