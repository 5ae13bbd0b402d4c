"""Game vocabulary: the default gaming glossary and compound words spelt three ways.

Gamers write and say compounds as one word, two words or hyphenated ("headshot",
"head shot", "head-shot"); a transcript may hold any of them. `compound_variants`
gives every spelling of a query so keyword search treats them as one. Pure
Python (no model), so the API may import it.
"""
from __future__ import annotations

import re

# Compounds gamers use, split where the parts are: the joined form is a search variant
# of the split one and the other way round.
COMPOUNDS: tuple[tuple[str, str], ...] = (
    ("head", "shot"), ("med", "kit"), ("one", "tap"), ("kill", "streak"), ("wall", "bang"),
    ("spawn", "camp"), ("no", "scope"), ("quick", "scope"), ("team", "kill"), ("hit", "box"),
    ("loot", "box"), ("power", "up"), ("air", "drop"), ("health", "pack"), ("game", "play"),
    ("bomb", "site"), ("fire", "fight"), ("speed", "run"), ("boss", "fight"), ("back", "stab"),
    ("care", "package"), ("clutch", "play"), ("over", "heal"), ("flash", "bang"),
)
# What the platform ships for every stream: compounds, callouts and general game words.
DEFAULT_GLOSSARY: tuple[str, ...] = (
    "headshot", "medkit", "one-tap", "killstreak", "wallbang", "no-scope", "flashbang",
    "respawn", "spawn", "bomb site", "flank", "rotate", "push", "smoke grenade", "sniper",
    "objective", "capture point", "healer", "tank", "support", "ammo", "reload", "loadout",
    "GG", "clutch", "ace", "ult", "cooldown", "buff", "nerf", "aggro", "lobby", "ranked",
)
_JOINED = {a + b: (a, b) for a, b in COMPOUNDS}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
MAX_VARIANTS = 8


def words(text: str) -> list[str]:
    """Lower-case words; hyphens and other punctuation separate them."""
    return _WORD.findall(text.lower())


def compound_variants(query: str) -> list[str]:
    """The query first, then its other compound spellings (two adjacent words joined,
    a known compound split, or hyphenated), at most MAX_VARIANTS in all."""
    tokens = words(query)
    variants = [query.strip()]

    def add(parts: list[str]) -> None:
        text = " ".join(parts)
        if text and text not in variants and len(variants) < MAX_VARIANTS:
            variants.append(text)

    add(tokens)
    for i, tok in enumerate(tokens):
        if tok in _JOINED:
            a, b = _JOINED[tok]
            add([*tokens[:i], a, b, *tokens[i + 1:]])
            add([*tokens[:i], f"{a}-{b}", *tokens[i + 1:]])
    for i in range(len(tokens) - 1):
        joined = tokens[i] + tokens[i + 1]
        if joined in _JOINED or len(tokens) == 2:
            add([*tokens[:i], joined, *tokens[i + 2:]])
            add([*tokens[:i], f"{tokens[i]}-{tokens[i + 1]}", *tokens[i + 2:]])
    return variants


# ---------------------------------------------------------------- a stream's glossary

MAX_TERMS = 200          # entries a stream may hold
MAX_TERM_CHARS = 40      # a term or a variant
MAX_VARIANTS_PER_TERM = 8
# Whisper's prompt holds at most 223 tokens; the glossary gets this many characters of
# it (~100 tokens), the stream's own terms first, so one stream cannot crowd the decoder.
PROMPT_CHARS = 400
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                 "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
_REFUSED = r"\x00-\x1f\x7f<>{}\[\]\\|`^~"
_TERM_CHARS = re.compile(f"^[^{_REFUSED}]+$")
# The same rule for the API document: allowed characters, at least one that is not a space.
TERM_PATTERN = f"^[^{_REFUSED}]*[^\\s{_REFUSED}][^{_REFUSED}]*$"


def parse_entries(value: object) -> tuple[list[dict], list[str]]:
    """Validated glossary entries from a request, and every problem found.

    An entry is a string (the spelling to keep) or {"term": str, "variants": [str, ...]}
    (spellings to rewrite to the term). Terms are unique case-insensitively, and a
    variant may belong to one term only.
    """
    problems: list[str] = []
    if not isinstance(value, list):
        return [], ["terms must be a list"]
    if len(value) > MAX_TERMS:
        problems.append(f"terms: at most {MAX_TERMS} entries (got {len(value)})")
    entries: list[dict] = []
    owner: dict[str, str] = {}
    for i, raw in enumerate(value[:MAX_TERMS]):
        if isinstance(raw, str):
            raw = {"term": raw, "variants": []}
        if not isinstance(raw, dict) or set(raw) - {"term", "variants"}:
            problems.append(f"terms[{i}]: a string or an object with term and variants")
            continue
        term, variants = raw.get("term"), raw.get("variants", [])
        bad = _bad_spelling(term)
        if bad:
            problems.append(f"terms[{i}].term: {bad}")
            continue
        term = " ".join(term.split())
        if not isinstance(variants, list) or len(variants) > MAX_VARIANTS_PER_TERM:
            problems.append(f"terms[{i}].variants: a list of at most {MAX_VARIANTS_PER_TERM} strings")
            continue
        clean: list[str] = []
        for j, variant in enumerate(variants):
            bad = _bad_spelling(variant)
            if bad:
                problems.append(f"terms[{i}].variants[{j}]: {bad}")
            elif " ".join(variant.split()).lower() != term.lower():
                clean.append(" ".join(variant.split()))
        for spelling in [term, *clean]:
            key = spelling.lower()
            if key in owner and owner[key].lower() != term.lower():
                problems.append(f"terms[{i}]: {spelling!r} already belongs to {owner[key]!r}")
            elif key in owner and spelling is term:
                problems.append(f"terms[{i}]: {term!r} is listed twice")
            owner.setdefault(key, term)
        entries.append({"term": term, "variants": list(dict.fromkeys(clean))})
    return entries, problems


