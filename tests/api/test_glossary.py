"""A stream's game vocabulary: members read it, admins replace it, bad input is a 400 that changes nothing."""
from __future__ import annotations

import uuid

import pytest

from chalicelib import glossary
from tests.helpers import call

DUST = {"term": "Dust 2", "variants": ["dust too"]}


def add_member(stream_id, who, role):
    from chalicelib import db
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (stream_id, who["user"]["id"], role))


def stored(stream_id):
    from chalicelib import db
    return db.fetch_one("SELECT entries, include_default, updated_by FROM stream_glossaries"
                        " WHERE stream_id = %s", (stream_id,))


@pytest.fixture()
def crew(client, sign_in):
    admin, creator, viewer, outsider = sign_in(), sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Crew"})
    assert status == 201
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    return {"sid": stream["id"], "admin": admin, "creator": creator, "viewer": viewer,
            "outsider": outsider}


def test_a_new_stream_has_the_default_glossary(client, crew):
    status, body = call(client, "GET", f"/streams/{crew['sid']}/glossary", crew["viewer"])
    assert status == 200
    assert body["terms"] == [] and body["include_default"] is True and body["updated_at"] is None
    assert body["default_terms"] == list(glossary.DEFAULT_GLOSSARY)
    assert body["limits"] == {"terms": glossary.MAX_TERMS, "term_chars": glossary.MAX_TERM_CHARS,
                              "variants_per_term": glossary.MAX_VARIANTS_PER_TERM}


def test_admin_replaces_the_glossary_and_members_read_it(client, crew):
    path = f"/streams/{crew['sid']}/glossary"
    status, body = call(client, "PUT", path, crew["admin"],
                        {"terms": [DUST, "  Mirage  ", {"term": "Ana"}], "include_default": False})
    assert status == 200, body
    expected = [DUST, {"term": "Mirage", "variants": []}, {"term": "Ana", "variants": []}]
    assert body["terms"] == expected and body["include_default"] is False and body["updated_at"]
    for who in ("viewer", "creator", "admin"):
        assert call(client, "GET", path, crew[who]) == (200, body)
    row = stored(crew["sid"])
    assert row["entries"] == expected and str(row["updated_by"]) == crew["admin"]["user"]["id"]
    # replaced whole: a second PUT drops what the first stored
    status, body = call(client, "PUT", path, crew["admin"], {"terms": ["Inferno"]})
    assert status == 200 and body["terms"] == [{"term": "Inferno", "variants": []}]
    assert body["include_default"] is True
    from chalicelib import db
    audit = db.fetch_all("SELECT details FROM audit_log WHERE action = 'stream.glossary'"
                         " AND stream_id = %s", (crew["sid"],))
    assert [a["details"] for a in audit] == [{"terms": 3, "include_default": False},
                                             {"terms": 1, "include_default": True}]


@pytest.mark.parametrize("who", ["viewer", "creator", "outsider", None])
def test_only_stream_admins_may_change_it(client, crew, who):
    path = f"/streams/{crew['sid']}/glossary"
    assert call(client, "PUT", path, crew["admin"], {"terms": [DUST]})[0] == 200
    before = stored(crew["sid"])
    status, body = call(client, "PUT", path, crew[who] if who else None, {"terms": ["hacked"]})
    assert status == {"viewer": 403, "creator": 403, "outsider": 403, None: 401}[who], body
    assert "error" in body and stored(crew["sid"]) == before


def test_strangers_cannot_read_it(client, crew):
    path = f"/streams/{crew['sid']}/glossary"
    call(client, "PUT", path, crew["admin"], {"terms": ["secret-map"]})
    status, body = call(client, "GET", path, crew["outsider"])
    assert status == 403 and "secret-map" not in str(body)
    assert call(client, "GET", path, None)[0] == 401
    assert call(client, "GET", f"/streams/{uuid.uuid4()}/glossary", crew["admin"])[0] == 404


