"""Rate limits per caller and route group, shared by every API instance.

Lambda runs many copies of the API, so counts live in Postgres (an UNLOGGED
table) rather than in process memory, and each request costs one statement in
autocommit, a call of the rate_limit_hit() SQL function (whose plan Postgres
keeps, without the session state of a PREPARE that would pin connections
behind RDS Proxy): one round trip. The algorithm is the sliding-window
counter (the current fixed window plus the previous one, weighted by how much
of it still overlaps the last `window` seconds), which avoids the double burst
a plain fixed window allows at its edges. Every attempt counts, refused ones
too, so a client that hammers stays refused until it slows down.

The `limits` package implements the same strategies but has no Postgres
storage, and its strategies need a second call for the reset time; one
upsert is the whole algorithm here.

Callers are the signed-in user (from the bearer token's subject) or, without
a valid token, the client address API Gateway saw (never X-Forwarded-For,
which anyone can send). Limits come from settings (RATE_LIMITS, see
chalicelib.config.DEFAULT_RATE_LIMITS); each route's group is declared with
its access rule in chalicelib.api.routes. If the counter cannot be reached the
request goes through: the route then reports its own database error, and a
limiter outage never takes the API down with it.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import psycopg2

from chalicelib import db
from chalicelib.api import routes
from chalicelib.api.http import error_response
from chalicelib.auth.users import bearer_claims
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError, RateLimitedError

logger = logging.getLogger(__name__)

# Each instance deletes counters idle for two windows at most this often (a separate statement).
GC_INTERVAL_S = 300.0

# The upsert lives in the rate_limit_hit() SQL function (migration 0009), whose plan Postgres keeps.
_HIT = "SELECT hits, prev_hits, elapsed FROM rate_limit_hit(%s, %s)"
_COLLECT = "DELETE FROM rate_limit_counters WHERE (window_no + 2) * window_s < extract(epoch FROM now())"

_next_gc = time.monotonic() + GC_INTERVAL_S


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    estimate: float
    retry_after: int  # seconds; 0 when allowed


def group_of(method: str, resource_path: str) -> str | None:
    """The route group a request counts against (declared in chalicelib.api.routes), or None."""
    if method == "OPTIONS":
        return None
    route = routes.ROUTES.get((method, resource_path))
    if route is not None:
        return route.limit
    return "read" if method in ("GET", "HEAD") else "write"


def caller_of(request: Any) -> str:
    """"u:<user id>" for a valid bearer token, else "ip:<source address>"."""
    try:
        claims = bearer_claims(request)  # verified once per request; the route reuses it
    except AuthenticationError:
        claims = None
    if claims is not None:
        return "u:" + claims["sub"]
    identity = (request.context or {}).get("identity") or {}
    return "ip:" + str(identity.get("sourceIp") or "unknown")


def decide(limit: int, window_s: int, hits: int, prev_hits: int, elapsed: float) -> Decision:
    """Whether the hits counted so far (this one included) fit the limit, and else when to retry."""
    weight = min(1.0, max(0.0, 1.0 - elapsed / window_s))
    estimate = prev_hits * weight + hits
    if estimate <= limit:
        return Decision(True, limit, estimate, 0)
    return Decision(False, limit, estimate, retry_after(limit, window_s, hits, prev_hits, elapsed))


def retry_after(limit: int, window_s: int, hits: int, prev_hits: int, elapsed: float) -> int:
    """Whole seconds until one more request fits, if nothing else arrives meanwhile."""
    if hits + 1 <= limit and prev_hits > 0:
        # Still in this window, once the previous window's weight has decayed enough.
        fits_at = window_s * (1.0 - (limit - hits - 1) / prev_hits)
        if fits_at < window_s:
            return max(1, math.ceil(fits_at - elapsed))
    # In the next window, where this window's hits become the weighted previous ones.
    fits_at_next = window_s * max(0.0, 1.0 - (limit - 1) / hits) if hits else 0.0
    return max(1, math.ceil(window_s - elapsed + fits_at_next))


def hit(bucket: str, limit: int, window_s: int) -> Decision:
    """Count one request against bucket: one autocommitted statement, one round trip."""
    conn = db.connection()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(_HIT, (bucket, window_s))
            hits, prev_hits, elapsed = cur.fetchone()
            if time.monotonic() >= _next_gc:
                collect_garbage(cur)
    finally:
        if not conn.closed:
            conn.autocommit = autocommit
    return decide(limit, window_s, hits, prev_hits, elapsed)


def collect_garbage(cur: Any) -> int:
    """Delete counters no window can use any more; the number deleted."""
    global _next_gc
    _next_gc = time.monotonic() + GC_INTERVAL_S
    cur.execute(_COLLECT)
    return cur.rowcount


def check(request: Any) -> Decision | None:
    """Count the request; None when its route is not limited (or the counter is unreachable)."""
    group = group_of(request.method, request.path)  # Chalice's path is the route's template
    if group is None:
        return None
    limit, window_s = get_settings().rate_limits[group]
    if limit == 0:
        return None
    try:
        return hit(f"{group}:{caller_of(request)}", limit, window_s)
    except (db.DatabaseUnavailable, psycopg2.Error) as exc:
        logger.warning("rate limiter unavailable, letting the request through: %s", exc)
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            db.close()
        return None


def refusal(request: Any) -> Any:
    """The 429 response for a request over its limit, or None to serve it."""
    decision = check(request)
    if decision is None or decision.allowed:
        return None
    return error_response(RateLimitedError("Too many requests", retry_after=decision.retry_after,
                                           limit=decision.limit))
