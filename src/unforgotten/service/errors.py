"""Every error the API returns has OpenAI's body: ``{"error": {"message", "type", "param", "code"}}``.

Handlers here turn our ``APIError``, FastAPI's request validation errors, HTTP errors (unknown
route, wrong method) and anything unexpected into that shape; nothing reaches the client as a
traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("unforgotten.service")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
          413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def not_found(kind: str, obj_id: str, param: str | None = None) -> APIError:
    # The same answer whether the object never existed or belongs to another tenant.
    return APIError(404, f"No such {kind}: {obj_id}", param=param, code=f"{kind.replace(' ', '_')}_not_found")


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def body(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {
        "message": message, "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param, "code": code}})


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_req: Request, e: APIError):
        return body(e.status, e.message, e.param, e.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header", "form")]
        param = ".".join(loc) or None
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            msg, param = "The request body is not valid JSON.", None
        return body(400, f"{param}: {msg}" if param else msg, param, "invalid_value" if param else "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, e: StarletteHTTPException):
        msg = "Unknown request URL or method." if e.status_code in (404, 405) else str(e.detail)
        return body(e.status_code, msg, code="unknown_url" if e.status_code in (404, 405) else None)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, e: Exception):
        log.exception("unexpected error")
        return body(500, "The server had an error while processing your request.", code="server_error")
