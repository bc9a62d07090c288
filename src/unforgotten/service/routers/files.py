"""/v1/files: upload (multipart, streamed to disk, validated by the data layer), list, get,
delete, content."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ...errors import DataError
from ..blobs import CHUNK, TooLarge
from ..errors import APIError, bad_request, not_found
from ..schemas import file_object
from ..store import FileRow, new_id, now
from .common import LimitQ, State, owned, paginate, state, tenant

router = APIRouter(prefix="/v1/files", tags=["files"])
PURPOSES = ("fine-tune",)


def validate_training_file(path, filename: str) -> int:
    """Records in the file, or a 400 naming the line and field exactly as `unforgotten data check` does."""
    from ...data import load_records

    try:
        return len(load_records(path, format="jsonl", require_response=True))
    except DataError as e:
        raise bad_request(str(e).replace(str(path), filename), param="file", code="invalid_file") from None


MULTIPART_OVERHEAD = 64 * 1024  # form fields and boundaries around the file


class RefuseOversizedUploads:
    """ASGI middleware: an upload whose declared size is over the limit is refused before any
    of its body is read (FastAPI would otherwise spool the whole form to disk first). Uploads
    without a Content-Length are counted as they stream (``Blobs.receive``)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") == router.prefix:
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.limit + MULTIPART_OVERHEAD:
                from ..errors import body

                response = body(413, f"File is larger than this service's limit of {self.limit} bytes.",
                                param="file", code="file_too_large")
                response.headers["connection"] = "close"
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


@router.post("")
async def upload(request: Request, file: UploadFile = File(...), purpose: str = Form(...),
                 st: State = Depends(state), who: str = Depends(tenant)):
    if purpose not in PURPOSES:
        raise bad_request(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}", param="purpose",
                          code="invalid_purpose")
    filename = (file.filename or "upload.jsonl").replace("/", "_")[-255:]
    limit = st.settings.max_upload_bytes

    async def chunks():
        while chunk := await file.read(CHUNK):
            yield chunk

    try:
        tmp, sha, size = await st.blobs.receive(chunks(), limit)
    except TooLarge:
        raise APIError(413, f"File is larger than this service's limit of {limit} bytes.", param="file",
                       code="file_too_large") from None
    try:
        if size == 0:
            raise bad_request(f"{filename}: the file is empty", param="file", code="invalid_file")
        await run_in_threadpool(validate_training_file, tmp, filename)
        row = FileRow(id=new_id("file"), tenant=who, filename=filename, purpose=purpose, bytes=size, sha256=sha,
                      status="processed", created_at=now(), deleted=False)
        # the blob moves into place (atomically) and the row appears in one transaction
        await run_in_threadpool(st.store.add_file, row, lambda: st.blobs.commit(tmp, sha))
    finally:
        tmp.unlink(missing_ok=True)
    return file_object(row)


@router.get("")
def list_files(purpose: Optional[str] = None, limit: int = LimitQ, after: Optional[str] = None,
               order: Literal["asc", "desc"] = Query("desc"), st: State = Depends(state), who: str = Depends(tenant)):
    where = [FileRow.tenant == who, FileRow.deleted.is_(False)]
    if purpose:
        where.append(FileRow.purpose == purpose)
    return paginate(st.store, FileRow, where, after, limit, file_object, newest_first=order == "desc")


def _file(st: State, who: str, file_id: str) -> FileRow:
    return owned(st, FileRow, who, file_id, "file", "file_id")


@router.get("/{file_id}")
def get_file(file_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    return file_object(_file(st, who, file_id))


@router.delete("/{file_id}")
def delete_file(file_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    if not st.store.delete_file(who, file_id, st.blobs.remove):
        raise not_found("file", file_id, param="file_id")
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/{file_id}/content")
def file_content(file_id: str, st: State = Depends(state), who: str = Depends(tenant)):
    row = _file(st, who, file_id)
    path = st.blobs.path(row.sha256)
    if not path.is_file():
        raise not_found("file", file_id, param="file_id")
    media = "application/json" if row.filename.endswith(".json") else "application/octet-stream"
    return FileResponse(path, media_type=media, filename=row.filename)
