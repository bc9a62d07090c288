"""The FastAPI app: one router per resource (files, fine-tuning jobs, models) plus health and
metrics; nothing else. ``create_app`` opens the store (migrating it) and the blob directory."""

from __future__ import annotations

from fastapi import FastAPI

from . import errors
from .blobs import Blobs
from .routers import files, jobs, models, ops
from .routers.common import State
from .settings import ServiceConfig
from .store import Store


def create_app(settings: ServiceConfig, store: Store | None = None) -> FastAPI:
    store = store or Store(settings.db_url)
    blobs = Blobs(settings.data_dir)
    blobs.sweep()
    app = FastAPI(title="unforgotten fine-tuning service", version="1",
                  description="OpenAI-compatible fine-tuning jobs with upload screening and a safety gate.")
    app.state.svc = State(settings=settings, store=store, blobs=blobs, template=settings.template())
    app.state.store = store
    errors.install(app)
    for r in (files.router, jobs.router, models.router, ops.router):
        app.include_router(r)
    app.add_middleware(files.RefuseOversizedUploads, limit=settings.max_upload_bytes)
    return app
