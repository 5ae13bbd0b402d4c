"""Word error rate and its text normalisation."""
from __future__ import annotations

import pytest

from tests.ml.wer import edit_distance, normalize, number_to_words, wer

pytestmark = pytest.mark.unit


def test_normalize_drops_case_and_punctuation_and_spells_numbers() -> None:
    assert normalize("GG! Nice shot, 2 kills—in 1st place (100%).") == [
        "gg", "nice", "shot", "two", "kills", "in", "first", "place", "one", "hundred",
        "percent"]
    assert normalize("Don’t stop") == ["don't", "stop"]


@pytest.mark.parametrize("n, words", [(0, "zero"), (13, "thirteen"), (40, "forty"),
                                      (99, "ninety nine"), (205, "two hundred five"),
                                      (1_250, "one thousand two hundred fifty")])
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_edit_distance_counts_substitutions_insertions_deletions() -> None:
    assert edit_distance("a b c d".split(), "a x c d e".split()) == 2
    assert edit_distance([], ["a"]) == 1


def test_wer() -> None:
    assert wer("push the B site now", "Push the B-site now!") == 0.0
    assert wer("we need to capture the flag", "we need to capture the flat") == pytest.approx(1 / 6)
    assert wer("I have 3 lives", "i have three lives") == 0.0
    assert wer("", "") == 0.0 and wer("", "noise") == 1.0
