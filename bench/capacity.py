"""Database statements per hot request and per pipeline run, counted and timed (issue 19, item 5).

The embedded Postgres does not preload pg_stat_statements, so the bench counts
on the client: while `counting()` is active every new psycopg2 connection is a
CountingConnection (each execute of any cursor, and each COMMIT/ROLLBACK, is
one round trip, timed from send to result), and the thread's current
connection is dropped so the next statement opens a counted one. The time is
what the caller waited, on a loopback connection: an upper bound of the server
time each statement costs (parse, plan, execute), which is what the capacity
model in the README divides the database's cores by.

Requests are made in-process through chalice.test.Client, as the API bench
does, so the counts include the rate-limit statement (an HTTP middleware) and
the token check.
"""
from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections import defaultdict
from typing import Iterator

import psycopg2
import psycopg2.extensions


class Ledger:
    """Statements and their times, per label (a request kind, or a pipeline function)."""

    def __init__(self) -> None:
        self.label = threading.local()
        self.lock = threading.Lock()
        self.rows: dict[str, list[tuple[str, float]]] = defaultdict(list)

    def add(self, kind: str, seconds: float) -> None:
        label = getattr(self.label, "name", None)
        if label is None:
            thread = threading.current_thread()
            inv = getattr(thread, "_bench_invocation", None)
            label = f"pipeline:{inv.function}" if inv is not None else None
        if label is None:
            return
        with self.lock:
            self.rows[label].append((kind, seconds))

    @contextlib.contextmanager
    def as_label(self, name: str) -> Iterator[None]:
        self.label.name = name
        try:
            yield
        finally:
            self.label.name = None

    def take(self, label: str) -> list[tuple[str, float]]:
        with self.lock:
            return self.rows.pop(label, [])


LEDGER = Ledger()


def _kind(sql) -> str:
    text = sql.decode() if isinstance(sql, bytes) else str(sql)
    return (text.lstrip().split(None, 1) or ["?"])[0].upper()


class _Counting:
    def execute(self, sql, params=None):
        t = time.perf_counter()
        try:
            return super().execute(sql, params)
        finally:
            LEDGER.add(_kind(sql), time.perf_counter() - t)

    def executemany(self, sql, seq):
        t = time.perf_counter()
        try:
            return super().executemany(sql, seq)
        finally:
            LEDGER.add(_kind(sql), time.perf_counter() - t)


class CountingCursor(_Counting, psycopg2.extensions.cursor):
    pass


class CountingConnection(psycopg2.extensions.connection):
    def cursor(self, *a, **kw):
        factory = kw.get("cursor_factory") or CountingCursor
        if not issubclass(factory, _Counting):
            factory = type(f"Counting{factory.__name__}", (_Counting, factory), {})
        kw["cursor_factory"] = factory
        return super().cursor(*a, **kw)

    def commit(self):
        t = time.perf_counter()
        try:
            return super().commit()
        finally:
            LEDGER.add("COMMIT", time.perf_counter() - t)

    def rollback(self):
        t = time.perf_counter()
        try:
            return super().rollback()
        finally:
            LEDGER.add("ROLLBACK", time.perf_counter() - t)


@contextlib.contextmanager
def counting() -> Iterator[Ledger]:
    from chalicelib import db
    connect = psycopg2.connect

    def counted_connect(*a, **kw):
        kw.setdefault("connection_factory", CountingConnection)
        return connect(*a, **kw)

    psycopg2.connect = counted_connect
    db.close()   # this thread's next statement opens a counted connection
    try:
        yield LEDGER
    finally:
        psycopg2.connect = connect
        db.close()


def summary(samples: list[list[tuple[str, float]]]) -> dict:
    """Per request kind: statements per request, their kinds, and the time they took (median request)."""
    counts = [len(s) for s in samples]
    totals = [sum(t for _, t in s) * 1000 for s in samples]
    kinds: dict[str, int] = defaultdict(int)
    for kind, _ in samples[len(samples) // 2]:
        kinds[kind] += 1
    return {"requests": len(samples), "statements": statistics.median(counts),
            "statements_min": min(counts), "statements_max": max(counts),
            "db_ms_median": round(statistics.median(totals), 3),
            "db_ms_p95": round(sorted(totals)[max(0, int(len(totals) * 0.95) - 1)], 3),
            "kinds": dict(kinds)}


# ---------------------------------------------------------------- the model on paper, from the counts

# The assumed database (README "Capacity"): RDS for PostgreSQL db.r6g.xlarge behind RDS Proxy.
INSTANCE = {"class": "db.r6g.xlarge", "vcpus": 4, "memory_gib": 32,
            # RDS's default max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000)
            "max_connections": min(int(32 * 2**30 * 0.9 / 9531392), 5000),
            "proxy_max_connections_percent": 90,
            "usable_cpu_share": 0.7}   # past ~70 % CPU, queueing makes latency climb


def saturation(per_request_db_ms: float, inst: dict = INSTANCE) -> float:
    """Requests per second at which the statements of one request kind alone use the usable CPU."""
    if per_request_db_ms <= 0:
        return float("inf")
    return inst["vcpus"] * inst["usable_cpu_share"] / (per_request_db_ms / 1000)


def connections_needed(rate_per_s: float, per_request_db_ms: float) -> float:
    """Little's law: proxy connections busy at once (a connection is borrowed per transaction)."""
    return rate_per_s * per_request_db_ms / 1000
