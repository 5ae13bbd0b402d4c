"""What each pipeline Lambda invocation cost on the local stack, for bench/aws_sim.py.

Bench-only probes, installed for the duration of `recording()` and removed
after; they wrap, never change, what the product calls:

- the emulator's handler lookup (infra/local/emulator.py Dispatcher.handler_for):
  each invocation gets an aws_sim.Totals, carried by its thread and by every
  thread that thread starts (upload pools, reader threads);
- subprocess.Popen: each FFmpeg child is reaped with os.wait4, so its own
  user + system CPU seconds (and its wall time) go to the invocation that ran it;
- chalicelib.storage's transfers: bytes and requests to and from S3;
- chalicelib.storage.presigned_get: a URL handed out inside an invocation (a chunk's source
  for FFmpeg) goes through a counting relay on 127.0.0.1, which forwards each request
  (its Range header kept) to the signed URL and counts the response bytes FFmpeg took and
  one S3 request per HTTP request;
- for the functions that run native ML thread pools (CTranslate2 for Whisper,
  ONNX Runtime for embeddings), the CPU of the process's non-Python threads
  while the invocation ran (/proc/self/task): in this bench only one such
  invocation runs at a time (the Speech branch is sequential, one upload at once).
"""
from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import urlsplit

from bench.aws_sim import Totals

_ATTR = "_bench_invocation"


NATIVE_ML = ("pipeline_transcribe", "pipeline_embed")
_TICK = os.sysconf("SC_CLK_TCK")


def native_cpu() -> float:
    """CPU seconds of this process's threads that Python's threading does not know (native pools)."""
    known = {t.native_id for t in threading.enumerate()}
    total = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) in known:
            continue
        try:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15 of stat)
    return total / _TICK


def _current() -> Totals | None:
    return getattr(threading.current_thread(), _ATTR, None)


