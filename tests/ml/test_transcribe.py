"""Real transcription of espeak-ng speech over game noise, and of noise alone."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError
from chalicelib.ml import transcribe
from tests.ml.wer import wer
from tests.ml import clips

MAX_WER = 0.15
MAX_TIMING_ERROR_S = 1.0


@pytest.fixture(scope="module")
def speech_transcript(speech_clip: clips.SpeechClip, ml_dir: Path) -> transcribe.Transcript:
    wav = transcribe.extract_audio(speech_clip.path, ml_dir / "speech-extracted.wav",
                                   timeout_s=60)
    assert wav is not None and wav.stat().st_size > 0
    return transcribe.transcribe(wav)


def test_speech_over_game_noise_is_transcribed(speech_clip: clips.SpeechClip,
                                               speech_transcript: transcribe.Transcript) -> None:
    reference = " ".join(speech_clip.sentences)
    score = wer(reference, speech_transcript.text)
    print(f"\nreference:  {reference}\nhypothesis: {speech_transcript.text}\nWER {score:.1%}")
    assert speech_transcript.language == "en"
    assert abs(speech_transcript.duration - (speech_clip.offsets[-1] + 6.0)) < 3.0
    assert score <= MAX_WER


def test_word_timestamps_follow_the_speech(speech_clip: clips.SpeechClip,
                                           speech_transcript: transcribe.Transcript) -> None:
    words = speech_transcript.words
    assert words, "no words transcribed"
    # Nothing comes out of the noise-only lead-in.
    assert words[0].start >= clips.LEAD_IN_S - MAX_TIMING_ERROR_S
    for sentence, offset, duration in zip(speech_clip.sentences, speech_clip.offsets,
                                          speech_clip.durations, strict=True):
        heard = [w for w in words
                 if offset - MAX_TIMING_ERROR_S <= w.start <= offset + duration]
        text = " ".join(w.word for w in heard)
        print(f"at {offset:5.2f} s: WER {wer(sentence, text):.1%} {text!r}")
        assert heard, f"nothing heard near {offset:.2f} s"
        assert abs(heard[0].start - offset) <= MAX_TIMING_ERROR_S
        assert heard[-1].end <= offset + duration + MAX_TIMING_ERROR_S
    for w in words:
        assert 0.0 <= w.start <= w.end <= speech_transcript.duration + 0.5
        assert 0.0 <= w.probability <= 1.0


def test_transcript_is_json(speech_transcript: transcribe.Transcript) -> None:
    data = json.loads(json.dumps(speech_transcript.to_dict()))
    assert set(data) == {"language", "duration", "segments"}
    segment = data["segments"][0]
    assert set(segment) == {"start", "end", "text", "words"}
    assert set(segment["words"][0]) == {"start", "end", "word", "probability"}


def test_game_noise_alone_gives_an_empty_transcript(noise_clip: Path) -> None:
    result = transcribe.transcribe(noise_clip)
    assert result.segments == [] and result.text == ""
    assert result.duration == pytest.approx(10.0, abs=0.1)


def test_video_without_audio_has_nothing_to_extract_or_say(ml_dir: Path) -> None:
    video = clips.ffmpeg_silent_video(ml_dir / "no-audio.mp4")
    assert transcribe.extract_audio(video, ml_dir / "no-audio.wav", timeout_s=30) is None
    assert not (ml_dir / "no-audio.wav").exists()
    assert transcribe.transcribe(video) == transcribe.Transcript(language=None, duration=0.0)


def test_undecodable_input_is_invalid_media(ml_dir: Path) -> None:
    junk = ml_dir / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(InvalidMediaError):
        transcribe.transcribe(junk)
    with pytest.raises(InvalidMediaError):
        transcribe.extract_audio(junk, ml_dir / "junk-out.wav", timeout_s=30)


def test_extract_audio_honours_its_time_limit(speech_clip: clips.SpeechClip,
                                              ml_dir: Path) -> None:
    with pytest.raises(MediaTimeoutError):
        transcribe.extract_audio(speech_clip.path, ml_dir / "late.wav", timeout_s=0.001)
