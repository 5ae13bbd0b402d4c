"""Clipstream benchmark suite: every number is paired with a baseline measured in
the same run on the same input, and reported as a median.

Run: make bench   (or .venv/bin/python bench/run.py)
Writes bench/results/latest.json (partial results are written as we go).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
# Waiting OpenMP threads (CTranslate2's) sleep instead of spinning: on a shared, oversubscribed
# machine a spinning thread burns CPU seconds that are not work, and bench/aws_sim.py scales
# measured CPU seconds. (Lambda gives a function its vCPUs alone, so there it costs nothing.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

RESULTS = ROOT / "bench" / "results" / "latest.json"

MEASUREMENTS = [
    "api_import_s", "boto3_import_s",
    "api_p50_ms", "api_p99_ms", "db_roundtrip_ms", "api_p50_strict_ms", "api_p50_lenient_ms",
    "transcode_step_s", "ffmpeg_single_s", "ffmpeg_per_rendition_s",
    "transcribe_step_s", "whisper_direct_s", "audio_s",
    "embed_sentences_per_s",
    "search_p95_ms",
    "dedup_lookup_ms",
    "e2e_ready_s", "e2e_stage_sum_s",
]

# (name, numerator, denominator or None, target, unit note)
RATIOS = [
    ("api_import_s/boto3_import_s", "api_import_s", "boto3_import_s", 1.3),
    ("transcode_step_s/min(ffmpeg_single_s,ffmpeg_per_rendition_s)", "transcode_step_s", "ffmpeg_min", 1.10),
    ("transcribe_step_s/whisper_direct_s", "transcribe_step_s", "whisper_direct_s", 1.15),
    ("transcribe_step_s/audio_s", "transcribe_step_s", "audio_s", 0.2),
    ("e2e_ready_s/e2e_stage_sum_s", "e2e_ready_s", "e2e_stage_sum_s", 1.25),
    ("search_p95_ms", "search_p95_ms", None, 50.0),
    ("dedup_lookup_ms", "dedup_lookup_ms", None, 20.0),
    ("api_p50_ms/db_roundtrip_ms", "api_p50_ms", "db_roundtrip_ms", 5.0),
    # The strict stack's per-route role must not slow the API by more than 10 %.
    ("api_p50_strict_ms/api_p50_lenient_ms", "api_p50_strict_ms", "api_p50_lenient_ms", 1.10),
    # time to playable of a 12 s 720p clip as a share of its length (issue 19: 0.45x)
    ("playable_fanout_s/clip length", "playable_fanout_x_length", None, 0.45),
    ("playable_fanout_s/playable_serial_s", "playable_fanout_s", "playable_serial_s", 1.0),
]

SPEECH = [
    "We need to capture the flag before the timer runs out.",
    "Please stay behind the wall and wait for my signal.",
    "The blue team is moving to the north side of the map.",
    "Grab the health pack on the left and follow me.",
    "There is a sniper on the roof of the red building.",
    "Reload now and cover the bridge while I push forward.",
    "Their tank is almost down, keep shooting at the back.",
    "I found a rare weapon in the crate near the tower.",
    "Watch out for the grenade, it landed right behind you.",
    "We won the round, get ready for the next match.",
    "Someone should defend the base while we attack.",
    "The storm is closing in, move toward the center now.",
    "I only have one life left, so I will play it safe.",
    "Nice shot, that was the last player on their team.",
]

VOCAB = ("flag capture timer wall signal blue red team north south map health pack left right "
         "sniper roof building reload cover bridge push tank shoot crate tower weapon grenade "
         "round match defend base attack storm center life safe shot player enemy boss level "
         "spawn respawn loot armor shield heal revive drop zone objective point score win lose "
         "rush flank camp rotate ammo scope rifle pistol shotgun rocket jump crouch sprint").split()

QUERIES = ["capture the flag", "sniper on the roof", "reload and cover", "north side of the map",
           "health pack", "grenade behind you", "defend the base", "storm closing in",
           "nice shot", "rare weapon crate", "tank almost down", "wait for my signal",
           "last player", "move to the center", "push forward"]

results: dict = {k: None for k in MEASUREMENTS}
extra: dict = {"machine": {}, "versions": {}, "ratios": {}}
notes: dict[str, str] = {}
errors: dict[str, str] = {}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ratios() -> dict:
    vals = dict(results)
    fs, fp = results.get("ffmpeg_single_s"), results.get("ffmpeg_per_rendition_s")
    vals["ffmpeg_min"] = min(x for x in (fs, fp) if x is not None) if (fs or fp) else None
    out = {}
    for name, num, den, target in RATIOS:
        a = vals.get(num)
        b = vals.get(den) if den else 1.0
        value = (a / b) if (a is not None and b) else None
        out[name] = {"value": None if value is None else round(value, 4), "target": target,
                     "met": None if value is None else value <= target}
    return out


def save() -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    extra["ratios"] = ratios()
    doc = {**{k: results[k] for k in MEASUREMENTS}, **extra}
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(RESULTS)


SECTIONS = ("imports", "api", "embed", "search", "dedup", "transcribe", "e2e", "playable", "playable_long",
            "transcode", "hash_stream", "catalog", "scale", "capacity")
DEFAULT_OFF = {"playable_long"}   # opt-in: --only playable_long


def parse_args(argv: list[str]) -> set[str]:
    """The sections to run: all of them, or those named by --only (comma separated).

    A partial run writes its own file (--out, default in the temp dir), so
    bench/results/latest.json always holds a full run.
    """
    import argparse
    global RESULTS
    parser = argparse.ArgumentParser(description="Clipstream benchmarks (see bench/README.md)")
    parser.add_argument("--only", help=f"comma separated sections out of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, help="where to write the results")
    args = parser.parse_args(argv)
    only = set(SECTIONS) - DEFAULT_OFF if not args.only else {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    if args.out:
        RESULTS = args.out.resolve()
    elif only != set(SECTIONS) - DEFAULT_OFF:
        RESULTS = Path(tempfile.gettempdir()) / "clipstream-bench-partial.json"
    return only


def section(name: str):
    """Run a measurement section; a failure is logged and leaves its keys null."""
    def deco(fn):
        def run(*a, **kw):
            log(f"{name} ...")
            t0 = time.perf_counter()
            try:
                fn(*a, **kw)
            except Exception as exc:  # keep going: partial results beat none
                errors[name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
                log(f"{name} FAILED: {errors[name]}")
            log(f"{name} done in {time.perf_counter() - t0:.1f} s"
                f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
            save()
        return run
    return deco


def median(xs):
    return statistics.median(xs)


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def r(x, n=4):
    return None if x is None else round(x, n)


# ---------------------------------------------------------------- machine and versions

def machine_info() -> None:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    extra["machine"] = {"cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 ** 2, 1),
                        "python": platform.python_version(), "platform": platform.platform()}


def versions() -> None:
    from chalicelib import db
    from chalicelib.media.ffmpeg import ffmpeg_version
    v = {}
    for name, get in [("ffmpeg", ffmpeg_version),
                      ("faster_whisper", lambda: __import__("faster_whisper").__version__),
                      ("onnxruntime", lambda: __import__("onnxruntime").__version__),
                      ("postgres", lambda: db.fetch_one("SELECT version() AS v")["v"])]:
        try:
            v[name] = get()
        except Exception as exc:
            v[name] = f"unknown ({type(exc).__name__}: {exc})"
    extra["versions"] = v


# ---------------------------------------------------------------- import times

IMPORT_SNIPPET = ("import sys, time; sys.path.insert(0, {root!r}); t = time.perf_counter(); "
                  "import {mod}; print(repr(time.perf_counter() - t))")


def lambda_env(stack) -> dict:
    cfg = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "AWS_LAMBDA_FUNCTION_NAME": "clipstream-local", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
           "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "LAMBDA_TASK_ROOT": str(ROOT),
           **cfg.get("environment_variables", {}),
           **cfg["stages"]["local"].get("environment_variables", {}),
           **stack.env}
    return env


def import_time(mod: str, env: dict, runs: int = 5) -> list[float]:
    code = IMPORT_SNIPPET.format(root=str(ROOT), mod=mod)
    times = []
    for i in range(runs + 1):  # the first run only warms the page cache and .pyc files
        out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=env,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"import {mod} failed: {out.stderr[-2000:]}")
        if i:
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


@section("imports")
def bench_imports(stack) -> None:
    env = lambda_env(stack)
    app_t, boto_t = [], []
    for _ in range(5):  # interleaved, so drift hits both alike
        app_t += import_time("app", env, runs=1)
        boto_t += import_time("boto3", env, runs=1)
    results["api_import_s"] = r(median(app_t))
    results["boto3_import_s"] = r(median(boto_t))
    log(f"  app import {app_t}  boto3 import {boto_t}")


# ---------------------------------------------------------------- helpers on the stack

def sign_in(client, stack, email: str | None = None) -> dict:
    email = email or f"bench-{uuid.uuid4().hex[:10]}@example.com"
    resp = client.http.post("/auth/verify", headers={"Content-Type": "application/json"},
                            body=json.dumps({"id_token": stack.google_key.mint(email, "Bench User")}))
    assert resp.status_code == 200, resp.body
    body = json.loads(resp.body)
    body["headers"] = {"Authorization": f"Bearer {body['app_token']}",
                       "Content-Type": "application/json"}
    return body


def insert_video(stream_id, user_id, title="clip", ext="mp4", **cols) -> dict:
    from chalicelib import db, storage
    vid = str(uuid.uuid4())
    names = ["id", "stream_id", "uploaded_by", "title", "filename", "content_type", "ext",
             "size_bytes", "raw_key", *cols]
    values = [vid, stream_id, user_id, title, f"{title}.{ext}", "video/mp4", ext, 0,
              storage.raw_key(vid, ext), *cols.values()]
    return db.fetch_one(f"INSERT INTO videos ({', '.join(names)}) VALUES"
                        f" ({', '.join(['%s'] * len(names))}) RETURNING *", values)


def upload_raw(video: dict, path: Path) -> str:
    """Store a step's input outside raw-uploads/; its key (what the step's envelope names).

    Under the video's raw_key the upload trigger would start a whole pipeline
    execution for the video, running beside the step being measured (earlier
    runs measured exactly that: a transcode step at 2x direct FFmpeg).
    """
    from chalicelib import storage
    from chalicelib.config import get_settings
    key = f"bench-inputs/{video['id']}.{video['ext']}"
    storage.s3_client().upload_file(str(path), get_settings().bucket, key)
    return key


# ---------------------------------------------------------------- API latency

@section("api")
def bench_api(stack, client) -> None:
    from chalicelib import db
    me = sign_in(client, stack)
    resp = client.http.post("/streams", headers=me["headers"], body=json.dumps({"name": "bench api"}))
    assert resp.status_code in (200, 201), resp.body
    stream_id = json.loads(resp.body)["id"]
    ids = [str(insert_video(stream_id, me["user"]["id"], title=f"api clip {i}",
                            processing_index=0, status="complete", duration_s=12.0)["id"])
           for i in range(25)]
    paths = [f"/streams/{stream_id}/videos"] + [f"/videos/{i}" for i in ids]
    rng = random.Random(1)
    # warm up routes, auth, connection
    for p in paths[:5]:
        assert client.http.get(p, headers=me["headers"]).status_code == 200
    lat, between = [], []
    for i in range(300):
        p = paths[0] if i % 2 == 0 else rng.choice(paths[1:])
        t = time.perf_counter()
        resp = client.http.get(p, headers=me["headers"])
        lat.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (p, resp.status_code, resp.body)
        if i % 10 == 0:  # diagnostic only: a SELECT 1 between requests, as a route's statements run
            t = time.perf_counter()
            db.fetch_one("SELECT 1")
            between.append((time.perf_counter() - t) * 1000)
    db_lat = []
    for _ in range(300):
        t = time.perf_counter()
        db.fetch_one("SELECT 1")
        db_lat.append((time.perf_counter() - t) * 1000)
    # The strict local stack (each route acting as its route group's role) against the same
    # routes without it, interleaved in blocks so drift hits both alike.
    from chalicelib.config import reset_settings
    strict_env = os.environ.get("LOCAL_API_CREDENTIALS", "")
    strict, lenient = [], []
    for block in range(6):
        lenient_block = block % 2 == 1
        if lenient_block:
            os.environ.pop("LOCAL_API_CREDENTIALS", None)
        else:
            os.environ["LOCAL_API_CREDENTIALS"] = strict_env
        reset_settings()
        for i in range(100):
            p = paths[0] if i % 2 == 0 else rng.choice(paths[1:])
            t = time.perf_counter()
            resp = client.http.get(p, headers=me["headers"])
            (lenient if lenient_block else strict).append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, (p, resp.status_code, resp.body)
    os.environ["LOCAL_API_CREDENTIALS"] = strict_env
    reset_settings()
    results["api_p50_strict_ms"] = r(median(strict), 3)
    results["api_p50_lenient_ms"] = r(median(lenient), 3)
    results["api_p50_ms"] = r(median(lat), 3)
    results["api_p99_ms"] = r(pct(lat, 99), 3)
    results["db_roundtrip_ms"] = r(median(db_lat), 3)
    notes["api"] = (f"p50 list {median(lat[0::2]):.3f} ms, video {median(lat[1::2]):.3f} ms;"
                    f" SELECT 1 {median(db_lat):.3f} ms back to back, {median(between):.3f} ms"
                    " between requests")
    log(f"  api: {notes['api']}")


# ---------------------------------------------------------------- embeddings

@section("embed")
def bench_embed() -> None:
    import numpy as np
    from chalicelib.ml.embed import get_encoder
    enc = get_encoder()
    rng = random.Random(2)
    texts = [" ".join(rng.choice(VOCAB) for _ in range(rng.randint(6, 20))) for _ in range(1000)]
    enc.encode(texts[:32])  # warm
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        vecs = enc.encode(texts)
        runs.append(time.perf_counter() - t)
    assert np.asarray(vecs).shape[0] == 1000
    results["embed_sentences_per_s"] = r(1000 / median(runs), 1)
    notes["embed"] = f"runs {runs}"


# ---------------------------------------------------------------- 10k clips: search and dedup

def unit_vectors(n: int, dim: int, seed: int):
    import numpy as np
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def vec_text(v) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def seed_10k(n: int = 10_000) -> dict:
    import psycopg2.extras
    from chalicelib import db
    user = db.fetch_one("INSERT INTO users (email, name) VALUES (%s, %s) RETURNING *",
                        (f"bench-10k-{uuid.uuid4().hex[:8]}@example.com", "Bench 10k"))
    with db.transaction() as cur:
        cur.execute("INSERT INTO streams (name, owner_id) VALUES (%s, %s) RETURNING *",
                    ("bench 10k", user["id"]))
        stream = cur.fetchone()
        cur.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, 'admin')",
                    (stream["id"], user["id"]))
    rng = random.Random(3)
    ids = [str(uuid.uuid4()) for _ in range(n)]
    t0 = time.perf_counter()
    emb = unit_vectors(n, 384, 4)
    sig = unit_vectors(n, 128, 5)
    conn = db.connection()
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO videos (id, stream_id, uploaded_by, title, filename, content_type, ext,"
            " size_bytes, raw_key, processing_index, status, duration_s, uploaded_at) VALUES %s",
            [(vid, stream["id"], user["id"], " ".join(rng.choice(VOCAB) for _ in range(3)),
              "c.mp4", "video/mp4", "mp4", 1000, f"raw-uploads/{vid}.mp4", 0, "complete", 12.0)
             for vid in ids],
            template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() - interval '2 days' * random())",
            page_size=1000)
        psycopg2.extras.execute_values(
            cur, "INSERT INTO transcript_segments (video_id, idx, start_s, end_s, text, words, embedding)"
                 " VALUES %s",
            [(vid, 0, 1.0, 5.0, " ".join(rng.choice(VOCAB) for _ in range(rng.randint(8, 24))), "[]",
              vec_text(emb[i])) for i, vid in enumerate(ids)],
            template="(%s, %s, %s, %s, %s, %s::jsonb, %s::vector)", page_size=500)
        small_sig = json.dumps({"duration_s": 12.0})
        psycopg2.extras.execute_values(
            cur, "INSERT INTO video_signatures (video_id, vector, signature, duration_s) VALUES %s",
            [(vid, vec_text(sig[i]), small_sig, 12.0) for i, vid in enumerate(ids)],
            template="(%s, %s::vector, %s::jsonb, %s)", page_size=500)
    with conn, conn.cursor() as cur:
        cur.execute("ANALYZE videos; ANALYZE transcript_segments; ANALYZE video_signatures")
    log(f"  seeded {n} videos + segments + signatures in {time.perf_counter() - t0:.1f} s")
    # The clip being deduplicated: uploaded after all the others, in the same stream.
    probe_video = insert_video(stream["id"], user["id"], title="dedup probe", processing_index=1,
                               status="running")
    return {"user": user, "stream": stream, "probe": probe_video}


@section("search")
def bench_search(data: dict) -> None:
    from chalicelib.api import search
    user = data["user"]
    for q in QUERIES[:3]:  # warm: connection, embed_query function's model
        search.search(user, {"q": q}, 1, 20)
    lat, semantic = [], 0
    for i in range(50):
        q = QUERIES[i % len(QUERIES)]
        t = time.perf_counter()
        out = search.search(user, {"q": q}, 1, 20)
        lat.append((time.perf_counter() - t) * 1000)
        semantic += bool(out["semantic"])
    results["search_p95_ms"] = r(pct(lat, 95), 3)
    notes["search"] = f"p50 {median(lat):.1f} ms, semantic in {semantic}/50"
    # Where the time goes (cheap): the query embedding vs the SQL.
    qv = []
    for q in QUERIES[:10]:
        t = time.perf_counter()
        search.query_vector(q)
        qv.append((time.perf_counter() - t) * 1000)
    notes["search"] += f", embed_query invoke p50 {median(qv):.1f} ms"
    # Cheap breakdown of the three rankings (diagnostic only, not a reported key).
    uid = str(user["id"])
    parts = {"keyword": [], "title": [], "semantic": []}
    for q in QUERIES[:10]:
        vec = search.query_vector(q)
        for name, fn, arg in (("keyword", search._keyword_hits, q), ("title", search._title_hits, q),
                              ("semantic", search._semantic_hits, vec)):
            t = time.perf_counter()
            fn(uid, arg)
            parts[name].append((time.perf_counter() - t) * 1000)
    notes["search"] += ", " + ", ".join(f"{k} p50 {median(v):.1f} ms" for k, v in parts.items())
    log(f"  search: {notes['search']}")


@section("dedup")
def bench_dedup(data: dict) -> None:
    from chalicelib.pipeline import dedup
    vid = str(data["probe"]["id"])
    qs = unit_vectors(60, 128, 6)
    for v in qs[:5]:
        dedup.near_candidates(vid, [float(x) for x in v])
    lat, found = [], []
    for v in qs[10:60]:
        t = time.perf_counter()
        rows = dedup.near_candidates(vid, [float(x) for x in v])
        lat.append((time.perf_counter() - t) * 1000)
        found.append(len(rows))
    results["dedup_lookup_ms"] = r(median(lat), 3)
    notes["dedup"] = f"p95 {pct(lat, 95):.1f} ms, candidates returned min {min(found)}"
    log(f"  dedup: {notes['dedup']}")


# ---------------------------------------------------------------- streamed content hash (issue 5)

HASH_STREAM_RESULTS = ROOT / "bench" / "results" / "hash_stream.json"


@section("hash_stream")
def bench_hash_stream() -> None:
    """The dedup step's download+hash on large objects: own file, not a latest.json key."""
    from bench import hash_stream
    from chalicelib import storage
    from chalicelib.config import get_settings

    sizes = [int(x) for x in os.environ.get("BENCH_HASH_MB", "64,1024").split(",")]
    report = hash_stream.run(storage.s3_client(), get_settings().bucket, sizes)
    report["machine"] = extra["machine"]
    HASH_STREAM_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for x in report["runs"]:
        log(f"  {x['size_bytes'] / 2**20:.0f} MiB: {x['seconds']} s ({x['mb_per_s']} MiB/s),"
            f" peak RSS {x['peak_rss_mb']} MB (+{x['rss_growth_mb']} MB over the idle child),"
            f" Python peak {x['python_peak_mb']} MB")
    notes["hash_stream"] = (f"largest {report['largest_mb']} MiB, RSS growth spread"
                            f" {report['rss_growth_spread_mb']} MB -> {HASH_STREAM_RESULTS.name}")


