"""Rate limits per caller and route group, counted in Postgres (chalicelib.api.ratelimit).

The suite's stack runs with very high limits (infra/local/stack.py test_config);
these tests set low ones through RATE_LIMITS and put the suite's back after.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid

import psycopg2
import psycopg2.extensions
import pytest

from chalicelib import config, db
from chalicelib.api import ratelimit
from tests.helpers import call

LOCAL_IP = "127.0.0.1"  # the address Chalice's local gateway and test client report


@pytest.fixture()
def limits(monkeypatch, stack):
    """Set RATE_LIMITS for one test; the suite's limits come back afterwards."""

    def set_limits(value: str) -> None:
        monkeypatch.setenv("RATE_LIMITS", value)
        config.reset_settings()

    yield set_limits
    monkeypatch.undo()
    config.reset_settings()


def forget(bucket: str) -> None:
    """The bucket's count gone from Postgres and from this instance's memory."""
    db.execute("DELETE FROM rate_limit_counters WHERE bucket = %s", (bucket,))
    ratelimit._known.pop(bucket, None)


def counted(bucket: str) -> int:
    """Hits Postgres holds for bucket's current window."""
    return db.fetch_one("SELECT hits FROM rate_limit_counters WHERE bucket = %s", (bucket,))["hits"]


def get(client, path, who=None):
    headers = who["headers"] if who else {}
    return client.http.get(path, headers=headers)


# ---------------------------------------------------------------- the algorithm

def test_decide_counts_the_previous_window_by_its_overlap():
    # 10 per 60 s; the previous window had 10, a quarter of this one has passed: 7.5 of them still count.
    assert ratelimit.decide(10, 60, 2, 10, 15.0).allowed            # 7.5 + 2 = 9.5
    assert not ratelimit.decide(10, 60, 3, 10, 15.0).allowed        # 10.5
    assert ratelimit.decide(10, 60, 3, 10, 30.0).allowed            # 5 + 3
    assert ratelimit.decide(10, 60, 10, 0, 59.0).allowed
    assert not ratelimit.decide(10, 60, 11, 0, 0.5).allowed


@pytest.mark.parametrize("limit,window", [(1, 1), (3, 10), (10, 60), (100, 60), (5, 3600)])
def test_retry_after_is_the_first_whole_second_that_fits(limit, window):
    """For many refused states: one more request fits after retry_after seconds, never a second earlier."""

    def fits(hits, prev, elapsed, wait):
        t = elapsed + wait
        if t < window:
            return ratelimit.decide(limit, window, hits + 1, prev, t).allowed
        if t < 2 * window:
            return ratelimit.decide(limit, window, 1, hits, t - window).allowed
        return ratelimit.decide(limit, window, 1, 0, t - 2 * window).allowed

    checked = 0
    for prev in range(0, 3 * limit + 2):
        for hits in range(1, 3 * limit + 2):
            for step in range(0, 10):
                elapsed = window * step / 10 + 0.01
                decision = ratelimit.decide(limit, window, hits, prev, elapsed)
                if decision.allowed:
                    continue
                wait = decision.retry_after
                assert wait >= 1
                assert fits(hits, prev, elapsed, wait), (hits, prev, elapsed, wait)
                assert wait == 1 or not fits(hits, prev, elapsed, wait - 1), (hits, prev, elapsed, wait)
                checked += 1
    assert checked > 20


def test_route_groups():
    assert ratelimit.group_of("GET", "/health") is None
    assert ratelimit.group_of("GET", "/") is None
    assert ratelimit.group_of("POST", "/webhooks/minio/upload-complete") is None
    assert ratelimit.group_of("OPTIONS", "/api/videos/{video_id}/hls/master.m3u8") is None
    assert ratelimit.group_of("POST", "/auth/verify") == "auth"
    assert ratelimit.group_of("POST", "/streams/{stream_id}/videos") == "upload"
    assert ratelimit.group_of("GET", "/streams/{stream_id}/videos") == "read"
    assert ratelimit.group_of("DELETE", "/videos/{video_id}") == "write"
    assert ratelimit.group_of("GET", "/search/suggestions") == "search"
    assert ratelimit.group_of("POST", "/videos/{video_id}/report") == "report"
    assert ratelimit.group_of("POST", "/videos/{video_id}/views") == "views"
    assert ratelimit.group_of("GET", "/api/videos/{video_id}/hls/master.m3u8") == "playback"


