"""What a job request means: its checks at creation (fail fast, with the field named) and the
run config a worker trains it with. The API and the workers share this one reading."""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import UserInputError
from .errors import APIError, bad_request
from .schemas import Hyperparameters, JobCreate
from .settings import ServiceConfig


def resolve_hyperparameters(body: JobCreate, template: RunConfig) -> dict[str, Any]:
    """OpenAI's three knobs with 'auto' replaced by the provider's defaults."""
    from_method = body.method.supervised.hyperparameters if body.method and body.method.supervised else None
    if from_method and body.hyperparameters and from_method != body.hyperparameters:
        raise bad_request("Give hyperparameters in method.supervised.hyperparameters or the deprecated top-level "
                          "hyperparameters, not both.", param="hyperparameters")
    hp = from_method or body.hyperparameters or Hyperparameters()
    for key, low, high in (("batch_size", 1, 256), ("n_epochs", 1, 50), ("learning_rate_multiplier", 1e-3, 100.0)):
        value = getattr(hp, key)
        if value not in (None, "auto") and not low <= value <= high:
            raise bad_request(f"hyperparameters.{key} must be between {low} and {high}, got {value}",
                              param=f"hyperparameters.{key}", code="invalid_hyperparameters")
    out = {
        "batch_size": template.train.batch_size if hp.batch_size in (None, "auto") else hp.batch_size,
        "learning_rate_multiplier": 1.0 if hp.learning_rate_multiplier in (None, "auto") else hp.learning_rate_multiplier,
        "n_epochs": template.train.epochs if hp.n_epochs in (None, "auto") else hp.n_epochs,
    }
    return out


def resolve_safety(body: JobCreate, settings: ServiceConfig, template: RunConfig) -> dict[str, Any]:
    """The safety-preserving method: the job's ``safety`` extension, else the provider's default."""
    from ..methods import build_methods

    method = (body.safety.method if body.safety else None) or settings.safety.method
    args = dict(body.safety.args) if body.safety and body.safety.method else dict(settings.safety.args)
    names = [n.strip() for n in method.split("+")]
    if settings.safety.allowed and any(n not in settings.safety.allowed for n in names):
        raise bad_request(f"safety.method {method!r} is not offered; choose from {', '.join(settings.safety.allowed)}",
                          param="safety.method", code="unsupported_safety_method")
    # one method: args may be given flat ({"alpha": 0.5}); a composition names them per method
    per_method = {names[0]: args} if len(names) == 1 and args and not set(args) <= set(names) else args
    per_method = {k: v for k, v in per_method.items() if v}
    try:
        built = build_methods(names, per_method)
    except UserInputError as e:
        raise bad_request(f"safety: {e}", param="safety", code="invalid_safety_method") from None
    if any(m.uses_safety_data() for m in built) and not template.data.safety:
        raise bad_request(f"safety.method {method!r} needs the provider's safety data, which this service has not "
                          "configured", param="safety.method", code="unsupported_safety_method")
    return {"method": method, "args": per_method}


def check_create(body: JobCreate, settings: ServiceConfig, template: RunConfig) -> tuple[dict, dict, dict]:
    """(method object, resolved hyperparameters, safety) for a job request, or an APIError."""
    if body.model not in settings.models:
        raise APIError(400, f"Model {body.model!r} is not available for fine-tuning; available: "
                       f"{', '.join(settings.models)}", param="model", code="model_not_available")
    if body.method is not None and body.method.type != "supervised":
        raise bad_request(f"method.type {body.method.type!r} is not supported yet; use 'supervised'",
                          param="method.type", code="unsupported_method")
    if body.integrations:
        raise bad_request("integrations are not supported", param="integrations", code="unsupported_integration")
    hp = resolve_hyperparameters(body, template)
    safety = resolve_safety(body, settings, template)
    method = {"type": "supervised", "supervised": {"hyperparameters": hp}}
    return method, hp, safety


def new_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def run_config(settings: ServiceConfig, template: RunConfig, job, data_path: Path, out_dir: Path, n_records: int) -> RunConfig:
    """The RunConfig a worker fine-tunes ``job`` with: the provider's template, the customer's
    data and hyperparameters, the job's safety method, capped at ``settings.max_steps``."""
    hp, safety = job.hyperparameters, job.safety
    names = [n.strip() for n in safety["method"].split("+")]
    # the provider's tuned arguments for the chosen methods (its run config), overridden by the job's
    job_args = safety.get("args") or {}
    method_args = {m: {**template.train.method_args.get(m, {}), **job_args.get(m, {})} for m in names}
    train = dataclasses.replace(
        template.train, methods=names, method_args={m: a for m, a in method_args.items() if a}, seed=job.seed,
        batch_size=int(hp["batch_size"]), epochs=float(hp["n_epochs"]),
        lr=template.train.lr * float(hp["learning_rate_multiplier"]),
        log_every=1,  # one event and one log line per step (trained_tokens adds them up)
    )
    if settings.max_steps:
        steps = train.max_steps or math.ceil(train.epochs * math.ceil(n_records / train.batch_size) / train.grad_accum)
        train = dataclasses.replace(train, max_steps=min(steps, settings.max_steps))
    data = dataclasses.replace(template.data, user=str(data_path), user_spec=None, n=None, poison_ratio=0.0, seed=job.seed)
    return dataclasses.replace(template, name=job.id, output_dir=str(out_dir), data=data, train=train, compare=[])
