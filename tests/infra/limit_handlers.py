"""Handlers of test-only Lambda functions that break the emulator's limits on purpose."""
from __future__ import annotations

import os
import time
from typing import Any


def echo(event: Any, context: Any) -> Any:
    return event


def sleep(event: dict, context: Any) -> dict:
    time.sleep(float(event.get("seconds", 5)))
    return {"slept": True}


def big_output(event: dict, context: Any) -> dict:
    return {"blob": "x" * int(event.get("bytes", 300 * 1024))}


def fill_tmp(event: dict, context: Any) -> dict:
    """Writes `mb` MB into its scratch space (/tmp), as a step's temporary files would."""
    from chalicelib import aws
    folder = aws.scratch_dir() or "/tmp"
    with open(os.path.join(folder, "fill.bin"), "wb") as out:
        for _ in range(int(event.get("mb", 1))):
            out.write(b"\0" * 1024 * 1024)
    return {"written_mb": event.get("mb", 1)}


def call_s3(event: dict, context: Any) -> dict:
    """PUTs one object through the product's storage home, as the function's role."""
    from chalicelib import storage
    storage.put_bytes(event["key"], b"probe", "text/plain")
    return {"stored": event["key"]}
