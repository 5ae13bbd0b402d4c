"""Transcript segments are cut at sentence ends (chalicelib.ml.transcribe.split_sentences)."""
from __future__ import annotations

import pytest

from chalicelib.ml.transcribe import Segment, Word, split_sentences

pytestmark = pytest.mark.unit


def _words(*spec):
    return [Word(start=a, end=b, word=w, probability=0.9) for a, b, w in spec]


def test_a_segment_of_three_sentences_becomes_three_timed_by_their_words():
    words = _words((0.5, 0.7, "Push"), (0.7, 1.0, "now."), (1.6, 1.8, "Wait"), (1.8, 2.0, "for"),
                   (2.0, 2.3, "me?"), (3.0, 3.2, "Go"), (3.2, 3.6, "left!"))
    out = split_sentences([Segment(0.3, 3.9, "Push now. Wait for me? Go left!", words)])
    assert [(s.start, s.end, s.text) for s in out] == [
        (0.3, 1.0, "Push now."), (1.6, 2.3, "Wait for me?"), (3.0, 3.9, "Go left!")]
    assert [w for s in out for w in s.words] == words


def test_one_sentence_and_wordless_segments_are_kept_as_they_are():
    one = Segment(0.0, 1.0, "Nice  shot.", _words((0.1, 0.4, "Nice"), (0.4, 0.9, "shot.")))
    bare = Segment(2.0, 3.0, "uh", [])
    trailing = Segment(4.0, 6.0, "Rotate B. then", _words((4.1, 4.5, "Rotate"), (4.5, 4.8, "B."),
                                                        (5.0, 5.5, "then")))
    out = split_sentences([one, bare, trailing])
    assert out[:2] == [one, bare]
    assert [(s.start, s.end, s.text) for s in out[2:]] == [(4.0, 4.8, "Rotate B."), (5.0, 6.0, "then")]
