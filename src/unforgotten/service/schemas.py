"""Request and response bodies with OpenAI's field names, object types and status values
(openai-python ``types/fine_tuning``, ``types/file_object.py``, ``types/model.py``).

One extension: ``safety`` on job creation (the openai client sends it through ``extra_body``)
names the safety-preserving method; it never overloads ``method.type``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from .store import CheckpointRow, EventRow, FileRow, JobRow, ModelRow

Auto = Literal["auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hyperparameters(_Strict):
    batch_size: Union[Auto, int, None] = Field(None, description="examples per optimizer step")
    learning_rate_multiplier: Union[Auto, float, None] = None
    n_epochs: Union[Auto, int, None] = None


class SupervisedMethod(_Strict):
    hyperparameters: Optional[Hyperparameters] = None


class Method(_Strict):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: Optional[SupervisedMethod] = None
    dpo: Optional[dict[str, Any]] = None
    reinforcement: Optional[dict[str, Any]] = None


class Safety(_Strict):
    method: Optional[str] = Field(None, description="a registered method or a '+'-composition; default: the provider's")
    args: dict[str, Any] = Field(default_factory=dict)


class JobCreate(_Strict):
    model: str
    training_file: str
    validation_file: Optional[str] = None
    suffix: Optional[str] = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]*$")
    seed: Optional[int] = Field(None, ge=0, le=2**31 - 1)
    metadata: Optional[dict[str, str]] = Field(None, max_length=16)
    method: Optional[Method] = None
    hyperparameters: Optional[Hyperparameters] = None  # deprecated by OpenAI, still accepted
    integrations: Optional[list[dict[str, Any]]] = None
    safety: Optional[Safety] = None


# --------------------------------------------------------------------------- responses


def file_object(row: FileRow) -> dict[str, Any]:
    return {"id": row.id, "object": "file", "bytes": row.bytes, "created_at": row.created_at, "filename": row.filename,
            "purpose": row.purpose, "status": row.status, "status_details": row.status_details, "expires_at": None}


def job_object(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id, "object": "fine_tuning.job", "created_at": row.created_at, "error": row.error,
        "fine_tuned_model": row.fine_tuned_model, "finished_at": row.finished_at,
        "hyperparameters": row.hyperparameters, "model": row.model, "organization_id": row.tenant,
        "result_files": list(row.result_files or []), "seed": row.seed, "status": row.status,
        "trained_tokens": row.trained_tokens, "training_file": row.training_file,
        "validation_file": row.validation_file, "estimated_finish": row.estimated_finish,
        "integrations": [], "metadata": row.metadata_, "method": row.method,
        "user_provided_suffix": row.suffix, "safety": row.safety, "screening": row.screening,
    }


def event_object(row: EventRow) -> dict[str, Any]:
    return {"id": row.id, "object": "fine_tuning.job.event", "created_at": row.created_at, "level": row.level,
            "message": row.message, "data": row.data, "type": row.type}


def checkpoint_object(row: CheckpointRow, fine_tuned_model: str) -> dict[str, Any]:
    return {"id": row.id, "object": "fine_tuning.job.checkpoint", "created_at": row.created_at,
            "fine_tuned_model_checkpoint": f"{fine_tuned_model}:ckpt-step-{row.step_number}",
            "fine_tuning_job_id": row.job_id, "metrics": row.metrics, "step_number": row.step_number}


def model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def model_row_object(row: ModelRow) -> dict[str, Any]:
    return model_object(row.id, row.created_at, row.tenant)