class _CountingBody:
    """A streaming body whose reads are counted (bytes, time) for an invocation."""

    def __init__(self, body: Any, inv: Totals) -> None:
        self._body, self._inv = body, inv

    def read(self, *a, **kw):
        t = time.perf_counter()
        data = self._body.read(*a, **kw)
        self._inv.s3_wall_s += time.perf_counter() - t
        self._inv.s3_bytes += len(data or b"")
        return data

    def iter_chunks(self, *a, **kw):
        for chunk in self._body.iter_chunks(*a, **kw):
            self._inv.s3_bytes += len(chunk)
            yield chunk

    def __getattr__(self, name):
        return getattr(self._body, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        close = getattr(self._body, "close", None)
        if close:
            close()


_RELAYED_HEADERS = ("content-length", "content-range", "content-type", "accept-ranges", "etag",
                    "last-modified")


class _UrlRelay:
    """Forwards GET/HEAD of presigned URLs, counting what each invocation's FFmpeg fetched."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[Any, Totals]] = {}
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self._forward("HEAD")

            def do_GET(self):
                self._forward("GET")

            def _forward(self, method: str) -> None:
                token, _, rest = self.path[1:].partition("/")
                target, inv = relay.routes[token]
                conn = (http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection)(
                    target.netloc, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() == "range"}
                conn.request(method, "/" + rest, headers=headers)
                resp = conn.getresponse()
                inv.s3_requests += 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in _RELAYED_HEADERS:
                        self.send_header(k, v)
                self.end_headers()
                try:
                    while method == "GET":
                        data = resp.read(256 * 1024)
                        if not data:
                            break
                        self.wfile.write(data)
                        inv.s3_bytes += len(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True   # FFmpeg seeked away mid-body
                finally:
                    conn.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wrap(self, url: str, inv: Totals) -> str:
        parts = urlsplit(url)
        token = uuid.uuid4().hex
        self.routes[token] = (parts, inv)
        query = f"?{parts.query}" if parts.query else ""
        return f"http://127.0.0.1:{self.server.server_address[1]}/{token}{parts.path}{query}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str | None, Totals]]]:
    """Yields a list that fills with (video_id, Totals) per pipeline invocation."""
    from chalicelib import storage
    from infra.local import emulator

    records: list[tuple[str | None, Totals]] = []
    lock = threading.Lock()
    originals: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, new: Any) -> None:
        originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    handler_for = emulator.Dispatcher.handler_for

    def wrapped_handler_for(self, handler_string: str):
        handler = handler_for(self, handler_string)
        function = handler_string.rpartition(".")[2]

        def run(payload, context):
            inv = Totals(function=function, started=time.perf_counter())
            video_id = payload.get("video_id") if isinstance(payload, dict) else None
            with lock:
                records.append((video_id, inv))
            thread = threading.current_thread()
            setattr(thread, _ATTR, inv)
            native = function in NATIVE_ML
            n0 = native_cpu() if native else 0.0
            c0 = time.thread_time()
            try:
                return handler(payload, context)
            finally:
                inv.thread_cpu_s += time.thread_time() - c0
                if native:
                    inv.native_cpu_s += max(0.0, native_cpu() - n0)
                inv.ended = time.perf_counter()
                setattr(thread, _ATTR, None)
        return run

    start = threading.Thread.start

    def wrapped_start(self, *a, **kw):
        inv = _current()
        if inv is not None:
            setattr(self, _ATTR, inv)
            run = self.run

            def counted():
                c0 = time.thread_time()
                try:
                    run()
                finally:
                    inv.thread_cpu_s += time.thread_time() - c0
            self.run = counted
        return start(self, *a, **kw)

    popen_init = subprocess.Popen.__init__

    def wrapped_init(self, *a, **kw):
        self._bench_inv = _current()
        self._bench_t0 = time.perf_counter()
        popen_init(self, *a, **kw)

    def try_wait(self, wait_flags):
        try:
            pid, sts, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        inv = getattr(self, "_bench_inv", None)
        if pid == self.pid and inv is not None:
            inv.ffmpeg_cpu_s += usage.ru_utime + usage.ru_stime
            inv.ffmpeg_wall_s += time.perf_counter() - self._bench_t0
        return pid, sts

    def counted(fn, size_of):
        def wrapper(*a, **kw):
            inv = _current()
            t = time.perf_counter()
            out = fn(*a, **kw)
            if inv is not None:
                inv.s3_wall_s += time.perf_counter() - t
                inv.s3_requests += 1
                inv.s3_bytes += size_of(a, kw, out)
            return out
        return wrapper

    def open_object(key, *a, **kw):
        body = originals_by_name["open_object"](key, *a, **kw)
        inv = _current()
        if inv is None:
            return body
        inv.s3_requests += 1
        return _CountingBody(body, inv)

    patch(emulator.Dispatcher, "handler_for", wrapped_handler_for)
    patch(threading.Thread, "start", wrapped_start)
    patch(subprocess.Popen, "__init__", wrapped_init)
    patch(subprocess.Popen, "_try_wait", try_wait)
    originals_by_name = {"open_object": storage.open_object}
    patch(storage, "open_object", open_object)
    patch(storage, "read_bytes", counted(storage.read_bytes, lambda a, kw, out: len(out or b"")))
    patch(storage, "upload_file", counted(storage.upload_file, lambda a, kw, out: os.path.getsize(a[0])))
    patch(storage, "put_bytes", counted(storage.put_bytes, lambda a, kw, out: len(a[1] if len(a) > 1
                                                                                   else kw.get("body", b""))))
    patch(storage, "upload_stream", counted(storage.upload_stream, lambda a, kw, out: 0))
    relay = _UrlRelay()

    def presigned_get(key, *a, **kw):
        url = originals_by_name["presigned_get"](key, *a, **kw)
        inv = _current()
        return url if inv is None else relay.wrap(url, inv)

    originals_by_name["presigned_get"] = storage.presigned_get
    patch(storage, "presigned_get", presigned_get)
    # Handlers already looked up are cached unwrapped: clear the cache while recording.
    emulator.DISPATCHER._handlers.clear()
    try:
        yield records
    finally:
        for owner, name, fn in reversed(originals):
            setattr(owner, name, fn)
        emulator.DISPATCHER._handlers.clear()
        relay.close()


def for_video(records: list[tuple[str | None, Totals]], video_id: str) -> list[Totals]:
    """That video's pipeline invocations, in start order (the upload trigger excluded)."""
    return sorted((inv for vid, inv in records if vid == video_id and inv.function.startswith("pipeline_")),
                  key=lambda inv: inv.started)
