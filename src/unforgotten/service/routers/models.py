"""/v1/models: the base models this provider fine-tunes plus the tenant's fine-tuned ones, and
the adapter of a fine-tuned model as a zip (peft layout: load it with ``PeftModel.from_pretrained``)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from ..schemas import list_object, model_object, model_row_object
from ..store import ModelRow
from .common import State, owned, state, tenant

router = APIRouter(prefix="/v1/models", tags=["models"])
OWNER = "unforgotten"


def job_dir(st: State, job_id: str) -> Path:
    return Path(st.settings.data_dir) / "jobs" / job_id


@router.get("")
def list_models(st: State = Depends(state), who: str = Depends(tenant)):
    base = [model_object(m, 0, OWNER) for m in st.settings.models]
    rows, _ = st.store.page(ModelRow, where=[ModelRow.tenant == who, ModelRow.deleted.is_(False)], after=None,
                            limit=10_000, newest_first=False)
    return list_object(base + [model_row_object(r) for r in rows], False)


def _model(st: State, who: str, model: str) -> ModelRow:
    return owned(st, ModelRow, who, model, "model", "model")


@router.get("/{model}")
def get_model(model: str, st: State = Depends(state), who: str = Depends(tenant)):
    if model in st.settings.models:
        return model_object(model, 0, OWNER)
    return model_row_object(_model(st, who, model))


@router.delete("/{model}")
def delete_model(model: str, st: State = Depends(state), who: str = Depends(tenant)):
    row = _model(st, who, model)
    st.store.mark_model_deleted(row.id)
    return {"id": model, "object": "model", "deleted": True}


@router.get("/{model}/adapter")
def download_adapter(model: str, st: State = Depends(state), who: str = Depends(tenant)):
    row = _model(st, who, model)
    weights = job_dir(st, row.job_id) / "finetune" / "adapter"
    if not weights.is_dir():
        weights = weights.with_name("model")  # a full fine-tune
    archive = job_dir(st, row.job_id) / "adapter.zip"
    if not archive.is_file():  # built once, atomically
        tmp = archive.with_name(f".adapter.{os.getpid()}.zip")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(weights.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(weights))
        os.replace(tmp, archive)
    safe = model.replace(":", "_").replace("/", "_")
    return FileResponse(archive, media_type="application/zip", filename=f"{safe}.zip")
