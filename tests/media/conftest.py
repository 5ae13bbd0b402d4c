"""Session-wide test clips: generated once, shared by the media tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import clips


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory for generated clips."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def small_clip(media_dir: Path) -> Path:
    """4 s of testsrc2, 320x180 at 30 fps, H.264 + AAC in MP4."""
    return clips.make_clip(media_dir / "small.mp4", scene="testsrc2", duration=4.0)


@pytest.fixture(scope="session")
def silent_clip(media_dir: Path) -> Path:
    """3 s of gradients, 256x144, no audio."""
    return clips.make_clip(media_dir / "silent.mp4", scene="gradients", duration=3.0,
                           size=(256, 144), audio=False)
