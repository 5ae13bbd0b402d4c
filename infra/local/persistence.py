"""Durable local data: the emulator's objects on disk, and the pipeline picked up after a stop.

Objects (write-through). moto keeps S3 in memory. Every S3 request that
changes objects marks the keys it touched (hooks on moto's S3 backend) and,
before the request answers, each touched key is written to
`<data_dir>/s3/<bucket>/...` as it now stands in moto (or removed). A write
is therefore on disk before the client sees its 200, and a stack killed at any
moment (SIGKILL included) loses no acknowledged object. A snapshot on stop
would lose everything since the last snapshot on a crash, and the pipeline's
rows (Postgres, durable) would then point at objects that are gone.

One file per object: a header line (JSON: key, ETag, metadata such as
Content-Type and Cache-Control, tags, last modified) then the bytes, written
to a temporary file and renamed over the old one, so a crash mid-write leaves
the previous version or the new one, never half of either. File names are the
key's segments percent-encoded, with an "@" suffix on the object file (which
encoding never produces), so keys "a" and "a/b" cannot collide.

`restore` loads the files into moto's bucket directly: no event is sent,
exactly as no event is sent for objects that already exist in AWS.

Executions (restart recovery). moto's Step Functions live in memory too, so
the executions of a stopped stack are gone. `recover` runs once the stack is
deployed and before the API serves: videos whose pipeline was in flight are
resumed through the admin retry (a new execution reusing the outputs of the
stages that succeeded) after their dead attempt is recorded as interrupted, or
stay failed with the reason "interrupted: the local stack stopped" if the
retry cannot start; uploads whose bytes arrived but whose trigger never ran
are started (the trigger claims each (video, ETag) once); deletions cut short
are finished; highlight runs in flight are failed with the same reason.

`python -m infra.local.persistence reset` (make reset) removes the local data.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import os
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

logger = logging.getLogger("clipstream.persistence")

INTERRUPTED = "interrupted: the local stack stopped"
_MAGIC = b"clipstream-s3-object 1 "
_OBJECT_SUFFIX = "@"  # quote() always encodes "@": no folder name ends with it

# -- the object mirror -------------------------------------------------------------------------

_state = threading.local()
_root: Path | None = None
_path_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()
_installed = False


def _segment(part: str) -> str:
    """One key segment as a file-system name (the header keeps the real key)."""
    if part == "":
        return "%%empty"
    name = quote(part, safe="")
    if name in (".", ".."):
        return name.replace(".", "%2E")
    if len(name) > 200:  # file names are limited to 255 bytes; keys are not
        import hashlib
        return "%%" + hashlib.sha256(part.encode()).hexdigest()
    return name


def object_path(root: Path, bucket: str, key: str) -> Path:
    """Where the object's file lives under the mirror root."""
    parts = key.split("/")
    return root / _segment(bucket) / Path(*[_segment(p) for p in parts[:-1]] or ["."]) / (
        _segment(parts[-1]) + _OBJECT_SUFFIX)


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _path_locks.setdefault(path, threading.Lock())


def _header(key: Any, backend: Any) -> dict:
    tags = backend.tagger.list_tags_for_resource(key.arn).get("Tags", [])
    return {"key": key.name, "etag": key.etag.strip('"'), "size": key.size,
            "metadata": dict(key.metadata), "tags": tags,
            "storage_class": key.storage_class,
            "last_modified": key.last_modified.replace(tzinfo=dt.timezone.utc).isoformat(),
            "checksum_algorithm": key.checksum_algorithm, "checksum_value": key.checksum_value,
            "website_redirect_location": key.website_redirect_location}