def test_rate_limit_settings():
    assert config.parse_rate_limits(None) == config.DEFAULT_RATE_LIMITS
    merged = config.parse_rate_limits("read=5/10, auth=0")
    assert merged["read"] == (5, 10) and merged["auth"] == (0, 60)
    assert merged["write"] == config.DEFAULT_RATE_LIMITS["write"]
    for bad in ("read", "read=x/60", "nope=5/60", "read=-1/60", "read=5/0"):
        with pytest.raises(ValueError):
            config.parse_rate_limits(bad)


# ---------------------------------------------------------------- over HTTP

def test_a_user_over_a_route_groups_limit_gets_429_with_retry_after(client, sign_in, limits):
    me, other = sign_in(), sign_in()
    limits("read=3/60")
    for _ in range(3):
        assert get(client, "/auth/user", me).status_code == 200
    refused = get(client, "/auth/user", me)
    assert refused.status_code == 429
    body = json.loads(refused.body)
    assert body["error"] == "Too many requests" and body["limit"] == 3
    assert 1 <= body["retry_after"] <= 120     # the 4 attempts still weigh on the next window
    assert refused.headers["Retry-After"] == str(body["retry_after"])
    assert get(client, "/streams", me).status_code == 429            # the whole group, not one path
    assert get(client, "/auth/user", other).status_code == 200       # per user
    status, _ = call(client, "POST", "/streams", me, {"name": "still writing"})
    assert status == 201                                              # per route group
    assert get(client, "/health").status_code in (200, 503)           # never limited
    assert get(client, "/health").status_code != 429


def test_the_token_is_verified_once_per_request(client, sign_in, limits, monkeypatch):
    """The limiter and the route share one verification of the bearer token (per request)."""
    from chalicelib.auth import tokens, users

    me = sign_in()
    limits("read=1000/60")
    verified = []
    decode = tokens.decode_access_token
    monkeypatch.setattr(tokens, "decode_access_token", lambda token: verified.append(token) or decode(token))
    for _ in range(2):
        tokens._verified.clear()      # nothing remembered from earlier requests of this container
        users._users_by_token.clear()
        assert get(client, "/auth/user", me).status_code == 200
    assert len(verified) == 2        # once for each request, though both the limiter and the route need it
    bad = {"headers": {"Authorization": "Bearer not-a-token"}}
    assert get(client, "/auth/user", bad).status_code == 401
    assert len(verified) == 3


def test_anonymous_callers_are_limited_by_address(client, limits):
    bucket = f"auth:ip:{LOCAL_IP}"
    forget(bucket)
    try:
        limits("auth=2/60")
        bad = {"Content-Type": "application/json"}
        for _ in range(2):
            assert client.http.post("/auth/refresh", headers=bad,
                                    body=json.dumps({"refresh_token": "nope"})).status_code == 401
        refused = client.http.post("/auth/refresh", headers=bad, body=json.dumps({"refresh_token": "nope"}))
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # An invalid bearer token does not buy a fresh bucket: it counts against the address too.
        forged = {**bad, "Authorization": "Bearer not-a-token"}
        assert client.http.post("/auth/logout", headers=forged, body="{}").status_code == 429
    finally:
        forget(bucket)


def test_a_group_set_to_zero_is_not_limited(client, sign_in, limits):
    me = sign_in()
    limits("read=0/60")
    for _ in range(5):
        assert get(client, "/auth/user", me).status_code == 200
    assert db.fetch_one("SELECT 1 FROM rate_limit_counters WHERE bucket = %s",
                        (f"read:u:{me['user']['id']}",)) is None


