"""Word error rate for the speech tests: jiwer's, after our normalisation.

(substitutions + deletions + insertions) / reference words. jiwer does the
alignment; normalize() is ours because jiwer's transforms do not spell out
numbers ("3 lives" and "three lives" are the same words to a listener).
"""
from __future__ import annotations

import re
import unicodedata

import jiwer

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBER_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_ORDINAL_RE = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                       "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """English words for a non-negative integer: 42 -> 'forty two'."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return f"{number_to_words(high)} {name}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _spell_ordinal(match: re.Match) -> str:
    *head, last = number_to_words(int(match.group(1))).split()
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _spell_number(match: re.Match) -> str:
    text = match.group(0).replace(",", "")
    whole, _, frac = text.partition(".")
    words = number_to_words(int(whole))
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return f" {words} "


def normalize(text: str) -> list[str]:
    """Lower-case words with punctuation dropped and digits spelled out."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    text = _ORDINAL_RE.sub(_spell_ordinal, text)
    text = text.replace("%", " percent ").replace("&", " and ").replace("-", " ")
    text = _NUMBER_RE.sub(_spell_number, text)
    return _TOKEN_RE.findall(text)


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions), by jiwer."""
    if not ref:
        return len(hyp)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp) if hyp else "")
    return out.substitutions + out.deletions + out.insertions


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against `reference`, after normalisation."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return jiwer.wer(" ".join(ref), " ".join(hyp)) if hyp else 1.0