def test_a_stream_admin_cannot_write_another_streams_glossary(client, crew, sign_in):
    other_admin = sign_in()
    status, other = call(client, "POST", "/streams", other_admin, {"name": "Other"})
    assert status == 201
    status, _ = call(client, "PUT", f"/streams/{crew['sid']}/glossary", other_admin, {"terms": ["x"]})
    assert status == 403 and stored(crew["sid"]) is None


@pytest.mark.parametrize("body, detail", [
    ({"terms": [f"term{i}" for i in range(glossary.MAX_TERMS + 1)]}, "at most 200 entries"),
    ({"terms": ["x" * (glossary.MAX_TERM_CHARS + 1)]}, "terms[0].term: at most 40 characters"),
    ({"terms": [{"term": "Dust 2", "variants": ["v"] * 9}]}, "terms[0].variants: a list of at most 8"),
    ({"terms": [{"term": "Dust 2", "variants": ["y" * 41]}]}, "terms[0].variants[0]: at most 40"),
    ({"terms": ["Mirage", "mirage"]}, "'mirage' is listed twice"),
    ({"terms": ["Nuke", {"term": "Vertigo", "variants": ["nuke"]}]}, "'nuke' already belongs to 'Nuke'"),
    ({"terms": ["   "]}, "terms[0].term: must be a non-empty string"),
    ({"terms": ["<script>"]}, "letters, digits, spaces and ordinary punctuation only"),
    ({"terms": ["tab\there"]}, "letters, digits, spaces and ordinary punctuation only"),
    ({"terms": [7]}, "terms[0]: a string or an object with term and variants"),
    ({"terms": [{"term": "x", "spelling": "y"}]}, "terms[0]: a string or an object with term and variants"),
    ({"terms": "headshot"}, "terms must be a list"),
    ({}, "terms must be a list"),
    ({"terms": [], "include_default": "yes"}, "include_default must be true or false"),
    ({"terms": [], "extra": 1}, "unknown field 'extra'"),
])
def test_bad_glossaries_are_400_and_change_nothing(client, crew, body, detail):
    path = f"/streams/{crew['sid']}/glossary"
    assert call(client, "PUT", path, crew["admin"], {"terms": [DUST]})[0] == 200
    before = stored(crew["sid"])
    status, answer = call(client, "PUT", path, crew["admin"], body)
    assert status == 400 and answer["error"] == "Invalid glossary", answer
    assert any(detail in d for d in answer["details"]), answer["details"]
    assert stored(crew["sid"]) == before


def test_every_problem_is_listed_at_once(client, crew):
    status, answer = call(client, "PUT", f"/streams/{crew['sid']}/glossary", crew["admin"],
                          {"terms": ["ok", "", "z" * 50], "include_default": 1})
    assert status == 400 and len(answer["details"]) == 3, answer
    assert stored(crew["sid"]) is None


def test_the_glossary_goes_with_its_stream(client, crew):
    path = f"/streams/{crew['sid']}/glossary"
    assert call(client, "PUT", path, crew["admin"], {"terms": [DUST]})[0] == 200
    assert call(client, "DELETE", f"/streams/{crew['sid']}", crew["admin"])[0] == 204
    assert stored(crew["sid"]) is None


def test_the_transcribe_step_reads_its_own_streams_glossary(client, crew, sign_in, make_stream, make_video):
    from chalicelib.pipeline.transcribe import stream_glossary

    path = f"/streams/{crew['sid']}/glossary"
    mine = make_video({"id": crew["sid"]}, crew["admin"]["user"])
    other_owner = sign_in()["user"]
    theirs = make_video(make_stream(other_owner), other_owner)
    assert stream_glossary(str(mine["id"])) == glossary.default_entries()
    assert call(client, "PUT", path, crew["admin"], {"terms": [DUST]})[0] == 200
    assert stream_glossary(str(mine["id"])) == [DUST, *glossary.default_entries()]
    assert stream_glossary(str(theirs["id"])) == glossary.default_entries()   # nothing crosses streams
    assert call(client, "PUT", path, crew["admin"], {"terms": [DUST], "include_default": False})[0] == 200
    assert stream_glossary(str(mine["id"])) == [DUST]
