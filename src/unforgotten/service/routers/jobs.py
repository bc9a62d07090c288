"""/v1/fine_tuning/jobs: create (checked at once, so bad requests fail now, not in the queue),
list, get, events, checkpoints, cancel, pause, resume."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends

from ..errors import APIError, not_found
from ..jobspec import check_create, new_seed
from ..schemas import JobCreate, checkpoint_object, event_object, job_object
from ..store import VALIDATING, CheckpointRow, EventRow, FileRow, JobRow, new_id, now
from .common import LimitQ, State, owned, paginate, state, tenant

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])


def _training_file(st: State, who: str, file_id: str, param: str) -> FileRow:
    row = st.store.get(FileRow, who, file_id)
    if row is None:  # the same answer for another tenant's file as for none at all
        raise APIError(400, f"{param}: no such file: {file_id}", param=param, code="invalid_file")
    if row.purpose != "fine-tune":
        raise APIError(400, f"{param}: file {file_id} has purpose {row.purpose!r}, not 'fine-tune'", param=param,
                       code="invalid_file")
    return row


@router.post("")
def create_job(body: JobCreate, st: State = Depends(state), who: str = Depends(tenant)):
    _training_file(st, who, body.training_file, "training_file")
    if body.validation_file:
        _training_file(st, who, body.validation_file, "validation_file")
    method, hp, safety = check_create(body, st.settings, st.template)
    job = JobRow(
        id=new_id("ftjob"), tenant=who, status=VALIDATING, model=body.model, training_file=body.training_file,
        validation_file=body.validation_file, suffix=body.suffix or None,
        seed=body.seed if body.seed is not None else new_seed(), hyperparameters=hp, method=method, safety=safety,
        metadata_=body.metadata, created_at=now(), result_files=[], attempts=0, cancel_requested=False,
        pause_requested=False, step=0,
    )
    st.store.add_job(job, f"Created fine-tuning job {job.id} (safety method: {safety['method']})")
    return job_object(job)


@router.get("")
def list_jobs(limit: int = LimitQ, after: Optional[str] = None, st: State = Depends(state), who: str = Depends(tenant)):
    return paginate(st.store, JobRow, [JobRow.tenant == who], after, limit, job_object)


def _job(st: State, who: str, job_id: str) -> JobRow:
    return owned(st, JobRow, who, job_id, "fine-tuning job", "fine_tuning_job_id")


@router.get("/{job_id}")
def get_job(job_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    return job_object(_job(st, who, job_id))


@router.get("/{job_id}/events")
def list_events(job_id: str, limit: int = LimitQ, after: Optional[str] = None, st: State = Depends(state),
                who: str = Depends(tenant)):
    _job(st, who, job_id)
    return paginate(st.store, EventRow, [EventRow.job_id == job_id], after, limit, event_object)


@router.get("/{job_id}/checkpoints")
def list_checkpoints(job_id: str, limit: int = LimitQ, after: Optional[str] = None, st: State = Depends(state),
                     who: str = Depends(tenant)):
    job = _job(st, who, job_id)
    name = job.fine_tuned_model or f"ft:{job.model}:{job.tenant}:{job.suffix or ''}:{job.id}"
    return paginate(st.store, CheckpointRow, [CheckpointRow.job_id == job_id], after, limit,
                    lambda r: checkpoint_object(r, name))


def _request(st: State, who: str, job_id: str, **what: bool):
    row = st.store.request(who, job_id, **what)
    if row is None:
        raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
    return job_object(row)


@router.post("/{job_id}/cancel")
def cancel(job_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    return _request(st, who, job_id, cancel=True)


@router.post("/{job_id}/pause")
def pause(job_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    return _request(st, who, job_id, pause=True)


@router.post("/{job_id}/resume")
def resume(job_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    return _request(st, who, job_id, resume=True)
