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
