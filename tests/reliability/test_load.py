"""Load: 50 uploads started together all reach a final state, none lost, none processed twice;
the API answers health checks throughout and Postgres connections stay bounded."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from tests.helpers import wait_for_fallbacks
from tests.media import clips as make
from tests.reliability.conftest import new_video, put_bytes

pytestmark = pytest.mark.reliability

UPLOADS = int(os.environ.get("LOAD_UPLOADS", "50"))
DEADLINE_S = 420
# Postgres is started with max_connections=200; the stack must never come near it.
CONNECTION_BOUND = 150


@pytest.fixture(scope="module")
def load_clips(tmp_path_factory):
    """Distinct tiny clips (2 s, 160x90, each its own random Game of Life): none is a duplicate."""
    d = tmp_path_factory.mktemp("load")

    def one(i: int):
        return make.make_clip(d / f"load-{i}.mp4", scene="life", duration=2.0, size=(160, 90),
                              audio=False, seed=1000 + i)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(UPLOADS)))


class Sampler(threading.Thread):
    """Calls `probe` every `interval_s` until stopped; keeps what it returned."""

    def __init__(self, probe, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.probe, self.interval_s = probe, interval_s
        self.samples: list = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append(self.probe())
            self.halt.wait(self.interval_s)

    def stop(self) -> list:
        self.halt.set()
        self.join(30)
        return self.samples


def test_fifty_uploads_at_once(live_api, stack, client, sign_in, make_stream, load_clips, figures):
    from chalicelib import db

    me = sign_in()
    stream = make_stream({"id": me["user"]["id"]})
    created = [new_video(client, me, stream, p.name, p.stat().st_size) for p in load_clips]
    ids = [c["id"] for c in created]

    def health():
        t = time.monotonic()
        try:
            status = requests.get(f"{live_api}/health", timeout=15).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        return status, time.monotonic() - t

    pg = psycopg2.connect(stack.env["DATABASE_URL"])
    pg.autocommit = True

    def connections():
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
            return cur.fetchone()[0]

    health_sampler, pg_sampler = Sampler(health, 0.5), Sampler(connections, 0.25)
    health_sampler.start()
    pg_sampler.start()
    barrier = threading.Barrier(len(created))

    def put(pair):
        info, path = pair
        data = path.read_bytes()
        barrier.wait()
        put_bytes(info, data)
        return time.time()

    started = time.time()
    with ThreadPoolExecutor(len(created)) as pool:
        uploaded_at = dict(zip(ids, pool.map(put, zip(created, load_clips))))
    finished_at: dict[str, float] = {}
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(finished_at) < len(ids) and time.monotonic() < deadline:
            for row in db.fetch_all(
                    "SELECT id::text, extract(epoch FROM updated_at) AS at FROM videos"
                    " WHERE id = ANY(%s::uuid[]) AND status IN ('complete', 'duplicate', 'failed')", (ids,)):
                finished_at.setdefault(row["id"], float(row["at"]))
            time.sleep(0.5)
    finally:
        healths, counts = health_sampler.stop(), pg_sampler.stop()
        pg.close()
    elapsed = max(finished_at.values(), default=time.time()) - started

    rows = {str(r["id"]): r for r in db.fetch_all("SELECT * FROM videos WHERE id = ANY(%s::uuid[])", (ids,))}
    lost = [v for v in ids if v not in finished_at]
    assert not lost, f"{len(lost)} uploads never reached a final state: {[rows[v]['status'] for v in lost]}"
    assert {rows[v]["status"] for v in ids} == {"complete"}, \
        [(rows[v]["status"], rows[v]["failure_reason"]) for v in ids if rows[v]["status"] != "complete"]
    executions = db.fetch_all("SELECT video_id::text, count(*) AS n FROM pipeline_executions"
                              " WHERE video_id = ANY(%s::uuid[]) GROUP BY video_id", (ids,))
    assert sorted(r["n"] for r in executions) == [1] * len(ids)
    for v in ids:   # the MP4 fallbacks, made after each video became playable
        wait_for_fallbacks(v, 120)
    runs = db.fetch_all("SELECT stage, count(*) AS n FROM stage_runs WHERE video_id = ANY(%s::uuid[])"
                        " AND status = 'succeeded' AND NOT resumed GROUP BY video_id, stage", (ids,))
    assert len(runs) == 5 * len(ids) and {r["n"] for r in runs} == {1}      # no stage ran twice
    assert healths and all(status == 200 for status, _ in healths), healths
    assert max(counts) <= CONNECTION_BOUND, max(counts)

    slowest = max(finished_at[v] - uploaded_at[v] for v in ids)
    figures.values["load"] = {
        "uploads": len(ids), "final": len(finished_at), "lost": len(lost), "processed_twice": 0,
        "wall_s": round(elapsed, 1), "throughput_per_min": round(len(ids) / elapsed * 60, 1),
        "slowest_upload_s": round(slowest, 1),
        "health_checks": len(healths), "health_p_max_s": round(max(t for _, t in healths), 2),
        "pg_connections_peak": max(counts), "pg_connections_bound": CONNECTION_BOUND,
    }
    figures.counts["uploads_under_load"] += len(ids)
    figures.values["lost"] = figures.values.get("lost", 0) + len(lost)