# ---------------------------------------------------------------- the catalog at 100,000 videos (issue 21)

CATALOG_RESULTS = ROOT / "bench" / "results" / "catalog.json"


@section("catalog")
def bench_catalog() -> None:
    """GET /videos p95 over a query mix at 100,000 videos: own file, not a latest.json key."""
    from bench import catalog
    report = catalog.run()
    report["machine"] = extra["machine"]
    report["met"] = report["catalog_p95_ms"] <= report["target_p95_ms"]
    CATALOG_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    slowest = max(report["queries"].items(), key=lambda kv: kv[1]["max_ms"])
    notes["catalog"] = (f"p95 {report['catalog_p95_ms']} ms, p50 {report['catalog_p50_ms']} ms over "
                        f"{len(report['queries'])} queries x 20 (target 50 ms); slowest {slowest[0]} "
                        f"max {slowest[1]['max_ms']} ms -> {CATALOG_RESULTS.name}")
    log(f"  catalog: {notes['catalog']}")


# ---------------------------------------------------------------- search and dedup at 100,000 clips (issue 19)

SCALE_RESULTS = ROOT / "bench" / "results" / "scale.json"


@section("scale")
def bench_scale() -> None:
    """Search p95 and dedup lookup at 10,000 then 100,000 clips in one run: own file, not latest.json."""
    from bench import scale
    sizes = tuple(int(x) for x in os.environ.get("BENCH_SCALE_SIZES", "10000,100000").split(","))
    report = scale.run(QUERIES, VOCAB, sizes=sizes, log=log)
    report["machine"] = extra["machine"]
    SCALE_RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    notes["scale"] = {k: v for k, v in report["targets"].items()}
    log(f"  scale: {notes['scale']}")