def test_the_window_slides_on(client, sign_in, limits):
    me = sign_in()
    limits("read=2/1")
    # Start at the beginning of a 1 s window so the three requests share it.
    time.sleep(1 - time.time() % 1 + 0.02)
    assert [get(client, "/auth/user", me).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(2.1)  # two windows on, nothing of the burst still counts
    assert get(client, "/auth/user", me).status_code == 200


# ---------------------------------------------------------------- shared across instances

def test_api_instances_share_one_count(stack):
    """Two threads, each with its own Postgres connection (as two Lambda containers): one limit."""
    bucket = f"test:{uuid.uuid4()}"
    limit, per_thread = 25, 40
    results: dict[str, list[bool]] = {}
    backends: set[int] = set()
    barrier = threading.Barrier(2)

    def instance(name: str) -> None:
        try:
            backends.add(db.connection().get_backend_pid())
            barrier.wait()
            results[name] = [ratelimit.hit(bucket, limit, 3600).allowed for _ in range(per_thread)]
        finally:
            db.close()

    threads = [threading.Thread(target=instance, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(backends) == 2
    allowed = results["a"] + results["b"]
    assert len(allowed) == 2 * per_thread
    assert sum(allowed) == limit  # exactly: not 2 x limit, not fewer
    row = db.fetch_one("SELECT hits FROM rate_limit_counters WHERE bucket = %s", (bucket,))
    assert row["hits"] == 2 * per_thread
    forget(bucket)


def test_another_process_sees_the_same_count(stack):
    """A separate Python process (another Lambda container) continues this process's count."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    bucket = f"test:{uuid.uuid4()}"
    assert all(ratelimit.hit(bucket, 15, 3600).allowed for _ in range(10))
    script = ("import json, sys; from chalicelib.api import ratelimit;"
              f" print(json.dumps([ratelimit.hit({bucket!r}, 15, 3600).allowed for _ in range(10)]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **stack.env},
                         capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True] * 5 + [False] * 5
    assert not ratelimit.hit(bucket, 15, 3600).allowed
    forget(bucket)


@pytest.fixture()
def statements(stack):
    """The SQL this thread's db connection runs, in order."""
    ran: list[str] = []

    class Counting(psycopg2.extensions.cursor):
        def execute(self, sql, params=None):
            ran.append(sql)
            return super().execute(sql, params)

    db.close()
    conn = psycopg2.connect(stack.env["DATABASE_URL"], cursor_factory=Counting)
    conn.autocommit = False
    db._local.conn, db._local.used_at = conn, time.monotonic()
    try:
        yield ran
        assert conn.autocommit is False
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        db.close()


def test_counting_is_one_statement_outside_any_transaction(statements):
    """One round trip per call, in autocommit; the connection is left as it was found."""
    bucket = f"test:{uuid.uuid4()}"
    for n in (1, 2, 3):
        assert ratelimit.hit(bucket, 5, 60).estimate == n
    assert len(statements) == 3
    forget(bucket)


def test_a_caller_far_under_the_limit_is_counted_in_batches(statements):
    """Under half the limit, an instance calls Postgres once per BATCH requests, losing no hit."""
    bucket = f"test:{uuid.uuid4()}"
    decisions = [ratelimit.count(bucket, 1000, 60) for _ in range(25)]
    assert all(d.allowed for d in decisions)
    assert [d.estimate for d in decisions] == list(range(1, 26))
    assert len(statements) == 3                    # requests 1, 11 and 21 called; the rest waited
    assert counted(bucket) == 21                   # 1 + 10 + 10: the served ones arrive with the calls
    forget(bucket)


def test_near_the_limit_every_request_is_counted_exactly(statements):
    bucket = f"test:{uuid.uuid4()}"
    allowed = [ratelimit.count(bucket, 30, 3600).allowed for _ in range(40)]
    assert allowed == [True] * 30 + [False] * 10   # one instance: the exact limit, as a call per request
    assert counted(bucket) == 40                   # refused attempts count too, none left in memory
    tail = statements[-15:]
    assert len(tail) == 15 and all("rate_limit_hit" in sql for sql in tail)  # past half: a call each
    forget(bucket)


def test_remembered_counts_expire(stack, monkeypatch):
    """After SYNC_AFTER_S (or at its window's end) an instance asks Postgres again."""
    bucket = f"test:{uuid.uuid4()}"
    ratelimit.count(bucket, 1000, 3600)
    ratelimit.count(bucket, 1000, 3600)
    assert counted(bucket) == 1
    clock = time.monotonic() + ratelimit.SYNC_AFTER_S
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock)
    ratelimit.count(bucket, 1000, 3600)
    assert counted(bucket) == 3
    monkeypatch.undo()
    ratelimit._known[bucket].window_ends = time.monotonic()   # its window just ended
    ratelimit.count(bucket, 1000, 3600)
    assert counted(bucket) == 4
    forget(bucket)


def test_another_instance_overshoots_by_at_most_one_batch(stack):
    """What an instance served from memory reaches Postgres late: the limit may slip by < BATCH."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    bucket, limit = f"test:{uuid.uuid4()}", 40
    here = [ratelimit.count(bucket, limit, 3600).allowed for _ in range(5)]   # 1 counted, 4 remembered
    script = ("import json; from chalicelib.api import ratelimit;"
              f" print(json.dumps([ratelimit.count({bucket!r}, {limit}, 3600).allowed for _ in range(45)]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **stack.env},
                         capture_output=True, text=True, timeout=120, check=True)
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert sum(there) == limit - 1               # it saw this instance's one counted hit, not the 4
    here += [ratelimit.count(bucket, limit, 3600).allowed for _ in range(10)]
    assert sum(here) == ratelimit.BATCH          # this instance went on from memory until its batch was due
    assert limit < sum(here) + sum(there) < limit + ratelimit.BATCH
    assert counted(bucket) == 5 + 45 + 10        # and every hit was counted in the end
    forget(bucket)


def test_idle_counters_are_collected(stack, monkeypatch):
    stale, mine = f"test:stale:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    db.execute("INSERT INTO rate_limit_counters (bucket, window_s, window_no, hits) VALUES (%s, 60, 1, 5)",
               (stale,))
    ratelimit.hit(mine, 5, 60)
    assert db.fetch_one("SELECT 1 FROM rate_limit_counters WHERE bucket = %s", (stale,))
    monkeypatch.setattr(ratelimit, "_next_gc", 0.0)       # this instance's collection is due
    assert ratelimit.hit(mine, 5, 60).estimate == 2       # a live counter survives the sweep
    assert db.fetch_one("SELECT 1 FROM rate_limit_counters WHERE bucket = %s", (stale,)) is None
    assert ratelimit._next_gc > time.monotonic() + ratelimit.GC_INTERVAL_S - 60
    forget(mine)


def test_an_unreachable_counter_lets_requests_through(stack, monkeypatch):
    """The limiter fails open: an outage of its table never refuses or breaks requests."""
    from chalice.app import Request

    event = {"requestContext": {"httpMethod": "GET", "resourcePath": "/streams",
                                "identity": {"sourceIp": "203.0.113.9"}},
             "headers": {}, "pathParameters": {}, "multiValueQueryStringParameters": None,
             "body": None, "stageVariables": {}}
    outcome: dict = {}

    def elsewhere() -> None:
        try:
            outcome["decision"] = ratelimit.refusal(Request(event))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            outcome["error"] = exc
        finally:
            db.close()

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    config.reset_settings()
    try:
        thread = threading.Thread(target=elsewhere)  # its own (failing) connection
        thread.start()
        thread.join(30)
    finally:
        monkeypatch.undo()
        config.reset_settings()
    assert outcome == {"decision": None}
