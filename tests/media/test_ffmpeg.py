"""run_ffmpeg: limits, error reasons, signals."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from chalicelib.media import ffmpeg
from chalicelib.media.errors import MediaError, MediaTimeoutError, TransientMediaError


def test_version_names_ffmpeg() -> None:
    assert ffmpeg.ffmpeg_version().startswith("ffmpeg version")


def test_stdout_is_captured() -> None:
    result = ffmpeg.run_ffmpeg(["-v", "error", "-f", "lavfi", "-i", "color=s=16x16:d=0.1:r=10",
                                "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"], timeout_s=30,
                                inputs=ffmpeg.GENERATED)
    assert len(result.stdout) == 16 * 16


def test_failure_reason_is_the_meaningful_stderr_line(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        ffmpeg.run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"], timeout_s=30)
    assert type(err.value) is MediaError
    assert "No such file or directory" in err.value.reason
    assert "0x" not in err.value.reason


def test_timeout_kills_ffmpeg_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(MediaTimeoutError) as err:
        ffmpeg.run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc2", "-f", "null", "-"],
                          timeout_s=1, inputs=ffmpeg.GENERATED)
    assert time.monotonic() - started < 5
    assert "timed out" in err.value.reason


def test_a_foreign_kill_signal_is_transient(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in binary that dies of SIGKILL, as under the OOM killer.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nkill -9 $$\n")
    fake.chmod(0o755)
    monkeypatch.setenv("FFMPEG_BINARY", str(fake))
    ffmpeg.ffmpeg_exe.cache_clear()
    try:
        with pytest.raises(TransientMediaError) as err:
            ffmpeg.run_ffmpeg(["-version"], timeout_s=10)
        assert "SIGKILL" in err.value.reason
    finally:
        monkeypatch.delenv("FFMPEG_BINARY")
        ffmpeg.ffmpeg_exe.cache_clear()