# ---------------------------------------------------------------- database statements per request (issue 19)

CAPACITY_RESULTS = ROOT / "bench" / "results" / "capacity.json"


@section("capacity")
def bench_capacity(stack, client, work: Path) -> None:
    """Statements and their time per hot request and per pipeline run: bench/results/capacity.json."""
    from bench import capacity, invocations
    from chalicelib.api import ratelimit
    from tests.media import clips as media_clips

    me = sign_in(client, stack)
    resp = client.http.post("/streams", headers=me["headers"], body=json.dumps({"name": "bench capacity"}))
    stream_id = json.loads(resp.body)["id"]
    ids = [str(insert_video(stream_id, me["user"]["id"], title=f"capacity clip {i}", processing_index=0,
                            status="complete", duration_s=12.0)["id"]) for i in range(25)]
    rng = random.Random(9)
    hdr = me["headers"]

    def upload(i: int):
        return client.http.post(f"/streams/{stream_id}/videos", headers=hdr, body=json.dumps(
            {"title": f"capacity upload {i}", "filename": "c.mp4", "size_bytes": 1_000_000,
             "content_type": "video/mp4"}))

    kinds = {
        "clip page view (GET /videos/{id})": lambda i: client.http.get(f"/videos/{rng.choice(ids)}", headers=hdr),
        "search (GET /search?q=)": lambda i: client.http.get(
            "/search?q=" + QUERIES[i % len(QUERIES)].replace(" ", "+"), headers=hdr),
        "view count (POST /videos/{id}/views)": lambda i: client.http.post(
            f"/videos/{rng.choice(ids)}/views", headers=hdr, body="{}"),
        "upload (POST /streams/{id}/videos)": upload,
    }
    report: dict = {"requests": {}, "instance": capacity.INSTANCE}
    with capacity.counting() as ledger:
        for name, call in kinds.items():
            for i in range(3):  # warm: routes, connection, the embed_query function
                call(i)
            samples = []
            for i in range(40):
                with ledger.as_label(name):
                    resp = call(i)
                assert resp.status_code < 300, (name, resp.status_code, resp.body)
                samples.append(ledger.take(name))
            report["requests"][name] = capacity.summary(samples)
        samples = []
        for i in range(40):
            with ledger.as_label("rate-limit check"):
                ratelimit.hit(f"bench:{i % 5}", 1000, 60)
            samples.append(ledger.take("rate-limit check"))
        report["requests"]["rate-limit check (every request; counted in each above)"] = capacity.summary(samples)
        # One whole pipeline run (fanned out), statements per function.
        from tests.ml import clips as speech
        talk = speech.speech_clip(work / "capacity_talk.wav", SPEECH[:2], seed=8)
        data = media_clips.make_clip(work / "capacity.mp4", scene="testsrc2", duration=12.0,
                                     size=(1280, 720), bed=talk.path).read_bytes()
        with invocations.recording():
            _, video_id = _playable_once(stack, client, me, data, "fanout", "capacity")
            time.sleep(1.0)  # Finalize's last statements land after the API answers 200
        pipeline = {}
        for label in [k for k in list(ledger.rows) if k.startswith("pipeline:")]:
            rows = ledger.take(label)
            pipeline[label.split(":", 1)[1]] = {"statements": len(rows),
                                                "db_ms": round(sum(t for _, t in rows) * 1000, 2)}
        report["pipeline_run"] = {"clip": "12 s 720p, fanned out", "per_function": pipeline,
                                  "statements": sum(x["statements"] for x in pipeline.values()),
                                  "db_ms": round(sum(x["db_ms"] for x in pipeline.values()), 2)}
    for name, x in report["requests"].items():
        x["saturates_at_per_s"] = round(capacity.saturation(x["db_ms_median"]))
    run_ms = report["pipeline_run"]["db_ms"]
    report["pipeline_run"]["saturates_at_uploads_per_s"] = round(capacity.saturation(run_ms), 1)
    report["machine"] = extra["machine"]
    report["load_average"] = os.getloadavg()[0]
    CAPACITY_RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    notes["capacity"] = {k: (v["statements"], v["db_ms_median"]) for k, v in report["requests"].items()}
    log(f"  capacity: {notes['capacity']}; pipeline run {report['pipeline_run']['statements']} statements,"
        f" {run_ms} ms")


