"""The one map from errors to HTTP. Every error answers {"error", "detail"} (plus the fields,
state or allowed actions that help the caller act); bad input never answers 500."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from cmdb.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    StaleVersion,
    TooManyAttempts,
    Unauthenticated,
)

log = logging.getLogger("keel")

STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    StaleVersion: 409,
    Conflict: 409,
    Forbidden: 403,
    Unauthenticated: 401,
    TooManyAttempts: 429,
}


def _status_for(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 400


def error_body(error: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error.code, "detail": error.detail}
    if isinstance(error, InvalidInput):
        body["fields"] = [problem.as_dict() for problem in error.problems]
    if isinstance(error, Conflict) and error.state is not None:
        # The actions allowed now, even when none are: a closed record says so plainly.
        body["state"] = error.state
        body["allowed"] = list(error.allowed)
    if isinstance(error, StaleVersion):
        body["version"] = error.current_version
    missing = getattr(error, "missing", None)
    if isinstance(missing, tuple):
        # What an action lacks (a release's evidence), item by item, besides the sentence.
        body["missing"] = list(missing)
    return body


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _respond(request: Request[Any, Any, Any], status: int, body: dict[str, Any]) -> Response[Any]:
    if _wants_html(request):
        return Template(template_name="error.html", context={"status": status, **body}, status_code=status)
    return Response(content=body, status_code=status)


def domain_error(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    return _respond(request, _status_for(error), error_body(error))


def validation_error(request: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    fields = []
    for item in error.extra if isinstance(error.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or "body")
            message = str(item.get("message") or "is invalid")
            fields.append({"field": key, "reason": message})
    detail = "; ".join(f"{f['field']}: {f['reason']}" for f in fields) or str(error.detail)
    if "JSON is malformed" in detail or "malformed" in str(error.detail).lower():
        return _respond(request, 400, {"error": "malformed_body", "detail": detail, "fields": fields})
    return _respond(request, 422, {"error": "invalid_input", "detail": detail, "fields": fields})


def not_authorized(request: Request[Any, Any, Any], error: NotAuthorizedException) -> Response[Any]:
    if not request.url.path.startswith("/api/") and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(path=f"/login?next={quote(target)}")
    return Response(content={"error": "unauthenticated", "detail": error.detail}, status_code=401)


def permission_denied(request: Request[Any, Any, Any], error: PermissionDeniedException) -> Response[Any]:
    return _respond(request, 403, {"error": "forbidden", "detail": error.detail})


def not_found(request: Request[Any, Any, Any], error: NotFoundException) -> Response[Any]:
    return _respond(request, 404, {"error": "not_found", "detail": "Nothing lives at this address."})


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    code = {400: "bad_request", 405: "method_not_allowed", 413: "too_large", 429: "too_many_requests"}.get(
        error.status_code, "http_error"
    )
    return _respond(request, error.status_code, {"error": code, "detail": error.detail})


def internal_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return _respond(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        {"error": "internal_error", "detail": "Something went wrong on our side; it has been logged."},
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    ValidationException: validation_error,
    NotAuthorizedException: not_authorized,
    PermissionDeniedException: permission_denied,
    NotFoundException: not_found,
    HTTPException: http_error,
    Exception: internal_error,
}
