"""Other-POV matching across voice chat (issue 18, item 5) on generated pairs, per condition.

Each clip goes through AAC and back to the 16 kHz speech WAV the dedup step writes, then
through gamesound.landmarks/match, the code relate.py decides POV relations with.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chalicelib.media import fingerprint, gamesound
from chalicelib.media.ffmpeg import ffmpeg_exe, speech_wav_args
from tests.ml import pov_pairs
from tests.ml.clips import write_wav

MAX_OFFSET_ERROR_S = 0.5
PER_CONDITION = len(pov_pairs.LAYOUTS)   # every layout: offsets to +-30 s, overlaps to 5 s


def _landmarks(samples, path: Path) -> gamesound.Landmarks:
    wav = write_wav(path.with_suffix(".wav"), samples)
    m4a = path.with_suffix(".m4a")
    back = path.with_suffix(".16k.wav")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "96k",
                    str(m4a)], check=True, timeout=120)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(m4a), *speech_wav_args(), str(back)],
                   check=True, timeout=120)
    return gamesound.landmarks(gamesound.read_speech_wav(back))


def _results(condition: str, tmp: Path) -> list[tuple[pov_pairs.Pair, gamesound.Match]]:
    out = []
    for pair in pov_pairs.pairs(PER_CONDITION, [condition]):
        la = _landmarks(pair.a, tmp / f"{pair.name}-a")
        lb = _landmarks(pair.b, tmp / f"{pair.name}-b")
        out.append((pair, gamesound.match(la, lb)))
    return out


@pytest.mark.parametrize("condition", pov_pairs.POSITIVE)
def test_same_game_sound_under_other_voices_matches_at_its_offset(condition, tmp_path):
    results = _results(condition, tmp_path)
    for pair, m in results:
        print(f"{pair.name}: offset {pair.offset_s} overlap {pair.overlap_s:.1f} s -> "
              f"{m.offset_s} votes {m.votes} score {m.score}")
    assert {p.offset_s for p, _ in results} >= {30.0, -30.0}
    assert min(p.overlap_s for p, _ in results) <= 5.0 + 1e-6
    missed = [(p.name, m) for p, m in results if not m.matched]
    wrong = [(p.name, p.offset_s, m.offset_s) for p, m in results
             if m.matched and abs(m.offset_s - p.offset_s) > MAX_OFFSET_ERROR_S]
    assert not missed and not wrong   # recall 1.0, precision 1.0, offset error <= 0.5 s


@pytest.mark.parametrize("condition", pov_pairs.NEGATIVE)
def test_same_voice_or_unrelated_clips_over_other_game_sound_do_not_match(condition, tmp_path):
    results = _results(condition, tmp_path)
    for pair, m in results:
        print(f"{pair.name}: votes {m.votes} score {m.score}")
    assert not [(p.name, m) for p, m in results if m.matched]


def test_match_is_symmetric_and_rejects_a_clip_against_silence(tmp_path):
    import numpy as np

    pair = pov_pairs.make_pair("other_voice", 3)
    la, lb = _landmarks(pair.a, tmp_path / "a"), _landmarks(pair.b, tmp_path / "b")
    there, back = gamesound.match(la, lb), gamesound.match(lb, la)
    assert there.matched and back.matched
    assert abs(there.offset_s + back.offset_s) <= 0.05
    silence = gamesound.landmarks(np.zeros(16000 * 10, np.float32))
    assert silence.frames == b"" and not gamesound.match(la, silence).matched


def test_signature_keeps_landmarks_and_still_reads_signatures_without_them():
    lm = gamesound.Landmarks(frames=(7).to_bytes(4, "little"), bins=(40).to_bytes(2, "little"),
                             duration_s=3.5)
    sig = fingerprint.MediaSignature(duration_s=3.5, video=None, audio=[1, 2], game=lm)
    again = fingerprint.MediaSignature.from_dict(sig.to_dict())
    assert again.game == lm and again.audio == [1, 2]
    old = {k: v for k, v in sig.to_dict().items() if k != "game"}
    assert fingerprint.MediaSignature.from_dict(old).game is None
    # Landmarks of another layout are ignored (the clip falls back to chromaprint), not misread.
    other = dict(sig.to_dict(), game={**lm.to_dict(), "version": 99})
    assert fingerprint.MediaSignature.from_dict(other).game is None