def _write(path: Path, key: Any, backend: Any) -> None:
    """The key's current state to path, atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
    header = json.dumps(_header(key, backend), separators=(",", ":")).encode()
    try:
        with open(tmp, "wb") as out:
            out.write(_MAGIC + header + b"\n")
            with key.lock:
                key._value_buffer.seek(0)
                shutil.copyfileobj(key._value_buffer, out, 1024 * 1024)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove(path: Path, root: Path) -> None:
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != root and folder.parent != root:  # keep the bucket's folder
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent


def _current(backend: Any, bucket_name: str, key_name: str) -> Any | None:
    """The key as moto now serves it, or None (deleted, bucket gone, a delete marker)."""
    from moto.s3.models import FakeKey
    try:
        bucket = backend.get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - moto's MissingBucket: nothing to keep
        return None
    versions = bucket.keys.getlist(key_name, [])
    latest = versions[-1] if versions else None
    return latest if isinstance(latest, FakeKey) else None


def mirror(backend: Any, bucket_name: str, key_name: str) -> None:
    """Make the file of one key match what moto now holds."""
    root = _root
    if root is None:
        return
    path = object_path(root, bucket_name, key_name)
    with _lock_for(path):
        for _ in range(3):  # a concurrent overwrite may close the buffer we are reading
            key = _current(backend, bucket_name, key_name)
            if key is None:
                _remove(path, root)
                return
            try:
                _write(path, key, backend)
                return
            except ValueError:
                continue
        raise RuntimeError(f"could not mirror s3://{bucket_name}/{key_name}")


def _touched(backend: Any, bucket_name: str, key_name: str) -> None:
    pending = getattr(_state, "pending", None)
    if pending is None:  # a backend call outside any request: mirror now
        mirror(backend, bucket_name, key_name)
    else:
        pending.append((backend, bucket_name, key_name))


def _flush() -> None:
    pending, _state.pending = _state.pending, None
    done = set()
    for backend, bucket_name, key_name in pending:
        if (id(backend), bucket_name, key_name) not in done:
            done.add((id(backend), bucket_name, key_name))
            mirror(backend, bucket_name, key_name)


def _request_hook(original: Callable) -> Callable:
    """Around one S3 request: collect touched keys, write them before the answer goes out."""

    @functools.wraps(original)
    def handle(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "pending", None) is not None:  # nested (ambiguous_response)
            return original(self, *args, **kwargs)
        _state.pending = []
        try:
            response = original(self, *args, **kwargs)
        except BaseException:
            _flush()  # what changed before the error changed for good
            raise
        _flush()
        return response

    return handle


def _backend_hook(original: Callable, keys_of: Callable[..., list[tuple[str, str]]]) -> Callable:
    @functools.wraps(original)
    def change(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        for bucket_name, key_name in keys_of(result, *args, **kwargs):
            _touched(self, bucket_name, key_name)
        return result

    return change


def _arg(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else args[index]


def install(root: Path) -> None:
    """Write every S3 change of this process's moto through to root (idempotent)."""
    global _root, _installed
    _root = Path(root)
    _root.mkdir(parents=True, exist_ok=True)
    if _installed:
        return
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    def key_arg(_result: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [(_arg(args, kwargs, 0, "bucket_name"), _arg(args, kwargs, 1, "key_name"))]

    def key_object(_result: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        key = _arg(args, kwargs, 0, "key")
        return [(key.bucket_name, key.name)] if key is not None else []

    def result_key(result: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [(result.bucket_name, result.name)] if result is not None else []

    # Every way moto changes an object ends in one of these (copy and multipart
    # completion call put_object; batch delete calls delete_object).
    S3Backend.put_object = _backend_hook(S3Backend.put_object, result_key)
    S3Backend.delete_object = _backend_hook(S3Backend.delete_object, key_arg)
    S3Backend.put_object_acl = _backend_hook(S3Backend.put_object_acl, key_arg)
    S3Backend.put_object_tagging = _backend_hook(S3Backend.put_object_tagging, key_object)
    S3Backend.delete_object_tagging = _backend_hook(S3Backend.delete_object_tagging, key_object)
    # Metadata (Content-Type, Cache-Control ...) is set after put_object returns:
    # the file is written when the whole request is done, before it answers.
    S3Response.key_response = _request_hook(S3Response.key_response)
    S3Response.bucket_response = _request_hook(S3Response.bucket_response)
    _installed = True


def stored_objects(root: Path) -> Iterator[tuple[str, dict, Path, int]]:
    """(bucket, header, file, offset of the bytes) of every object file under root."""
    for bucket_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        from urllib.parse import unquote
        bucket = unquote(bucket_dir.name)
        for path in sorted(bucket_dir.rglob("*")):
            if not path.is_file():
                continue
            if not path.name.endswith(_OBJECT_SUFFIX):
                path.unlink(missing_ok=True)  # a write cut short by a crash
                continue
            with open(path, "rb") as f:
                line = f.readline()
            if not line.startswith(_MAGIC) or not line.endswith(b"\n"):
                logger.warning("skipping unreadable object file %s", path)
                continue
            header = json.loads(line[len(_MAGIC):])
            offset = len(line)
            if path.stat().st_size - offset != header["size"]:
                logger.warning("skipping object file of the wrong size %s", path)
                continue
            yield bucket, header, path, offset


def restore(root: Path) -> dict[str, int]:
    """Load the mirrored objects into moto's buckets, without notifications; counts per bucket.

    Buckets are restored into the account that owns them once deploy created
    them; objects of buckets that do not exist are left on disk untouched.
    """
    from moto.s3.models import FakeKey, s3_backends

    root = Path(root)
    counts: dict[str, int] = {}
    if not root.is_dir():
        return counts
    for bucket_name, header, path, offset in stored_objects(root):
        owner = s3_backends.bucket_accounts.get(bucket_name)
        if owner is None:
            logger.warning("objects of bucket %s kept on disk: the bucket does not exist", bucket_name)
            continue
        partition, account = owner
        backend = s3_backends[account][partition]
        bucket = backend.get_bucket(bucket_name)
        key = FakeKey(name=header["key"], value=b"", account_id=account, region_name=bucket.region_name,
                      bucket_name=bucket_name, etag=header["etag"], storage=header.get("storage_class"),
                      version_id="null")
        with open(path, "rb") as f:
            f.seek(offset)
            shutil.copyfileobj(f, key._value_buffer, 1024 * 1024)
        key.contentsize = header["size"]
        key.set_metadata(dict(header["metadata"]))  # a LowercaseDict: keys lowercased
        key.last_modified = dt.datetime.fromisoformat(header["last_modified"]).replace(tzinfo=None)
        key.checksum_algorithm = header.get("checksum_algorithm")
        key.checksum_value = header.get("checksum_value")
        key.website_redirect_location = header.get("website_redirect_location")
        bucket.keys.setlist(header["key"], [key])
        if header.get("tags"):
            backend.tagger.tag_resource(key.arn, header["tags"])
        counts[bucket_name] = counts.get(bucket_name, 0) + 1
    return counts


# -- the pipeline after a restart --------------------------------------------------------------

_STEP_STAGES = ("dedup", "transcode", "transcribe", "embed")
_ACTIVE_RUNS = ("queued", "analysing", "extracting")


def _execution_alive(arn: str | None) -> bool:
    """True if the execution still runs (an external emulator may have kept it)."""
    if not arn:
        return False
    from chalicelib import aws
    client = aws.client("stepfunctions")
    try:
        return client.describe_execution(executionArn=arn)["status"] == "RUNNING"
    except client.exceptions.ExecutionDoesNotExist:
        return False


def _release_step_claims(video_id: str, etags: set[str]) -> int:
    """Drop the in-progress step claims of dead executions, so the resumed steps may run.

    A step killed with the stack leaves its idempotency record INPROGRESS until
    its Lambda deadline (up to 15 minutes); nobody holds it any more.
    """
    from chalicelib import db, idempotency
    ids = [idempotency.record_id(stage, video_id, etag) for stage in _STEP_STAGES for etag in etags]
    return db.execute("DELETE FROM idempotency_records WHERE id = ANY(%s) AND status = 'INPROGRESS'",
                      (ids,))


def _resume_video(video: dict, summary: dict) -> None:
    from chalicelib import db, storage
    from chalicelib.api import processing
    from chalicelib.config import get_settings
    from chalicelib.pipeline import progress, start

    video_id = str(video["id"])
    executions = db.fetch_all(
        "SELECT execution_name, execution_arn, etag, status FROM pipeline_executions"
        " WHERE video_id = %s", (video_id,))
    active = [e for e in executions if e["status"] in ("starting", "running")]
    if any(_execution_alive(e["execution_arn"]) for e in active):
        return
    if not executions:
        head = storage.head(video["raw_key"])
        if head is None:
            return  # the bytes have not arrived: the upload event will start it
        outcome, name = start.start_for_object({"bucket": get_settings().bucket, "key": video["raw_key"],
                                                "etag": head["ETag"], "version_id": None})
        summary["started"].append(video_id)
        logger.info("started processing of an upload the stopped stack had not started",
                    extra={"video_id": video_id, "outcome": outcome, "execution": name})
        return
    for e in active:
        progress.finish_execution(e["execution_name"], "interrupted")
    _release_step_claims(video_id, {e["etag"].split("#")[0] for e in executions})
    # Failed first: if the retry cannot start, the video says why it stopped.
    progress.mark_failed(video_id, INTERRUPTED)
    try:
        result = processing.retry_video(video_id)
    except Exception as exc:  # noqa: BLE001 - the video stays failed with its reason
        logger.warning("could not resume an interrupted video; it stays failed",
                       extra={"video_id": video_id, "error": f"{type(exc).__name__}: {exc}"})
        summary["failed"].append(video_id)
        return
    summary["resumed" if result["outcome"] == "started" else "failed"].append(video_id)


def recover() -> dict[str, list[str]]:
    """Resume, start or visibly fail what the stopped stack left in flight; what was done.

    Runs after deploy (the state machines exist) and before the API serves.
    """
    from chalicelib import db, video_deletion
    from chalicelib.moments import store as moment_store

    summary: dict[str, list[str]] = {"deleted": [], "resumed": [], "started": [], "failed": [],
                                     "highlights_failed": []}
    for row in db.fetch_all("SELECT id FROM videos WHERE deleted_at IS NOT NULL"):
        try:
            video_deletion.delete_video(str(row["id"]))
            summary["deleted"].append(str(row["id"]))
        except Exception as exc:  # noqa: BLE001 - a repeated DELETE finishes it later
            logger.warning("could not finish an interrupted deletion",
                           extra={"video_id": str(row["id"]), "error": str(exc)})
    for video in db.fetch_all(
            "SELECT id, raw_key FROM videos WHERE deleted_at IS NULL AND status IN ('queued', 'running')"
            " ORDER BY uploaded_at"):
        _resume_video(video, summary)
    for run in db.fetch_all("SELECT video_id, execution_name, execution_arn FROM moment_runs"
                            " WHERE status = ANY(%s)", (list(_ACTIVE_RUNS),)):
        if _execution_alive(run["execution_arn"]):
            continue
        video_id = str(run["video_id"])
        moment_store.update_run(video_id, run["execution_name"], status="failed", error=INTERRUPTED)
        ids = [str(m["id"]) for m in db.fetch_all("SELECT id FROM moments WHERE video_id = %s", (video_id,))]
        moment_store.fail_unfinished(video_id, ids, INTERRUPTED)
        summary["highlights_failed"].append(video_id)
    if any(summary.values()):
        logger.info("recovered after a restart: %s", {k: len(v) for k, v in summary.items()})
    return summary


# -- the API process of a stack that died ----------------------------------------------------

def _api_pid_file(data_dir: Path) -> Path:
    return Path(data_dir) / "api.pid"


def record_api(data_dir: Path, pid: int) -> None:
    """Remember the API server's process so a stack started after a crash can stop it."""
    _api_pid_file(data_dir).write_text(str(pid))


def stop_stale_api(data_dir: Path) -> bool:
    """Stop the `chalice local` a killed stack left serving (it holds the port); True if one was."""
    path = _api_pid_file(data_dir)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return False
    path.unlink(missing_ok=True)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # gone (or not Linux: nothing to check it against)
    if not any(part.endswith(b"chalice") for part in cmdline) or b"local" not in cmdline:
        return False  # the number now belongs to another process
    try:
        os.killpg(pid, signal.SIGTERM)  # started with its own session: its group is its pid
    except ProcessLookupError:
        return False
    logger.warning("stopped the API server (pid %s) of a stack that did not stop cleanly", pid)
    return True


# -- make reset ------------------------------------------------------------------------------

# What `make reset` removes. Kept: jwt-secret is removed too (every app token
# named users that no longer exist), google-dev-key.pem is kept (a signing key,
# not data: `make token` keeps working and nothing it signed outlives an hour).
RESET_PATHS = ("pgdata", "pgdata.log", "s3", "api.pid", "jwt-secret")


def reset(data_dir: Path) -> list[str]:
    """Remove the local data (database, objects); what was removed."""
    data_dir = Path(data_dir)
    from infra.local.postgres import LocalPostgres
    if LocalPostgres(data_dir / "pgdata").running():
        raise RuntimeError("the local stack is running (its Postgres is up): stop make dev first")
    removed = []
    for name in RESET_PATHS:
        path = data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local stack data.")
    parser.add_argument("command", choices=["reset"])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / ".local")
    args = parser.parse_args(argv)
    try:
        removed = reset(args.data_dir)
    except RuntimeError as exc:
        print(f"make reset: {exc}", file=sys.stderr)
        return 1
    print(f"removed {', '.join(removed) or 'nothing'} from {args.data_dir}; the next make dev starts clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