def _bad_spelling(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if len(value.strip()) > MAX_TERM_CHARS:
        return f"at most {MAX_TERM_CHARS} characters"
    if not _TERM_CHARS.match(value):
        return "letters, digits, spaces and ordinary punctuation only"
    return None


def default_entries() -> list[dict]:
    """The platform's gaming glossary as entries."""
    return [{"term": term, "variants": []} for term in DEFAULT_GLOSSARY]


def effective(entries: list[dict], include_default: bool = True) -> list[dict]:
    """The stream's entries, then the default ones it does not already name."""
    if not include_default:
        return list(entries)
    taken = {s.lower() for e in entries for s in [e["term"], *e["variants"]]}
    return [*entries, *(e for e in default_entries() if e["term"].lower() not in taken)]


def prompt(entries: list[dict]) -> str:
    """The terms as Whisper hotwords ("Dust 2, headshot, ..."), at most PROMPT_CHARS."""
    out = ""
    for entry in entries:
        nxt = f"{out}, {entry['term']}" if out else entry["term"]
        if len(nxt) > PROMPT_CHARS:
            break
        out = nxt
    return out


def spellings(entry: dict) -> list[str]:
    """Every spelling that means the entry's term: given variants, compound and number forms."""
    term = entry["term"]
    found = [*entry["variants"], *compound_variants(term)[1:]]
    tokens = words(term)
    for i, tok in enumerate(tokens):  # "Dust 2" <-> "dust two"
        if tok.isdigit() and int(tok) < len(_NUMBER_WORDS):
            found.append(" ".join([*tokens[:i], _NUMBER_WORDS[int(tok)], *tokens[i + 1:]]))
        elif tok in _NUMBER_WORDS:
            found.append(" ".join([*tokens[:i], str(_NUMBER_WORDS.index(tok)), *tokens[i + 1:]]))
    if term != term.lower():  # a proper spelling ("GG", "Dust 2"): fix the case too
        found.append(term.lower())
    return list(dict.fromkeys(s for s in found if s != term))


class Normalizer:
    """Rewrites the spellings of a glossary to its terms ("head shot" -> "headshot").

    One pass over the text, the longest spelling winning, so a rewrite never feeds
    another; words are matched whole, case-insensitively.
    """

    def __init__(self, entries: list[dict]) -> None:
        self._to_term: dict[tuple[str, ...], str] = {}
        for entry in entries:
            for spelling in spellings(entry):
                self._to_term.setdefault(_key_tokens(spelling), entry["term"])
        self._to_term = {k: v for k, v in self._to_term.items() if k}
        self._longest = max((len(k) for k in self._to_term), default=0)
        alternatives = sorted({r"\s+".join(re.escape(t) for t in k) for k in self._to_term},
                              key=len, reverse=True)
        self._text_re = (re.compile(r"(?<![\w'-])(?:" + "|".join(alternatives) + r")(?![\w'-])",
                                    re.IGNORECASE) if alternatives else None)

    def text(self, text: str) -> str:
        """The text with every glossary spelling replaced by its term."""
        if self._text_re is None:
            return text
        return self._text_re.sub(lambda m: self._to_term.get(_key_tokens(m.group(0)), m.group(0)),
                                 text)

    def words(self, timed: list[dict]) -> list[dict]:
        """Timed words ({word, start, end, probability}) with spellings merged into terms:
        the merged word spans its parts, keeps their punctuation and their lowest probability."""
        out: list[dict] = []
        i = 0
        while i < len(timed):
            for n in range(min(self._longest, len(timed) - i), 0, -1):
                part = timed[i:i + n]
                term = self._to_term.get(tuple(_word_key(w["word"]) for w in part))
                if term is not None and all(_word_key(w["word"]) for w in part):
                    lead = re.match(r"^\W*", part[0]["word"]).group(0)
                    trail = re.search(r"[^\w'-]*$", part[-1]["word"]).group(0)
                    out.append({**part[0], "word": f"{lead}{term}{trail}", "end": part[-1]["end"],
                                "probability": min(w["probability"] for w in part)})
                    i += n
                    break
            else:
                out.append(timed[i])
                i += 1
        return out


def _key_tokens(spelling: str) -> tuple[str, ...]:
    return tuple(spelling.lower().split())


def _word_key(word: str) -> str:
    return re.sub(r"^[^\w]+|[^\w'-]+$", "", word.lower().strip())
