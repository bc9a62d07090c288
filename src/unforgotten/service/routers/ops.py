"""/healthz and Prometheus-style /metrics (no key needed; they reveal no tenant's objects)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from ..errors import APIError
from ..store import QUEUED, VALIDATING
from .common import State, state

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz(st: State = Depends(state)):
    try:
        with st.store.engine.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - report, don't crash
        raise APIError(503, f"store unavailable: {type(e).__name__}", code="store_unavailable") from None
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(st: State = Depends(state)):
    c = st.store.counts()
    by = c["by_status"]
    lines = [
        "# HELP unforgotten_queue_depth Jobs waiting for a worker (validating_files + queued).",
        "# TYPE unforgotten_queue_depth gauge",
        f"unforgotten_queue_depth {by.get(VALIDATING, 0) + by.get(QUEUED, 0)}",
        "# HELP unforgotten_jobs Jobs by status.",
        "# TYPE unforgotten_jobs gauge",
        *(f'unforgotten_jobs{{status="{s}"}} {n}' for s, n in sorted(by.items())),
        "# HELP unforgotten_train_steps_total Optimizer steps reported by workers.",
        "# TYPE unforgotten_train_steps_total counter",
        f"unforgotten_train_steps_total {c['steps_total']}",
        "# HELP unforgotten_train_steps_per_second Optimizer steps per second over the last minute.",
        "# TYPE unforgotten_train_steps_per_second gauge",
        f"unforgotten_train_steps_per_second {c['steps_last_minute'] / 60:.4f}",
    ]
    return "\n".join(lines) + "\n"
