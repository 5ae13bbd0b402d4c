"""Search rankings on rows written straight into Postgres (no media pipeline needed).

tests/pipeline/test_intelligence.py searches real processed clips end to end;
these pin down each ranking's matching, ordering and visibility rules, which
the index-driven queries of chalicelib/api/search.py must keep.
"""
from __future__ import annotations

import json

import pytest

DIM = 384


def _unit(i: int) -> list[float]:
    v = [0.0] * DIM
    v[i] = 1.0
    return v


@pytest.fixture()
def world(stack, make_user, make_stream, make_video):
    """A member's stream with clips in every state, and a stranger's stream."""
    from chalicelib import db

    me, stranger = make_user(), make_user()
    mine, theirs = make_stream(me), make_stream(stranger)

    def clip(stream, owner, title, text, *, words=(), vector=None, **state):
        video = make_video(stream, owner, title=title)
        sets = {"processing_index": 0, "status": "complete", **state}
        db.execute(f"UPDATE videos SET {', '.join(f'{k} = %({k})s' for k in sets)} WHERE id = %(id)s",
                   {**sets, "id": video["id"]})
        db.execute("INSERT INTO transcript_segments (video_id, idx, start_s, end_s, text, words, embedding)"
                   " VALUES (%s, 0, 10.0, 15.0, %s, %s::jsonb, %s::vector)",
                   (video["id"], text, json.dumps(list(words)), json.dumps(vector) if vector else None))
        return str(video["id"])

    ids = {
        "phrase": clip(mine, me, "clip one", "quick, we capture the flag before the timer ends",
                       words=[{"word": w, "start": 10.0 + i} for i, w in
                              enumerate("quick, we capture the flag before the timer ends".split())],
                       vector=_unit(0)),
        "scattered": clip(mine, me, "clip two", "the flag is red so capture their base first"),
        "sniper": clip(mine, me, "rooftop sniper duel", "a sniper on the roof of the red building",
                       vector=_unit(1)),
        "processing": clip(mine, me, "clip three", "we capture the flag again", vector=_unit(0),
                           processing_index=2, status="running"),
        "hidden": clip(mine, me, "clip four", "capture the flag once more", vector=_unit(0),
                       hidden_at="now()"),
        "deleted": clip(mine, me, "clip five", "capture the flag for good", vector=_unit(0),
                        deleted_at="now()"),
        "stranger": clip(theirs, stranger, "capture the flag finals", "capture the flag finals",
                         vector=_unit(0)),
    }
    return {"me": me, "uid": str(me["id"]), "ids": ids}


def _ids(rows) -> list[str]:
    return [str(r["video_id"]) for r in rows]


def test_keyword_ranks_the_spoken_phrase_first_and_sees_only_listed_clips_of_my_streams(world):
    from chalicelib.api import search

    hits = search._keyword_hits(world["uid"], "capture the flag")
    ids = world["ids"]
    assert _ids(hits) == [ids["phrase"], ids["scattered"]]
    assert hits[0]["title"] == "clip one"
    assert search.spoken_at(hits[0], "capture the flag") == 12.0  # "capture" is the third word


def test_keyword_matches_part_of_a_word(world):
    from chalicelib.api import search

    assert _ids(search._keyword_hits(world["uid"], "snip")) == [world["ids"]["sniper"]]


def test_titles_match_by_substring_and_by_similarity(world):
    from chalicelib.api import search

    assert _ids(search._title_hits(world["uid"], "sniper duel")) == [world["ids"]["sniper"]]
    # A misspelt title still matches (trigram similarity); the stranger's title does not show.
    assert _ids(search._title_hits(world["uid"], "rooftop snipr duel")) == [world["ids"]["sniper"]]
    assert world["ids"]["stranger"] not in _ids(search._title_hits(world["uid"], "capture the flag"))


def test_semantic_candidates_pass_the_visibility_rules(world):
    from chalicelib.api import search

    hits = search._semantic_hits(world["uid"], _unit(0))
    # Identical vectors in hidden, deleted, unprocessed and foreign clips are skipped.
    assert _ids(hits) == [world["ids"]["phrase"]]
    assert hits[0]["score"] == pytest.approx(1.0) and hits[0]["title"] == "clip one"


def test_search_fuses_rankings_and_names_every_video(world):
    from chalicelib.api import search

    body = search.search(world["me"], {"q": "capture the flag"}, 1, 20)
    found = {v["id"]: v for v in body["videos"]}
    assert list(found)[:1] == [world["ids"]["phrase"]]
    assert set(found) <= {world["ids"]["phrase"], world["ids"]["scattered"], world["ids"]["sniper"]}
    assert found[world["ids"]["phrase"]]["title"] == "clip one"
    assert found[world["ids"]["phrase"]]["timestamp"] == 12.0
    assert body["total_results"] == len(found)


@pytest.mark.parametrize("query", ["headshot", "head shot", "head-shot", "HEAD SHOT"])
def test_compound_words_match_in_every_spelling(stack, make_user, make_stream, make_video, query):
    """"headshot", "head shot" and "head-shot" in speech are one word to keyword search."""
    from chalicelib import db
    from chalicelib.api import search

    me, stranger = make_user(), make_user()
    mine, theirs = make_stream(me), make_stream(stranger)
    ids = {}
    for stream, owner, name, text in [
            (mine, me, "joined", "what a headshot from the roof"),
            (mine, me, "spaced", "clean head shot on the sniper"),
            (mine, me, "hyphen", "another head-shot for the team"),
            (mine, me, "apart", "shot him in the head twice"),
            (theirs, stranger, "foreign", "my best headshot ever")]:
        video = make_video(stream, owner, title=name)
        db.execute("UPDATE videos SET processing_index = 0, status = 'complete' WHERE id = %s",
                   (video["id"],))
        words = [{"word": w, "start": 10.0 + i} for i, w in enumerate(text.split())]
        db.execute("INSERT INTO transcript_segments (video_id, idx, start_s, end_s, text, words)"
                   " VALUES (%s, 0, 10.0, 15.0, %s, %s::jsonb)", (video["id"], text, json.dumps(words)))
        ids[name] = str(video["id"])
    hits = search._keyword_hits(str(me["id"]), query)
    found = _ids(hits)
    # All three spellings, the words "head" and "shot" apart only below them, never a stranger's clip.
    assert set(found[:3]) == {ids["joined"], ids["spaced"], ids["hyphen"]}
    assert ids["foreign"] not in found
    assert found[3:] in ([], [ids["apart"]])
    at = {str(h["video_id"]): search.spoken_at(h, query) for h in hits}
    assert (at[ids["joined"]], at[ids["spaced"]], at[ids["hyphen"]]) == (12.0, 11.0, 11.0)


def test_glossary_compound_variants():
    from chalicelib import glossary

    assert glossary.compound_variants("medkit") == ["medkit", "med kit", "med-kit"]
    assert glossary.compound_variants("capture the flag") == ["capture the flag"]
    assert len(glossary.compound_variants(" ".join(["headshot"] * 20))) == glossary.MAX_VARIANTS
    assert "headshot" in glossary.DEFAULT_GLOSSARY
