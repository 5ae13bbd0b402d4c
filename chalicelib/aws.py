"""What the Lambda runtime gives a function: its AWS clients (one home for all of them,
built lazily, once per container, reused) and its scratch space (/tmp).

In AWS each function has its own execution role and boto3 finds its
credentials in the function's environment. The local stack runs many
functions in one process, so it says which role's credentials the current
invocation (or API request) runs with through `acting_as`; clients are kept
per credentials, and a call the role's policy does not allow fails with
AccessDenied locally as it would in AWS. Nothing here calls AWS at import.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Any, Callable, Iterator, NamedTuple

from chalicelib.config import get_settings


class Credentials(NamedTuple):
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


_acting_as: contextvars.ContextVar[Credentials | None] = contextvars.ContextVar("aws_credentials", default=None)
_scratch: contextvars.ContextVar[str | None] = contextvars.ContextVar("scratch_space", default=None)
_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def acting_as(credentials: Credentials | None) -> Iterator[None]:
    """Run the block with these credentials (the local stack's per-function roles); None: the default chain."""
    token = _acting_as.set(credentials)
    try:
        yield
    finally:
        _acting_as.reset(token)


@contextlib.contextmanager
def scratch_space(folder: Any) -> Iterator[None]:
    """Run the block with its own /tmp (the local stack gives each invocation one, sized as in AWS)."""
    token = _scratch.set(str(folder))
    try:
        yield
    finally:
        _scratch.reset(token)


def scratch_dir() -> str | None:
    """Where a function writes temporary files: its own folder locally, None (TMPDIR, /tmp) in AWS."""
    return _scratch.get()


def in_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` bound to the caller's context: worker threads keep acting as the invocation's role."""
    ctx = contextvars.copy_context()
    return lambda *args, **kwargs: ctx.run(fn, *args, **kwargs)


def _endpoint(service: str, public: bool) -> str | None:
    s = get_settings()
    if service == "s3":
        return (s.s3_public_endpoint_url if public else None) or s.s3_endpoint_url
    if service == "apigatewaymanagementapi":  # the WebSocket API's own endpoint, with its stage
        return s.live_endpoint_url
    return s.aws_endpoint_url


def _config(service: str, read_timeout: int | None) -> Any:
    from botocore.config import Config
    if read_timeout is not None:  # a quick check (health): give up soon rather than retry long
        return Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2,
                      read_timeout=read_timeout)
    if service == "s3":
        return Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    if service == "lambda":
        # embed_query answers within the API's own deadline; a slow call is given up, not retried.
        return Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=60)
    if service == "apigatewaymanagementapi":
        # A live update is best effort: a slow endpoint must not hold up the step or route that published.
        return Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)


def client(service: str, *, public: bool = False, read_timeout: int | None = None) -> Any:
    """The client for `service` (s3, stepfunctions, lambda, secretsmanager ...).

    `public`: for S3, one whose presigned URLs name the endpoint that clients reach.
    """
    creds = _acting_as.get()
    s = get_settings()
    key = (service, public, read_timeout, s.region, _endpoint(service, public), creds)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            import boto3
            kwargs: dict[str, Any] = {}
            if creds is not None:
                kwargs = {"aws_access_key_id": creds.access_key_id,
                          "aws_secret_access_key": creds.secret_access_key,
                          "aws_session_token": creds.session_token}
            found = boto3.session.Session().client(
                service, region_name=s.region, endpoint_url=_endpoint(service, public),
                config=_config(service, read_timeout), **kwargs)
            _clients[key] = found
    return found


def forget_clients() -> None:
    """Drop every cached client (tests and the local stack change endpoints and credentials)."""
    with _lock:
        _clients.clear()


def route_credentials(route_path: str | None) -> Credentials | None:
    """Locally, the credentials of the role that serves this route in AWS (its route group's)."""
    table = _route_table()
    if not table or route_path is None:
        return None
    group = table["routes"].get(route_path)
    found = table["groups"].get(group) if group else None
    return Credentials(*found) if found else None


def _route_table() -> dict | None:
    import json
    raw = get_settings().local_api_credentials
    if not raw:
        return None
    cached = _ROUTE_TABLE.get(raw)
    if cached is None:
        cached = _ROUTE_TABLE[raw] = json.loads(raw)
    return cached


_ROUTE_TABLE: dict[str, dict] = {}
