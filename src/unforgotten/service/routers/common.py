"""What every router needs: the request's tenant, the shared state, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fastapi import Query, Request

from ...config import RunConfig
from ..auth import tenant_of
from ..blobs import Blobs
from ..errors import bad_request, not_found
from ..schemas import list_object
from ..settings import ServiceConfig
from ..store import Store


@dataclass
class State:
    settings: ServiceConfig
    store: Store
    blobs: Blobs
    template: RunConfig


def state(request: Request) -> State:
    return request.app.state.svc


def tenant(request: Request) -> str:
    return tenant_of(request)


LimitQ = Query(20, ge=1, le=100)


def paginate(store: Store, cls, where: list, after: str | None, limit: int, render: Callable[[Any], dict],
             newest_first: bool = True) -> dict[str, Any]:
    page = store.page(cls, where=where, after=after, limit=limit, newest_first=newest_first)
    if page is None:
        raise bad_request(f"after: no object {after!r} in this list", param="after", code="invalid_cursor")
    rows, has_more = page
    return list_object([render(r) for r in rows], has_more)


def owned(st: State, cls, who: str, object_id: str, kind: str, param: str):
    """The tenant's row ``object_id`` of ``cls``; another tenant's is the same 404 as a missing one."""
    row = st.store.get(cls, who, object_id)
    if row is None:
        raise not_found(kind, object_id, param=param)
    return row
