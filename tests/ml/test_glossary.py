"""Game vocabulary in transcription: the glossary's spellings, and Whisper biased by it on real speech."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chalicelib import glossary
from chalicelib.ml import transcribe
from tests.ml import clips, corpus

STREAM = [{"term": "Dust 2", "variants": []}, {"term": "Mirage", "variants": ["mirrage", "mi rage"]}]


def timed(text: str) -> list[dict]:
    return [{"word": w, "start": float(i), "end": i + 0.5, "probability": 0.9 - i / 100}
            for i, w in enumerate(text.split())]


def test_spellings_are_rewritten_to_the_terms():
    fix = glossary.Normalizer(glossary.effective(STREAM))
    assert (fix.text("Nice head shot on dust two, push mirrage. Head-shot! gg")
            == "Nice headshot on Dust 2, push Mirage. headshot! GG")
    # whole words only, one pass: nothing inside other words, no rewrite of a rewrite
    assert fix.text("headshots mirrages dust twofold") == "headshots mirrages dust twofold"
    assert glossary.Normalizer([]).text("head shot") == "head shot"


def test_timed_words_are_merged_into_the_term():
    fix = glossary.Normalizer(glossary.effective(STREAM))
    out = fix.words(timed("Nice head shot, on Dust two. mi rage"))
    assert [w["word"] for w in out] == ["Nice", "headshot,", "on", "Dust 2.", "Mirage"]
    assert (out[1]["start"], out[1]["end"], out[1]["probability"]) == (1.0, 2.5, 0.88)
    assert out[3]["start"] == 4.0 and out[3]["end"] == 5.5


def test_the_stream_terms_come_first_in_the_prompt_and_it_is_bounded():
    many = [{"term": f"map number {i}", "variants": []} for i in range(glossary.MAX_TERMS)]
    words = glossary.prompt(glossary.effective(many))
    assert words.startswith("map number 0, map number 1")
    assert len(words) <= glossary.PROMPT_CHARS
    assert transcribe.glossary_options([]) == {}
    assert transcribe.glossary_options(STREAM) == {"hotwords": "Dust 2, Mirage"}


def test_include_default_false_leaves_only_the_streams_terms():
    assert glossary.effective(STREAM, include_default=False) == STREAM
    names = [e["term"] for e in glossary.effective([{"term": "Headshot", "variants": []}])]
    assert names.count("headshot") + names.count("Headshot") == 1


@pytest.fixture(scope="module")
def callout(ml_dir: Path) -> Path:
    """espeak-ng saying map names and callouts Whisper tiny.en mishears without help."""
    voice = corpus.speak("Nice head shot on dust two. Rotate to the bomb site and throw a flash bang.")
    pad = np.zeros(clips.SR, np.float32)
    return clips.write_wav(ml_dir / "callout.wav", np.concatenate([pad, voice, pad]))


def test_the_glossary_biases_whisper_and_fixes_spelling(callout: Path):
    result = transcribe.transcribe(callout, glossary_entries=glossary.effective(STREAM))
    print(f"\nwith the glossary: {result.text}")
    assert "Dust 2" in result.text and "headshot" in result.text.lower()
    assert "bomb site" in result.text.lower()
    assert any(w.word.startswith("Dust 2") for w in result.words)
    assert " ".join(w.word for w in result.words) == result.text
    # nothing made up after the last word (decode_failed; a looping "1, 2, 3, 4" once)
    assert result.text.rstrip(".").endswith("flashbang")


def test_the_glossary_does_not_put_words_into_silence(noise_clip: Path):
    result = transcribe.transcribe(noise_clip, glossary_entries=glossary.effective(STREAM))
    assert result.segments == [] and result.text == ""


def test_the_glossary_does_not_fill_the_noise_after_the_speech(ml_dir: Path):
    """Two sentences, then the game sound goes on: nothing may follow the last sentence.

    With the hotwords, Whisper decoded the half second of noise after "signal" as
    "kill, kill, kill ..." (and sampled it five more times, 9 s for 0.4 s of audio); a
    segment failing Whisper's own tests is now dropped (transcribe.decode_failed).
    """
    import time

    sentences = ["We need to capture the flag before the timer runs out.",
                 "Please stay behind the wall and wait for my signal."]
    clip = clips.speech_clip(ml_dir / "talk-then-noise.wav", sentences, seed=7)
    started = time.process_time()
    result = transcribe.transcribe(clip.path, glossary_entries=glossary.effective([]))
    cpu_s = time.process_time() - started
    print(f"\nwith the default glossary: {result.text} ({cpu_s:.2f} s CPU)")
    assert result.text.rstrip(".").lower().endswith("wait for my signal")
    assert result.words[-1].end <= clip.offsets[-1] + clip.durations[-1] + 0.5
