"""Fingerprints: a short string that changes whenever the weights that will generate change.

The generation cache (``eval.cache``) keys every stored response on one of these, so a cached
answer is reused only for the model that produced it.

* :func:`model_fingerprint` for a model given by its *source* (what ``models.resolve_source``
  accepts: ``"embedded"``, a ``.gguf`` file, a local Hugging Face directory, a hub id) plus an
  optional peft adapter directory.
* :func:`tensor_fingerprint` for a model that exists only in memory (no source to point at).

What is hashed, per kind of source:

* **local directory** (a model or an adapter): the *content* of its weight files
  (``*.safetensors``, ``*.bin`` other than training state, ``*.gguf``) and of the files that change
  what is generated (``config.json``, ``generation_config.json``, tokenizer files, the chat
  template, ``adapter_config.json``), top level only. Checkpoint subfolders, logs, optimizer state
  and READMEs are left out: they do not change the outputs.
* **GGUF file** (``"embedded"`` resolves to one): the GGUF's content plus a conversion tag. The
  model that generates is the safetensors conversion ``models.convert_gguf`` makes from it, which is
  a deterministic function of the GGUF; bump ``GGUF_CONVERSION`` if that conversion ever changes.
* **hub id**: the commit hash the local Hugging Face cache resolves the id to (no network), so a
  repository updated upstream and re-downloaded gets a new fingerprint. When the id is not in the
  local cache (``load_model`` not yet run), the fingerprint is the id alone with ``@unresolved``:
  the cache then *trusts the id* to name fixed weights. Compute fingerprints after loading the
  model and this case does not arise.

Library versions (torch, transformers) are not part of any fingerprint: a cached greedy answer
is reused across upgrades. Clear ``cache_dir()/generations`` after an upgrade you do not trust.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

from ..paths import cache_dir

#: Part of every GGUF fingerprint; bump when ``models.convert_gguf`` changes what it produces.
GGUF_CONVERSION = "convert_gguf-v1"

# Files whose content changes the generated text. Top level of the directory only.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.pt", "*.pth")
META_FILES = (
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
# Training state saved next to weights by some trainers: not weights, never affects generation.
EXCLUDE_PATTERNS = ("training_args.bin", "optimizer*", "scheduler*", "rng_state*", "trainer_state*")

_MEMO_LOCK = threading.Lock()


# --------------------------------------------------------------------------- file hashing + memo


def _memo_path() -> Path:
    return cache_dir() / "fingerprints" / "files.json"


def _load_memo() -> dict[str, Any]:
    try:
        data = json.loads(_memo_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged memo: it is only a speed-up, start again


_MEMO_WARNED = False


def _save_memo(memo: dict[str, Any]) -> None:
    """Only a speed-up: when the cache cannot be written (read-only, full), warn once and go on."""
    global _MEMO_WARNED
    tmp = None
    try:
        path = _memo_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(memo, sort_keys=True))
        os.replace(tmp, path)  # atomic: a reader sees the old memo or the new one, never half of one
    except OSError as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not _MEMO_WARNED:
            _MEMO_WARNED = True
            warnings.warn(f"fingerprint memo not saved ({e}); files are hashed in full each time", stacklevel=2)


def _sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # streams; Python >= 3.11


# sha256 of a file's content, not memoized (data files, judge weights); file_sha256 is the
# memoized one for model weights. The memoized paths call _sha256_file (tests count those calls).
sha256_file = _sha256_file


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's content, memoized by (absolute path, size, mtime_ns).

    Trade-off: hashing SmolLM2's 540 MB fp32 safetensors takes about a second, a 7B model's
    shards tens of seconds, on every evaluation. The memo makes the repeat cost one ``stat``
    per file. The price is the assumption that a file whose size *and* nanosecond mtime are
    both unchanged has unchanged content. Anything that rewrites a file (``save_pretrained``,
    ``cp``, a download) sets a new mtime, so this only fails if a tool rewrites a file with
    identical size and then deliberately restores the old mtime (``cp -p`` or ``rsync -t``
    *onto* an existing same-size file, ``touch -d``). ``model_fingerprint(..., memo=False)``
    hashes everything afresh for that case.

    The memo is a small JSON file under ``cache_dir()/fingerprints``; concurrent writers may
    drop each other's entries (last rename wins), which costs a re-hash, never a wrong hash.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = str(p)
    with _MEMO_LOCK:
        entry = _load_memo().get(key)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            return entry["sha256"]
    digest = _sha256_file(p)
    with _MEMO_LOCK:
        memo = _load_memo()
        memo[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        # forget files that no longer exist, so the memo does not grow without bound
        memo = {k: v for k, v in memo.items() if os.path.exists(k)}
        _save_memo(memo)
    return digest


def _relevant_files(directory: Path) -> list[Path]:
    out = []
    for f in sorted(directory.iterdir()):
        if not f.is_file():
            continue
        name = f.name
        if any(fnmatch.fnmatch(name, pat) for pat in EXCLUDE_PATTERNS):
            continue
        if name in META_FILES or any(fnmatch.fnmatch(name, pat) for pat in WEIGHT_PATTERNS):
            out.append(f)
    return out


def directory_fingerprint(directory: str | os.PathLike, *, memo: bool = True) -> str:
    """sha256 over (file name, content sha256) of the directory's generation-relevant files."""
    d = Path(directory)
    files = _relevant_files(d)
    if not files:
        raise FileNotFoundError(f"{d} holds no weight or config files to fingerprint")
    h = hashlib.sha256()
    for f in files:
        digest = file_sha256(f) if memo else _sha256_file(f)
        h.update(f"{f.name}\0{digest}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- sources


def _hub_commit(repo_id: str) -> str | None:
    """The commit the local HF cache holds for ``repo_id`` (its ``main`` ref), offline; else None."""
    try:
        from huggingface_hub import snapshot_download

        snapshot = snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached, or huggingface_hub missing/offline-incompatible: trust the id
        return None
    return Path(snapshot).name  # .../models--org--name/snapshots/<commit>


def source_fingerprint(source: str | os.PathLike | None, *, memo: bool = True) -> str:
    """Fingerprint of a model source alone (no adapter); see the module docstring per kind."""
    from ..models import resolve_source

    kind, loc = resolve_source(source)
    if kind == "gguf":
        digest = file_sha256(loc) if memo else _sha256_file(Path(loc))
        return f"gguf:{digest}:{GGUF_CONVERSION}"
    if kind == "hf_dir":
        return f"dir:{directory_fingerprint(loc, memo=memo)}"
    commit = _hub_commit(loc)
    return f"hub:{loc}@{commit or 'unresolved'}"


def model_fingerprint(source: str | os.PathLike | None, adapter: str | os.PathLike | None = None, *, memo: bool = True) -> str:
    """A sha256 hex string naming the weights ``load_for_eval(source, adapter)`` would generate with.

    ``adapter`` is a peft adapter directory, hashed like a model directory. ``memo=False`` skips
    the per-file memo and re-reads every byte (see :func:`file_sha256` for the trade-off).
    """
    parts = {"source": source_fingerprint(source, memo=memo)}
    if adapter is not None:
        parts["adapter"] = directory_fingerprint(adapter, memo=memo)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def tensor_fingerprint(model: Any, skip: Callable[[str], bool] | None = None) -> str:
    """sha256 over every tensor of ``model.state_dict()`` (name, dtype, shape, raw bytes).

    For a model with no source on disk (built or modified in memory). Cost: every byte of the
    weights is copied to the CPU and hashed, about 1 s per GB (0.5 s for SmolLM2-135M in fp32,
    around 15-30 s for a 7B model in bf16 plus the device-to-host copy). Fine for small models;
    for large ones prefer :func:`model_fingerprint` on the saved directory, which is memoized.
    PEFT models include their adapter weights in ``state_dict``, so adapters are covered;
    ``skip(name)`` leaves tensors out (GR-SAP's synthesis runs with the adapter off, so it skips
    ``lora_`` weights).
    """
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if skip is not None and skip(name):
            continue
        t = t.detach()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        flat = t.to("cpu").contiguous().reshape(-1)
        if flat.numel():
            h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
