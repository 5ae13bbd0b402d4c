"""The hard corpus: gamers' speech over game sound, transcribed by the shipped model.

The suite runs two items per condition (short clips, ~1 min on 2 cores); the bench
runs the full corpus (bench/run.py speech_quality). The thresholds are today's
measured level plus a margin: a change that makes transcription over game sound
worse fails here. The goal (WER <= 15 % over game sound, issue 18) is not met by
any model shipped in a package today; bench/results/ has the measured numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chalicelib.ml import transcribe
from tests.ml import corpus

PER_CONDITION = 2
# Measured with Whisper tiny.en (see bench/results/speech_quality.json), plus a margin.
MAX_WER = {"clean": 0.35, "game": 0.95}


@pytest.fixture(scope="module")
def items(ml_dir: Path) -> list[corpus.Item]:
    return corpus.corpus(ml_dir / "corpus", PER_CONDITION)


@pytest.fixture(scope="module")
def hypotheses(items: list[corpus.Item]) -> list[str]:
    return [transcribe.transcribe(item.path).text for item in items]


@pytest.mark.parametrize("bed_kind", sorted(corpus.BEDS))
@pytest.mark.parametrize("snr_db", [0.0, -5.0, -10.0])
def test_speech_sits_at_the_stated_level_under_the_bed(bed_kind: str, snr_db: float) -> None:
    speech = corpus.speak(corpus.SENTENCES[0])
    start = int(corpus.LEAD_IN_S * corpus.SR)
    bed = corpus.BEDS[bed_kind]((start + len(speech)) / corpus.SR + 1.0, seed=5)
    voice, bed_track = corpus.mix_parts(speech, bed, snr_db, start)
    assert corpus.speech_to_bed_db(voice, bed_track, start, len(speech)) == pytest.approx(
        snr_db, abs=0.05)
    assert np.abs(voice + bed_track).max() <= 0.99 + 1e-6  # limited, never clipped


def test_corpus_is_deterministic_and_covers_every_condition(items: list[corpus.Item],
                                                            tmp_path: Path) -> None:
    assert {i.condition for i in items} == set(corpus.CONDITIONS)
    assert len({i.voice for i in items}) >= 4 and len({i.rate for i in items}) >= 4
    again = corpus.make_item(tmp_path, items[5].condition, 1)
    assert again.path.read_bytes() == next(
        i for i in items if (i.condition, i.path.name) == (again.condition, again.path.name)
    ).path.read_bytes()


def test_wer_per_condition_over_game_sound(items: list[corpus.Item],
                                           hypotheses: list[str]) -> None:
    for item, hyp in zip(items, hypotheses, strict=True):
        print(f"{item.condition:13s} {item.voice:15s} {item.rate} ref={item.reference!r} hyp={hyp!r}")
    scores = corpus.wer_by_condition(items, hypotheses)
    print("WER per condition:", scores)
    assert set(scores) == {*corpus.CONDITIONS, "game"}
    for key, limit in MAX_WER.items():
        assert scores[key] <= limit, f"{key}: WER {scores[key]:.0%} > {limit:.0%}"
