"""Fixtures of the highlights and clips tests: a crew of members and generated media."""
from __future__ import annotations

import pytest

# The API tests' crew: a stream with an admin, a creator who uploaded two videos
# ("first", "second"), a viewer and an outsider.
from tests.api.test_videos import add_member, crew  # noqa: F401


# ---------------------------------------------------------------- a clip with known highlights

EXCITED = "No way! That was a clutch ace, let's go!"
CALM = "okay, rotating to B site now"
EXCITED_AT, BOOM_AT, CALM_AT = 6.0, 18.0, 24.0
BOOM_S = 1.2
CLIP_S = 30.0
FPS = 30


@pytest.fixture(scope="session")
def highlight_clip(tmp_path_factory):
    """30 s of quiet game ambience (noise, soft beeps) with, at known times: shouted hype speech,
    an explosion, and calm speech; testsrc2 picture at 30 fps, 320x180, H.264 + AAC."""
    import numpy as np

    from tests.media import clips as media
    from tests.ml import clips as speech

    folder = tmp_path_factory.mktemp("highlights")
    rate = speech.SR
    rng = np.random.default_rng(3)
    bed = np.convolve(rng.standard_normal(int(CLIP_S * rate)), np.ones(4) / 4, mode="same")
    bed *= 0.03 / np.sqrt(np.mean(bed ** 2))
    t = np.arange(len(bed)) / rate
    for k, start in enumerate(np.arange(0.9, CLIP_S - 0.3, 2.3)):
        on = (t >= start) & (t < start + 0.12)
        bed[on] += 0.04 * np.sin(2 * np.pi * (660, 990)[k % 2] * t[on])

    def put(signal, at, gain):
        i = int(at * rate)
        bed[i:i + len(signal)] += gain * signal / np.abs(signal).max()
        return len(signal) / rate

    excited_s = put(speech.speak(EXCITED, speed=190), EXCITED_AT, 0.9)
    boom_t = np.arange(int(BOOM_S * rate)) / rate
    boom = np.convolve(rng.standard_normal(len(boom_t)) * np.exp(-boom_t * 3.5), np.ones(8) / 8, mode="same")
    put(boom, BOOM_AT, 0.95)
    calm_s = put(speech.speak(CALM, speed=140), CALM_AT, 0.3)
    wav = speech.write_wav(folder / "highlights.wav", bed)
    path = media.make_clip(folder / "highlights.mp4", scene="testsrc2", duration=CLIP_S,
                           size=(320, 180), fps=FPS, bed=wav)
    return {"path": path, "excited": (EXCITED_AT, EXCITED_AT + excited_s),
            "boom": (BOOM_AT, BOOM_AT + BOOM_S), "calm": (CALM_AT, CALM_AT + calm_s)}
