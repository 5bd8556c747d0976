"""RFC 9457 problem details for the REST API: one shape for every error under ``/api``.

Refusals (401/403/404 from :func:`pasa.web.security.authorize`) are rendered by the
application itself; this module adds the rest, for paths under ``/api/`` only (the SCIM
service provider and the pages keep their own error formats):

* request validation (bad query, path or body): 422 with one sentence per field in
  ``detail`` and the machine-readable list in ``errors``;
* :class:`ApiProblem`, raised by endpoints (400 bad cursor, 409 conflict, 412 ETag mismatch);
* :class:`~pasa.domain.errors.PasaError` from the services: 404 for
  :class:`~pasa.domain.errors.NotFoundError`, 422 for invalid configuration or input, 409
  for a state that does not allow the change;
* Starlette's own HTTP errors (unknown path, method not allowed).

:func:`install` registers the handlers on an application (``create_app`` calls it).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pasa.domain.errors import ConfigurationError, InputFileError, NotFoundError, PasaError

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
}


class FieldError(BaseModel):
    """One invalid input: where (``query``/``path``/``body`` and the field) and why."""

    location: str = Field(description="e.g. 'query.limit' or 'body.valid_to'")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field("about:blank", description="A URI naming the problem type")
    title: str
    status: int
    detail: str = Field(description="What went wrong with this request, in one or more sentences")
    errors: list[FieldError] | None = Field(
        None, description="Invalid inputs, for 422 validation problems"
    )


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json errors."""
    return {
        status: {
            "model": Problem,
            "description": TITLES.get(status, "Error"),
            "content": _problem_content(),
        }
        for status in statuses
    }


class ApiProblem(Exception):
    """An error an endpoint reports as a problem (``status`` with a specific ``detail``)."""

    def __init__(self, status: int, detail: str, *, errors: list[FieldError] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _sentence(error: dict[str, Any]) -> FieldError:
    loc = tuple(error.get("loc") or ())
    where = _location(loc)
    message = str(error.get("msg") or "is not valid")
    if error.get("type") == "missing":
        message = "is required"
    elif error.get("type") == "extra_forbidden":
        message = "is not a known field"
    return FieldError(location=where, message=message)


def validation_problem(errors: list[dict[str, Any]]) -> JSONResponse:
    fields = [_sentence(e) for e in errors]
    detail = "; ".join(f"{f.location}: {f.message}" for f in fields) or "the request is invalid"
    return problem_response(422, detail, errors=fields)


async def _validation(request: Request, exc: RequestValidationError) -> Response:
    if not _is_api(request):
        return await request_validation_exception_handler(request, exc)
    return validation_problem(list(exc.errors()))


async def _api_problem(request: Request, exc: ApiProblem) -> Response:
    return problem_response(exc.status, exc.detail, errors=exc.errors)


def status_of(exc: PasaError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConfigurationError | InputFileError):
        return 422
    return 409


async def _pasa_error(request: Request, exc: PasaError) -> Response:
    if not _is_api(request):
        raise exc
    return problem_response(status_of(exc), str(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if not _is_api(request):
        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is no resource at {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))


def install(app: FastAPI) -> None:
    """Render errors under ``/api/`` as problem+json (idempotent)."""
    if getattr(app.state, "api_problems_installed", False):
        return
    app.state.api_problems_installed = True
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(ApiProblem, _api_problem)  # type: ignore[arg-type]
    app.add_exception_handler(PasaError, _pasa_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