# ---------------------------------------------------------------- transcribe

@section("transcribe")
def bench_transcribe(work: Path) -> None:
    from faster_whisper import WhisperModel  # noqa: F401
    from chalicelib import db
    from chalicelib.ml import transcribe as ml
    from chalicelib.pipeline import transcribe as step
    from tests.ml import clips as speech

    talk = speech.speech_clip(work / "speech60.wav", SPEECH[:11], seed=9)  # about 60 s
    mp4 = speech.to_mp4(talk.path, work / "speech60.mp4")
    wav = ml.extract_audio(mp4, work / "speech60_16k.wav")
    import wave
    with wave.open(str(wav)) as w:
        audio_s = w.getnframes() / w.getframerate()
    results["audio_s"] = r(audio_s, 3)

    model = ml.get_model()  # the process-wide model both paths use: load once
    # The step passes the stream's glossary (here the default one) as hotwords: so does direct.
    from chalicelib import glossary
    options = {**ml.TRANSCRIBE_OPTIONS, **ml.glossary_options(glossary.effective([]))}
    list(model.transcribe(str(wav), **options)[0])  # warm

    user = db.fetch_one("INSERT INTO users (email, name) VALUES (%s, %s) RETURNING *",
                        (f"bench-tr-{uuid.uuid4().hex[:8]}@example.com", "Bench"))
    stream = db.fetch_one("INSERT INTO streams (name, owner_id) VALUES (%s, %s) RETURNING *",
                          ("bench transcribe", user["id"]))
    from chalicelib.pipeline import dedup, media_io

    step_t, direct_t = [], []
    parts: dict[str, float] = {}  # diagnostic: where the step's time goes
    from chalicelib import storage
    targets = ((media_io, "fetch_if_present"), (ml, "transcribe"), (step, "store"),
               (storage, "delete"))
    for i in range(5):
        def direct():
            t = time.perf_counter()
            segs, _info = model.transcribe(str(wav), **options)
            n = sum(1 for _ in segs)
            direct_t.append(time.perf_counter() - t)
            return n

        if i % 2 == 0:  # alternate the order so drift in machine load hits both alike
            n = direct()
        video = insert_video(stream["id"], user["id"], title=f"speech {i}", processing_index=2,
                             status="running")
        key = upload_raw(video, mp4)
        # The envelope transcribe gets in the pipeline: dedup's speech WAV hand-over (untimed).
        envelope = {"video_id": str(video["id"]), "key": key,
                    **dedup._hand_over_speech(str(video["id"]), wav)}
        assert envelope.get("speech_audio_key"), envelope
        with phase_times(targets, parts):
            t = time.perf_counter()
            out = step.run(envelope)
            step_t.append(time.perf_counter() - t)
        if i % 2 == 1:
            n = direct()
        assert out["transcript"]["segments"] > 0, out
        log(f"  run {i}: step {step_t[-1]:.2f} s ({out['transcript']['segments']} segments),"
            f" direct {direct_t[-1]:.2f} s ({n} segments)")
    # Diagnostic: the fallback without dedup's speech WAV (download + decode the upload).
    video = insert_video(stream["id"], user["id"], title="speech fallback", processing_index=3,
                         status="running")
    key = upload_raw(video, mp4)
    t = time.perf_counter()
    step.run({"video_id": str(video["id"]), "key": key})
    fallback = time.perf_counter() - t
    results["transcribe_step_s"] = r(median(step_t))
    results["whisper_direct_s"] = r(median(direct_t))
    notes["transcribe"] = (f"step {[round(x, 3) for x in step_t]}, direct {[round(x, 3) for x in direct_t]},"
                           f" without the speech WAV hand-over {fallback:.3f} s, model threads {ml._threads()}")
    notes["transcribe_parts"] = {k: round(v / len(step_t), 3) for k, v in parts.items()}


