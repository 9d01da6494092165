"""RFC 9457 problem+json for every 4xx and 5xx, never a stack trace."""

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from itsm_events.bus import is_transient
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("itsm.errors")


class Problem(Exception):
    """A domain or API error with its HTTP status, raised from routes and handlers."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
                 **extensions):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.extensions = extensions


class NotFound(Problem):
    def __init__(self, what: str, ident: str):
        super().__init__(404, f"{what} {ident} does not exist")


class Conflict(Problem):
    def __init__(self, detail: str, **extensions):
        super().__init__(409, detail, **extensions)


def problem_response(status: int, *, title: str | None = None, detail: str | None = None,
                     instance: str | None = None, type_: str = "about:blank", headers=None,
                     **extensions) -> JSONResponse:
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, title=exc.title, detail=exc.detail, instance=request.url.path,
                                type_=exc.type, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
             "message": err.get("msg", "invalid"), "type": err.get("type", "value_error")}
            for err in exc.errors()
        ]
        return problem_response(422, title="Validation failed", detail="The request has invalid fields.",
                                instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_response(exc.status_code, detail=str(exc.detail) if exc.detail else None,
                                instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if sqlstate.startswith("22"):  # data exception: a value the database cannot take
            return problem_response(422, title="Unprocessable value", instance=request.url.path,
                                    detail="A value in the request cannot be stored (for example a NUL character "
                                           "or a number out of range).")
        if is_transient(exc):
            return problem_response(503, detail="The database is unavailable; retry shortly.",
                                    instance=request.url.path, headers={"Retry-After": "2"})
        log.exception("database error on %s %s", request.method, request.url.path)
        return problem_response(500, detail="An internal error occurred; it has been logged.",
                                instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, detail="An internal error occurred; it has been logged.",
                                instance=request.url.path)
