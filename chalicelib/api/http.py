"""HTTP edges shared by every route: JSON bodies, paging, dates, errors to responses."""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
from typing import Any, Callable

from chalice import Response

from chalicelib.errors import ClipstreamError, NotFoundError, ValidationError

logger = logging.getLogger(__name__)

MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE = 100_000  # deeper pages are not served (and OFFSET must fit Postgres' bigint)
MAX_JSON_DEPTH = 32


def iso(ts: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as every date in a response; None stays None."""
    if ts is None:
        return None
    return ts.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def error_response(exc: ClipstreamError) -> Response:
    """The contract's JSON error shape: {"error": ..., "details": [...]}."""
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(body=exc.body(), status_code=exc.status, headers=headers)


def handles_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Map domain errors raised by a view to their documented JSON response."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ClipstreamError as exc:
            return error_response(exc)

    wrapper.maps_contract_errors = True  # type: ignore[attr-defined]  # tests/api/test_route_access.py
    return wrapper


def chalice_error_to_contract(response: Response) -> Response:
    """Rewrite Chalice's own {"Code","Message"} errors into the contract's shape."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body \
            and "Message" in body and "error" not in body:
        message = body["Message"]
        if response.status_code >= 500:
            message = "Internal server error"
        elif message.startswith(body["Code"] + ": "):
            message = message[len(body["Code"]) + 2:]
        response.body = {"error": message}
    return response


def json_body(request: Any, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object body, or a 400 explaining what is wrong with it."""
    raw = request.raw_body
    if not raw:
        if required:
            raise ValidationError("Invalid request body", details=["body must be a JSON object"])
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("Invalid request body", details=["body is not valid JSON"]) from None
    except RecursionError:  # thousands of nested brackets exhaust the parser's stack
        raise ValidationError("Invalid request body", details=["body is nested too deeply"]) from None
    if not isinstance(body, dict):
        raise ValidationError("Invalid request body", details=["body must be a JSON object"])
    _check_storable(body)
    return body


def _check_storable(value: Any, depth: int = 0) -> None:
    """Postgres text and jsonb hold neither NUL nor lone surrogates; refuse them (and absurd nesting) up front."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError("Invalid request body", details=["body is nested too deeply"])
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError("Invalid request body", details=["strings must not contain NUL characters"])
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Invalid request body",
                                  details=["strings must be valid Unicode (no lone surrogates)"]) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, depth + 1)
            _check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, depth + 1)


def parse_uuid(value: str, what: str = "Resource") -> str:
    """A canonical UUID string, or 404 for anything that cannot be one of our ids."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFoundError(f"{what} not found") from None


def paging(request: Any) -> tuple[int, int]:
    """(page, limit) from ?page=&limit=, 1-based; a limit above MAX_PAGE_LIMIT is a 400, not capped,
    so the client knows how many rows a page holds (the OpenAPI document says maximum 100)."""
    params = request.query_params or {}
    details = []
    page, limit = 1, DEFAULT_PAGE_LIMIT
    try:
        page = int(params.get("page", 1))
        if page < 1:
            details.append("page must be 1 or more")
        elif page > MAX_PAGE:
            details.append(f"page must be at most {MAX_PAGE}")
    except ValueError:
        details.append("page must be an integer")
    try:
        limit = int(params.get("limit", DEFAULT_PAGE_LIMIT))
        if limit < 1:
            details.append("limit must be 1 or more")
        elif limit > MAX_PAGE_LIMIT:
            details.append(f"limit must be at most {MAX_PAGE_LIMIT}")
    except ValueError:
        details.append("limit must be an integer")
    if details:
        raise ValidationError("Invalid pagination", details=details)
    return page, limit
