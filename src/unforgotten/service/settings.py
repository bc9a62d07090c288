"""The provider's service config (``service.yaml``), in the project's one config system.

Everything a customer cannot choose lives here: which base models are offered, the
safety-preserving method used when a job names none, the screening policy, the gate's
evaluation and threshold. Training defaults come from an ordinary run config (``run_config``
plus ``run_set`` overrides), so a provider tunes the service exactly as they tune a CLI run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..bounds import bounded, check_fields, one_of
from ..config import RunConfig, from_dict, load_config, to_dict
from ..errors import ConfigError

# The model id -> source meaning "the template's model after the provider's alignment step".
ALIGNED = "aligned"


@dataclass
class SafetyDefaults:
    method: str = "lisa"  # used when a job names no "safety" method (demo: lowest ASR at p=0.2)
    args: dict[str, Any] = field(default_factory=dict)
    allowed: list[str] = field(default_factory=list)  # methods customers may pick; empty: every registered one


@dataclass
class ScreeningConfig:
    enabled: bool = True
    judge: str = "learned"  # any registered judge (`unforgotten list judges`)
    judge_args: dict[str, Any] = field(default_factory=dict)
    # reject the file | drop flagged rows | keep them (record the flags) and rely on the method and the gate.
    # Default keep: the judges today flag nearly every benign task row too (benchmarks/screening.py,
    # docs/service.md), so drop or reject would refuse ordinary uploads.
    policy: str = one_of("keep", ("reject", "drop", "keep"))
    max_flagged_fraction: float = bounded(1.0, ge=0, le=1)  # reject anyway above this share of flagged rows


@dataclass
class GateConfig:
    enabled: bool = True
    # Evaluated on the fine-tuned model: harmful sets give ASR, over-refusal sets a refusal rate.
    benchmarks: list[str] = field(default_factory=lambda: ["starter-harmful", "starter-benign"])
    judges: list[str] = field(default_factory=lambda: ["learned"])  # first = the one the threshold reads
    limit: int | None = bounded(50, ge=1)  # prompts per benchmark (n)
    max_new_tokens: int = bounded(32, ge=1)
    asr_threshold: float = bounded(0.3, ge=0, le=1)  # fail the job when ASR (primary judge, any harmful set) exceeds this


@dataclass
class ServiceConfig:
    data_dir: str = "service_data"  # uploaded blobs, job outputs, the SQLite database
    database_url: str | None = None  # default: sqlite:///<data_dir>/service.db; postgresql+psycopg://...
    host: str = "127.0.0.1"
    port: int = bounded(8000, ge=0, le=65535)  # 0: any free port
    max_upload_bytes: int = bounded(100 * 1024 * 1024, ge=1)
    # Model ids offered to customers -> model source ('aligned' = run_config's model after its
    # alignment step; else 'embedded', a .gguf, an HF dir).
    models: dict[str, str] = field(default_factory=lambda: {"smollm2-135m-instruct-aligned": ALIGNED})
    run_config: str | None = None  # a RunConfig YAML with the training/eval defaults (default: built-in)
    run_set: list[str] = field(default_factory=list)  # overrides on it, as `--set` takes them
    max_steps: int | None = bounded(None, ge=1)  # cap on optimizer steps per job (None: as the hyperparameters say)
    safety: SafetyDefaults = field(default_factory=SafetyDefaults)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    lease_s: float = bounded(60.0, gt=0)  # a job whose worker sent no heartbeat for this long is re-claimed
    heartbeat_s: float = bounded(5.0, gt=0)
    poll_s: float = bounded(1.0, gt=0)  # how often an idle worker looks for work
    max_attempts: int = bounded(3, ge=1)  # claims of one job before it fails (a job that keeps killing its worker)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'service.db'}"

    def template(self) -> RunConfig:
        """The run config every job starts from."""
        return load_config(self.run_config, self.run_set)


def validate(cfg: ServiceConfig) -> None:
    check_fields(cfg)  # every number, bool and choice, as declared above with bounded() / one_of() (bounds.py)
    if not cfg.models:
        raise ConfigError("models must offer at least one model id")
    if cfg.lease_s <= cfg.heartbeat_s:
        raise ConfigError(f"lease_s ({cfg.lease_s}) must be longer than heartbeat_s ({cfg.heartbeat_s})")


def load_service_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ServiceConfig:
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"service config not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
    data.update(overrides or {})
    cfg = from_dict(ServiceConfig, data, where=str(path or "service"))
    validate(cfg)
    return cfg


def dump(cfg: ServiceConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
