"""Rate limits per caller and route group, shared by every API instance.

Lambda runs many copies of the API, so counts live in Postgres (an UNLOGGED
table) rather than in process memory. Counting is a call of the
rate_limit_hit() SQL function in autocommit (whose plan Postgres keeps,
without the session state of a PREPARE that would pin connections behind RDS
Proxy): one round trip. The algorithm is the sliding-window counter (the
current fixed window plus the previous one, weighted by how much of it still
overlaps the last `window` seconds), which avoids the double burst a plain
fixed window allows at its edges. Every attempt counts, refused ones too, so a
client that hammers stays refused until it slows down.

Most callers are far under their limit, and a round trip per request was a
third of the API's latency. So an instance that last saw a caller under half
their limit serves them from memory and reports those hits with its next call
(one call adds a batch), made after BATCH requests, SYNC_AFTER_S seconds or at
the window's end, whichever comes first; from half the limit on, every request
calls. One instance therefore counts exactly as with a call per request; N
instances serving one caller at once can let at most N × BATCH requests past
the limit before all of them call on every request.

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
import threading
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

# An instance serves a caller it last saw under HEADROOM of their limit from memory, at most
# BATCH - 1 requests in a row and for SYNC_AFTER_S seconds, then counts them all in one call.
BATCH = 10
SYNC_AFTER_S = 2.0
HEADROOM = 0.5
# Callers remembered per instance; past this, those whose window has ended are forgotten.
MAX_KNOWN = 4096

# The upsert lives in the rate_limit_hit() SQL function (migrations 0009, 0026), whose plan Postgres keeps.
_HIT = "SELECT hits, prev_hits, elapsed FROM rate_limit_hit(%s, %s, %s)"
_COLLECT = "DELETE FROM rate_limit_counters WHERE (window_no + 2) * window_s < extract(epoch FROM now())"

_next_gc = time.monotonic() + GC_INTERVAL_S


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    estimate: float
    retry_after: int  # seconds; 0 when allowed


@dataclass
class _Known:
    """What this instance knows of one caller's count since its last call."""
    limit: int
    estimate: float      # the sliding-window estimate that call returned, its own hits included
    called_at: float     # time.monotonic() of that call
    window_ends: float   # time.monotonic() at which that call's window ends
    pending: int = 0     # requests served since, not yet counted in Postgres

    def serves(self, now: float, limit: int) -> bool:
        """Whether one more request is surely under the limit without asking Postgres."""
        return (limit == self.limit and self.pending + 1 < BATCH
                and now < min(self.called_at + SYNC_AFTER_S, self.window_ends)
                and self.estimate + self.pending + 1 <= limit * HEADROOM)


_known: dict[str, _Known] = {}
_known_lock = threading.Lock()


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


def hit(bucket: str, limit: int, window_s: int, hits: int = 1) -> Decision:
    """Count hits (this request and any served from memory) against bucket: one round trip."""
    return decide(limit, window_s, *_count(bucket, window_s, hits))


def count(bucket: str, limit: int, window_s: int) -> Decision:
    """Count one request: from memory while the caller is surely under the limit, else hit()."""
    now = time.monotonic()
    with _known_lock:
        known = _known.pop(bucket, None)
        if known is not None and known.serves(now, limit):
            known.pending += 1
            _known[bucket] = known
            return Decision(True, limit, known.estimate + known.pending, 0)
    pending = known.pending if known is not None and known.limit == limit else 0
    counted, prev_hits, elapsed = _count(bucket, window_s, pending + 1)
    decision = decide(limit, window_s, counted, prev_hits, elapsed)
    with _known_lock:
        if len(_known) >= MAX_KNOWN:
            for stale in [b for b, k in _known.items() if k.window_ends <= now]:
                del _known[stale]
            if len(_known) >= MAX_KNOWN:  # all live: forgetting them forgives at most BATCH hits each
                _known.clear()
        _known[bucket] = _Known(limit, decision.estimate, now, now + window_s - elapsed)
    return decision


def _count(bucket: str, window_s: int, hits: int) -> tuple[int, int, float]:
    """Add hits to bucket's window in Postgres: (hits in this window, in the previous, seconds into it)."""
    conn = db.connection()
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(_HIT, (bucket, window_s, hits))
            counted, prev_hits, elapsed = cur.fetchone()
            if time.monotonic() >= _next_gc:
                collect_garbage(cur)
    finally:
        if not conn.closed:
            conn.autocommit = autocommit
    return counted, prev_hits, elapsed


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
        return count(f"{group}:{caller_of(request)}", limit, window_s)
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
