"""Shared parts of the reliability suite: uploads through the real API, fault helpers, figures.

The figures (faults injected and survived, bad inputs tried, requests
fuzzed, uploads under load, anything lost) are added up by the tests and
written to bench/results/reliability.json at the end of a session in which
every reliability test ran and passed, so a partial run never overwrites them.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.helpers import new_video, put_bytes  # noqa: F401 (imported from here by the reliability tests)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "reliability.json"

TRANSCODE_FN = "clipstream-local-pipeline_transcode"
DEDUP_FN = "clipstream-local-pipeline_dedup"


class Figures:
    """Counts the tests report; one JSON document at the end of the session."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.faults: list[dict] = []
        self.values: dict[str, object] = {}

    def fault(self, kind: str, injected: int, survived: bool) -> None:
        self.faults.append({"kind": kind, "injected": injected, "survived": survived})

    def document(self) -> dict:
        return {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "faults": {"kinds": len(self.faults),
                       "injected": sum(f["injected"] for f in self.faults),
                       "survived": sum(f["injected"] for f in self.faults if f["survived"]),
                       "detail": self.faults},
            **{k: self.counts[k] for k in sorted(self.counts)},
            **self.values,
            "attacks": attacks(),
        }


def attacks() -> dict:
    """The attack-marked tests of this session: tried, refused (passed) and succeeded (failed), per file."""
    from tests.conftest import ATTACKS
    per_file: Counter[str] = Counter(nodeid.split("::", 1)[0] for nodeid in ATTACKS)
    return {"tried": len(ATTACKS), "refused": sum(ATTACKS.values()),
            "succeeded": sum(not ok for ok in ATTACKS.values()), "by_file": dict(sorted(per_file.items()))}


_FIGURES = Figures()
_OUTCOMES: dict[str, bool] = {}


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


def pytest_runtest_logreport(report):
    if "reliability" in report.keywords and (report.when == "call" or report.failed or report.skipped):
        _OUTCOMES[report.nodeid] = _OUTCOMES.get(report.nodeid, True) and report.passed


def pytest_sessionfinish(session, exitstatus):
    expected = {item.nodeid for item in session.items if "reliability" in item.keywords}
    if not expected or set(_OUTCOMES) != expected or not all(_OUTCOMES.values()):
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_FIGURES.document(), indent=2) + "\n")


# ---------------------------------------------------------------- uploads

@pytest.fixture()
def crew(client, sign_in, make_stream):
    """A creator with a stream, and `upload(path)` that goes through the API and a presigned PUT."""
    me = sign_in()
    stream = make_stream({"id": me["user"]["id"]})

    def upload(path: Path, title: str | None = None) -> str:
        return upload_as(client, me, stream, path.read_bytes(), path.name, title)

    upload.me, upload.stream = me, stream
    return upload


def upload_as(client, me: dict, stream: dict, data: bytes, filename: str, title: str | None = None) -> str:
    """POST /streams/{id}/videos, then PUT the bytes to the presigned URL; the video id."""
    created = new_video(client, me, stream, filename, len(data), title)
    put_bytes(created, data)
    return created["id"]


@pytest.fixture()
def admin(sign_in):
    return sign_in("admin@example.com")


@pytest.fixture(autouse=True)
def _no_leftover_faults():
    """Faults a test injected never leak into the next test."""
    yield
    from infra.local.emulator import DISPATCHER, STORAGE_FAULTS

    DISPATCHER.clear_faults()
    STORAGE_FAULTS.clear()


# ---------------------------------------------------------------- processes

def ffmpeg_pids(*needles: str) -> list[int]:
    """FFmpeg processes whose command line contains every needle (found through /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "ffmpeg" in cmd and all(n in cmd for n in needles):
            found.append(int(entry.name))
    return found


def wait_for_ffmpeg(*needles: str, timeout_s: float = 90) -> int:
    """The pid of the first FFmpeg matching the needles, polled every 20 ms."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = ffmpeg_pids(*needles)
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError(f"no ffmpeg with {needles} within {timeout_s}s")


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def workdir_tag(video_id: str) -> str:
    """What every scratch path of a step for this video contains (media_io.workdir)."""
    return f"clip-{video_id[:8]}-"


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Path:
    """A clip whose transcode runs for seconds (long enough to kill or restart things under it)."""
    from tests.media import clips as make

    return make.make_clip(tmp_path_factory.mktemp("reliability") / "long.mp4", scene="testsrc2",
                          duration=10.0, size=(1280, 720), audio=False, seed=21)


def objects_of(s3, video_id: str) -> list[str]:
    """Every stored object of a video, under each of its prefixes."""
    from chalicelib import storage

    keys = []
    for prefix in storage.video_prefixes(video_id):
        keys += [o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=prefix).get("Contents", [])]
    return keys
