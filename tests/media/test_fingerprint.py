"""Signatures: near-duplicates, unrelated clips, trimmed and POV alignment."""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chalicelib.media.fingerprint import (VECTOR_DIMS, MediaSignature, align, audio_fingerprint,
                                          compare, is_near_duplicate, media_signature,
                                          sha256_stream, vector_similarity)
from chalicelib.media.probe import probe
from tests.media import clips

pytestmark = pytest.mark.slow

TRIM_START = 5.3
POV_OFFSET = 4.0


def _sig(path: Path) -> MediaSignature:
    return media_signature(path, probe(path), timeout_s=60)


@pytest.fixture(scope="module")
def sigs(media_dir: Path) -> dict[str, MediaSignature]:
    d = media_dir / "fp"
    d.mkdir()
    base = clips.make_clip(d / "base.mp4", scene="sierpinski", duration=15.0, seed=1,
                           speech=clips.DEFAULT_SPEECH)
    files = {
        "base": base,
        "webm": clips.reencode(base, d / "re.webm", size=(480, 270), bitrate="300k",
                               vcodec="libvpx"),
        "small": clips.reencode(base, d / "small.mkv", size=(192, 108), bitrate="120k",
                                audio_bitrate="48k"),
        "remux": clips.change_container(base, d / "remux.mov"),
        "trimmed": clips.trim(base, d / "trimmed.mp4", TRIM_START, 5.0),
        "pov": clips.pov_clip(d / "pov.mp4", d / "base.bed.wav", POV_OFFSET, scene="life",
                              duration=10.0),
        "unrelated": clips.make_clip(d / "other.mp4", scene="life", duration=15.0, seed=9),
        "unrelated2": clips.make_clip(d / "other2.mp4", scene="testsrc2", duration=15.0,
                                      seed=5, size=(640, 360)),
    }
    return {name: _sig(path) for name, path in files.items()}


@pytest.mark.parametrize("name", ["webm", "small", "remux"])
def test_reencodes_are_near_duplicates(sigs: dict[str, MediaSignature], name: str) -> None:
    assert compare(sigs["base"], sigs[name]) > 0.9
    assert is_near_duplicate(sigs["base"], sigs[name])
    assert is_near_duplicate(sigs[name], sigs["base"])


@pytest.mark.parametrize("name", ["unrelated", "unrelated2", "trimmed", "pov"])
def test_others_are_not_near_duplicates(sigs: dict[str, MediaSignature], name: str) -> None:
    assert compare(sigs["base"], sigs[name]) < 0.4
    assert not is_near_duplicate(sigs["base"], sigs[name])


def test_same_picture_without_audio_is_still_a_near_duplicate(sigs: dict[str, MediaSignature]
                                                               ) -> None:
    assert is_near_duplicate(sigs["base"], replace(sigs["webm"], audio=None))


def test_clip_vectors_rank_reencodes_first(sigs: dict[str, MediaSignature]) -> None:
    for sig in sigs.values():
        vec = np.asarray(sig.video.vector)
        assert vec.shape == (VECTOR_DIMS,)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-6)
    dup = min(vector_similarity(sigs["base"], sigs[n]) for n in ("webm", "small", "remux"))
    other = max(vector_similarity(sigs["base"], sigs[n]) for n in ("unrelated", "unrelated2"))
    assert dup > 0.95 and dup > other + 0.2


def test_align_finds_a_trimmed_part(sigs: dict[str, MediaSignature]) -> None:
    offset, score = align(sigs["trimmed"], sigs["base"])
    assert offset == pytest.approx(TRIM_START, abs=0.5)
    assert score > 0.7
    by_video = align(replace(sigs["trimmed"], audio=None), sigs["base"])
    assert by_video.source == "video"
    assert by_video.offset_s == pytest.approx(TRIM_START, abs=0.5)
    by_audio = align(replace(sigs["trimmed"], video=None), sigs["base"])
    assert by_audio.source == "audio"
    assert by_audio.offset_s == pytest.approx(TRIM_START, abs=0.5)


def test_align_order_does_not_matter(sigs: dict[str, MediaSignature]) -> None:
    assert align(sigs["base"], sigs["trimmed"]).offset_s == pytest.approx(-TRIM_START, abs=0.5)


def test_align_finds_a_pov_clip_by_its_audio(sigs: dict[str, MediaSignature]) -> None:
    found = align(sigs["pov"], sigs["base"])
    assert found.source == "audio"
    assert found.offset_s == pytest.approx(POV_OFFSET, abs=0.5)
    assert found.score > 0.7


def test_unrelated_clips_align_poorly(sigs: dict[str, MediaSignature]) -> None:
    assert align(sigs["trimmed"], sigs["unrelated"]).score < 0.5


def test_signature_round_trips_through_json(sigs: dict[str, MediaSignature]) -> None:
    sig = sigs["base"]
    again = MediaSignature.from_dict(json.loads(json.dumps(sig.to_dict())))
    assert again.video.hashes == sig.video.hashes
    assert again.audio == sig.audio
    assert compare(sig, again) == pytest.approx(1.0)
    assert all(0 <= h < 2**64 for h in sig.video.hashes)
    assert len(sig.video.timestamps) == len(sig.video.hashes)
    assert sig.video.timestamps[1] == pytest.approx(0.25)


def test_no_audio_means_no_audio_fingerprint(silent_clip: Path) -> None:
    assert audio_fingerprint(silent_clip, timeout_s=30) is None
    sig = _sig(silent_clip)
    assert sig.audio is None and sig.video is not None


def test_sha256_stream_matches_hashlib(small_clip: Path) -> None:
    data = small_clip.read_bytes()
    with small_clip.open("rb") as f:
        assert sha256_stream(f, chunk=4096) == hashlib.sha256(data).hexdigest()
    assert sha256_stream(io.BytesIO(b"")) == hashlib.sha256(b"").hexdigest()