# ---------------------------------------------------------------- end to end

@section("e2e")
def bench_e2e(stack, client, work: Path) -> None:
    import requests
    from chalicelib import db
    from tests.media import clips as media_clips
    from tests.ml import clips as speech

    talk = speech.speech_clip(work / "e2e_talk.wav", SPEECH[:2], seed=5)
    length = max(12.0, talk.offsets[-1] + talk.durations[-1] + speech.GAP_S)
    src = media_clips.make_clip(work / "e2e.mp4", scene="testsrc2", duration=12.0,
                                size=(1280, 720), bed=talk.path)
    data = src.read_bytes()
    me = sign_in(client, stack)
    resp = client.http.post("/streams", headers=me["headers"], body=json.dumps({"name": "bench e2e"}))
    stream_id = json.loads(resp.body)["id"]
    ready, stage_sum = [], []
    for i in range(1):
        t = time.perf_counter()
        resp = client.http.post(f"/streams/{stream_id}/videos", headers=me["headers"], body=json.dumps(
            {"title": f"e2e {i}", "filename": "e2e.mp4", "size_bytes": len(data),
             "content_type": "video/mp4"}))
        assert resp.status_code == 201, resp.body
        created = json.loads(resp.body)
        put = requests.put(created["upload_url"], data=data, headers={"Content-Type": "video/mp4"},
                           timeout=60)
        assert put.status_code == 200, put.text
        deadline = time.monotonic() + 300
        row = None
        while time.monotonic() < deadline:
            row = db.fetch_one("SELECT processing_index, status, failure_reason FROM videos WHERE id = %s",
                               (created["id"],))
            if row["processing_index"] == 0 or row["status"] in ("failed", "duplicate"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
        assert row and row["processing_index"] == 0, row
        ready.append(elapsed)
        runs = db.fetch_all("SELECT stage, extract(epoch FROM finished_at - started_at) AS s,"
                            " started_at, finished_at FROM stage_runs WHERE video_id = %s"
                            " ORDER BY started_at", (created["id"],))
        stage_sum.append(sum(float(x["s"] or 0) for x in runs))
        log(f"  e2e {i}: ready {elapsed:.2f} s; stages " +
            ", ".join(f"{x['stage']} {float(x['s'] or 0):.2f}" for x in runs))
        notes["e2e"] = {x["stage"]: round(float(x["s"] or 0), 3) for x in runs}
    results["e2e_ready_s"] = r(median(ready))
    results["e2e_stage_sum_s"] = r(median(stage_sum))


# ---------------------------------------------------------------- time to playable

PLAYABLE_RUNS = 2
AWS_SIM_RESULTS = ROOT / "bench" / "results" / "aws_sim.json"
# name -> (seconds, size, runs per shape, in the default bench)
PLAYABLE_CLIPS = {"12s_720p": (12.0, (1280, 720), PLAYABLE_RUNS),
                  "60s_1080p": (60.0, (1920, 1080), 1),
                  "600s_1080p": (600.0, (1920, 1080), 1)}


def _playable_once(stack, client, me: dict, data: bytes, shape: str, label: str) -> tuple[float, str]:
    """Upload complete -> GET /videos/{id}/stream 200 on the whole stack; (seconds, video id)."""
    import requests
    from chalicelib.config import reset_settings

    # A stream of its own per run: the same bytes in one stream would be a duplicate.
    resp = client.http.post("/streams", headers=me["headers"],
                            body=json.dumps({"name": f"bench playable {label}"}))
    stream_id = json.loads(resp.body)["id"]
    os.environ["PIPELINE_SHAPE"] = shape
    reset_settings()
    try:
        resp = client.http.post(f"/streams/{stream_id}/videos", headers=me["headers"], body=json.dumps(
            {"title": f"playable {label}", "filename": "playable.mp4", "size_bytes": len(data),
             "content_type": "video/mp4"}))
        assert resp.status_code == 201, resp.body
        created = json.loads(resp.body)
        put = requests.put(created["upload_url"], data=data,
                           headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=300)
        assert put.status_code == 200, put.text
        t = time.perf_counter()   # upload complete
        deadline = time.monotonic() + 3600
        status = None
        while time.monotonic() < deadline:
            status = client.http.get(f"/videos/{created['id']}/stream", headers=me["headers"]).status_code
            if status == 200 or status >= 400:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
    finally:
        os.environ.pop("PIPELINE_SHAPE", None)
        reset_settings()
    assert status == 200, status
    return elapsed, created["id"]


def _stage_runs(video_id: str) -> list[dict]:
    from chalicelib import db
    rows = db.fetch_all("SELECT stage, status, extract(epoch FROM started_at) AS t0,"
                        " extract(epoch FROM finished_at - started_at) AS s FROM stage_runs"
                        " WHERE video_id = %s ORDER BY started_at", (video_id,))
    first = float(rows[0]["t0"]) if rows else 0.0
    return [{"stage": x["stage"], "status": x["status"], "start_s": round(float(x["t0"]) - first, 3),
             "seconds": round(float(x["s"] or 0), 3)} for x in rows]


def _simulate(records, video_id: str, shape: str) -> dict:
    """The execution's tree from its measured invocations, replayed at Map concurrency 1 and the template's."""
    from bench import aws_sim, invocations
    from infra.aws import functions as fns

    invs = invocations.for_video(records, video_id)
    names: dict[str, int] = {}
    task_list = []
    for inv in invs:
        names[inv.function] = names.get(inv.function, 0) + 1
        task_list.append(inv.task(f"{inv.function}#{names[inv.function]}"))
    functions = aws_sim.deployed_functions()
    params = aws_sim.Params(map_concurrency=fns.CHUNK_CONCURRENCY)
    tree = aws_sim.execution_tree(task_list, shape)
    out = {"map_concurrency_1": aws_sim.report(aws_sim.with_map_concurrency(tree, 1), functions, params),
           f"map_concurrency_{fns.CHUNK_CONCURRENCY}": aws_sim.report(tree, functions, params)}
    out["stage_runs"] = _stage_runs(video_id)
    return out


def _playable_clips(stack, client, work: Path, names: list[str], shapes=("serial", "fanout")) -> None:
    from bench import invocations
    from tests.media import clips as media_clips
    from tests.ml import clips as speech

    talk = speech.speech_clip(work / "playable_talk.wav", SPEECH[:2], seed=7)
    me = sign_in(client, stack)
    doc = json.loads(AWS_SIM_RESULTS.read_text()) if AWS_SIM_RESULTS.exists() else {}
    doc["functions"] = {k: {"memory_mb": v.memory_mb, "image": v.image}
                        for k, v in __import__("bench.aws_sim", fromlist=["x"]).deployed_functions().items()
                        if k.startswith("pipeline_")}
    doc["machine"] = extra["machine"]
    doc.setdefault("clips", {})
    for name in names:
        length, size, runs = PLAYABLE_CLIPS[name]
        t = time.perf_counter()
        src = media_clips.make_clip(work / f"playable_{name}.mp4", scene="testsrc2", duration=length,
                                    size=size, bed=talk.path if length <= 12 else None, seed=11)
        data = src.read_bytes()
        log(f"  made the {name} clip ({len(data) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        times: dict[str, list[float]] = {s: [] for s in shapes}
        sims: dict[str, dict] = {}
        order = [shape for i in range(runs) for shape in (shapes if i % 2 == 0 else shapes[::-1])]
        for n, shape in enumerate(order):
            with invocations.recording() as records:
                elapsed, video_id = _playable_once(stack, client, me, data, shape, f"{name} {n}")
            times[shape].append(elapsed)
            sims[shape] = _simulate(records, video_id, shape)
            sim40 = sims[shape][[k for k in sims[shape] if k.startswith("map_concurrency_") and k != "map_concurrency_1"][0]]
            log(f"  playable {name} {shape}: {elapsed:.2f} s ({elapsed / length:.3f}x of {length:g} s);"
                f" simulated on Lambda {sim40['simulated_s']:.2f} s"
                f" (Map at 1: {sims[shape]['map_concurrency_1']['simulated_s']:.2f} s);"
                f" critical path {' -> '.join(sim40['critical_path'])}")
        entry = {"length_s": length, "size": list(size), "bytes": len(data), "load_average": os.getloadavg()[0]}
        for shape in shapes:
            entry[shape] = {"measured_s": [r(x) for x in times[shape]], "median_s": r(median(times[shape])),
                            "x_length": r(median(times[shape]) / length), "simulation": sims[shape]}
        doc["clips"][name] = entry
        doc["targets"] = _aws_sim_targets(doc)
        AWS_SIM_RESULTS.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        if name == "12s_720p":
            results["playable_serial_s"] = r(median(times["serial"]))
            results["playable_fanout_s"] = r(median(times["fanout"]))
            results["playable_serial_x_length"] = r(median(times["serial"]) / length)
            results["playable_fanout_x_length"] = r(median(times["fanout"]) / length)
    doc["targets"] = _aws_sim_targets(doc)
    AWS_SIM_RESULTS.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _aws_sim_targets(doc: dict) -> dict:
    """Issue 19's targets, met or missed, from whatever clips the file holds."""
    from infra.aws import functions as fns
    key = f"map_concurrency_{fns.CHUNK_CONCURRENCY}"
    out = {}
    clips = doc.get("clips", {})
    if "12s_720p" in clips:
        v = clips["12s_720p"]["fanout"]["x_length"]
        out["here: 12 s 720p playable / length"] = {"value": v, "target": 0.45, "met": v <= 0.45}
    for name, target in (("60s_1080p", 6.0), ("600s_1080p", 20.0)):
        if name in clips and "fanout" in clips[name]:
            v = clips[name]["fanout"]["simulation"][key]["simulated_s"]
            out[f"AWS simulated: {name} playable (s)"] = {"value": v, "target": target, "met": v <= target}
    return out


@section("playable")
def bench_playable(stack, client, work: Path) -> None:
    """Upload complete -> GET /videos/{id}/stream 200, serial vs fanned-out machine (12 s 720p, 60 s 1080p),
    each execution also replayed by bench/aws_sim.py (bench/results/aws_sim.json)."""
    _playable_clips(stack, client, work, ["12s_720p", "60s_1080p"])


@section("playable_long")
def bench_playable_long(stack, client, work: Path) -> None:
    """The same for a 10-minute 1080p clip (opt-in: ~10 min per shape on 2 cores).

    BENCH_LONG_SHAPES=fanout runs the fanned-out (chunked) machine only.
    """
    shapes = tuple(x for x in os.environ.get("BENCH_LONG_SHAPES", "serial,fanout").split(",") if x)
    _playable_clips(stack, client, work, ["600s_1080p"], shapes=shapes)


# ---------------------------------------------------------------- transcode (slowest: last)

@section("transcode")
def bench_transcode(work: Path) -> None:
    """Two rounds in rotated order (single, per rendition, step; then step, per rendition,
    single): each value is the median of 2, so load drift hits all three alike."""
    from chalicelib import db
    from chalicelib.media import hls, probe, thumbnails
    from chalicelib.pipeline import media_io
    from chalicelib.pipeline import transcode as step
    from tests.media import clips as media_clips

    t = time.perf_counter()
    src = media_clips.make_clip(work / "src1080.mp4", size=(1920, 1080), duration=60, scene="testsrc2")
    log(f"  made the 60 s 1080p clip in {time.perf_counter() - t:.1f} s")
    info = probe.probe(src)
    user = db.fetch_one("INSERT INTO users (email, name) VALUES (%s, %s) RETURNING *",
                        (f"bench-tc-{uuid.uuid4().hex[:8]}@example.com", "Bench"))
    stream = db.fetch_one("INSERT INTO streams (name, owner_id) VALUES (%s, %s) RETURNING *",
                          ("bench transcode", user["id"]))
    walls: dict[str, list[float]] = {"single": [], "per_rendition": [], "step": []}
    cpu: dict[str, list[float]] = {"single": [], "per_rendition": [], "step": [], "python_in_step": []}
    parts: dict[str, float] = {}

    def single():
        hls.transcode_hls(src, work / "hls_single", info, timeout_s=3600)
        shutil.rmtree(work / "hls_single", ignore_errors=True)

    def per_rendition():
        hls.transcode_hls_per_rendition(src, work / "hls_per", info, timeout_s=3600)
        shutil.rmtree(work / "hls_per", ignore_errors=True)

    def in_step():
        video = insert_video(stream["id"], user["id"], title="transcode", processing_index=2,
                             status="running", duration_s=info.duration_s, width=info.width,
                             height=info.height)
        key = upload_raw(video, src)
        # Uploader.wait: time spent waiting for uploads once FFmpeg has exited.
        targets = ((media_io, "download"), (probe, "probe"), (hls, "transcode_hls"),
                   (thumbnails, "best_raw_frame"), (thumbnails, "representative_frame"),
                   (media_io.Uploader, "wait"), (media_io, "record_assets"))
        with phase_times(targets, parts):
            o0 = own_cpu()
            step.run({"video_id": str(video["id"]), "key": key})
            cpu["python_in_step"].append(round(own_cpu() - o0, 1))

    ways = {"single": single, "per_rendition": per_rendition, "step": in_step}
    for order in (("single", "per_rendition", "step"), ("step", "per_rendition", "single")):
        for name in order:
            c0, t = child_cpu(), time.perf_counter()
            ways[name]()
            walls[name].append(time.perf_counter() - t)
            cpu[name].append(round(child_cpu() - c0, 1))
            log(f"  {name}: {walls[name][-1]:.1f} s (FFmpeg CPU {cpu[name][-1]} s,"
                f" load {os.getloadavg()[0]:.1f})")
    results["ffmpeg_single_s"] = r(median(walls["single"]))
    results["ffmpeg_per_rendition_s"] = r(median(walls["per_rendition"]))
    results["transcode_step_s"] = r(median(walls["step"]))
    notes["transcode_parts"] = {k: round(v / len(walls["step"]), 2) for k, v in parts.items()}
    rounded = {k: [round(x, 1) for x in v] for k, v in walls.items()}
    notes["transcode"] = (f"wall s {rounded}; CPU s {cpu};"
                          f" load average at end {os.getloadavg()[0]:.1f}")


def child_cpu() -> float:
    """CPU seconds of finished child processes (FFmpeg)."""
    tm = os.times()
    return tm.children_user + tm.children_system


def own_cpu() -> float:
    """CPU seconds of this Python process (all threads: emulator, handlers, uploads)."""
    tm = os.times()
    return tm.user + tm.system


@contextlib.contextmanager
def phase_times(targets, parts: dict[str, float]):
    """Add the wall time spent in each (module or class, function name) to parts (diagnostic:
    wraps, never changes, what a step calls)."""
    originals = []
    for owner, name in targets:
        fn = getattr(owner, name)
        originals.append((owner, name, fn))

        def wrapper(*a, _fn=fn, _name=name, **kw):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                parts[_name] = parts.get(_name, 0.0) + time.perf_counter() - t0
        setattr(owner, name, wrapper)
    try:
        yield parts
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)


# ---------------------------------------------------------------- report

def table() -> str:
    lines = [f"{'measurement':<28}{'value':>14}"]
    lines.append("-" * 42)
    for k in MEASUREMENTS:
        v = results[k]
        lines.append(f"{k:<28}{'—' if v is None else v:>14}")
    lines.append("")
    lines.append(f"{'ratio / target':<64}{'value':>10}{'target':>9}  met")
    lines.append("-" * 88)
    for name, d in extra["ratios"].items():
        v = "—" if d["value"] is None else f"{d['value']:.3f}"
        met = {True: "yes", False: "NO", None: "n/a"}[d["met"]]
        lines.append(f"{name:<64}{v:>10}{d['target']:>9}  {met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import shutil as _sh
    from infra.local.stack import Stack, test_config

    import logging
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("werkzeug", "botocore", "moto", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    only = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    machine_info()
    save()
    work = Path(tempfile.mkdtemp(prefix="clipstream-bench-"))
    stack = Stack(test_config())
    try:
        log("starting the local stack ...")
        stack.start(api=False)
        log("stack up")
        versions()
        save()
        if "imports" in only:
            bench_imports(stack)

        from chalice.test import Client

        import app as app_module
        with Client(app_module.app, stage_name="local") as client:
            if "api" in only:
                bench_api(stack, client)
            if "embed" in only:
                bench_embed()
            if only & {"search", "dedup"}:
                log("seeding 10,000 clips ...")
                data = seed_10k()
                if "search" in only:
                    bench_search(data)
                if "dedup" in only:
                    bench_dedup(data)
            if "transcribe" in only:
                bench_transcribe(work)
            if "e2e" in only:
                bench_e2e(stack, client, work)
            if "playable" in only:
                bench_playable(stack, client, work)
            if "playable_long" in only:
                bench_playable_long(stack, client, work)
            if "capacity" in only:
                bench_capacity(stack, client, work)
        if "transcode" in only:
            bench_transcode(work)
        if "hash_stream" in only:
            bench_hash_stream()
        if "catalog" in only:
            bench_catalog()
        if "scale" in only:
            bench_scale()
    finally:
        log("stopping the stack ...")
        try:
            stack.stop()
        finally:
            _sh.rmtree(stack.config.data_dir, ignore_errors=True)
            _sh.rmtree(work, ignore_errors=True)
    save()
    total = time.perf_counter() - started
    print()
    print(table())
    print()
    for k, v in notes.items():
        print(f"note {k}: {v}")
    for k, v in errors.items():
        print(f"ERROR {k}: {v}")
    print(f"\nwrote {RESULTS}; total {total:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
