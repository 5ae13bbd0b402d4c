"""POST/GET /sync and PUT /videos/{id} with vector clocks, against the real API and Postgres."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import json

import pytest
import requests

from chalicelib import db
from tests.sync.conftest import add_member
from tests.helpers import call


def sync(client, who, vid, ops=(), clock=None, version=None, device=None):
    body = {"video_id": vid, "operations": list(ops)}
    if clock is not None:
        body["client_vector_clock"] = clock
    if version is not None:
        body["client_version"] = version
    if device:
        body["device_id"] = device
    return call(client, "POST", "/sync", who, body)


def test_devices_editing_offline_merge_without_losing_anything(client, crew):
    vid, me = crew["first"], crew["creator"]
    status, start = sync(client, me, vid)
    assert status == 200 and start["action"] == "none" and start["server_version"] == 1
    base = start["server_vector_clock"]
    # Both devices start from the same state and edit offline.
    status, phone = sync(client, me, vid, [
        {"id": "p1", "type": "update_title", "value": "Clutch 1v4"},
        {"id": "p2", "type": "add_tag", "tag": "clutch"}], clock=base, device="phone")
    assert status == 200 and phone["action"] == "applied" and phone["sync_type"] == "up_to_date"
    assert phone["server_version"] == 2
    status, laptop = sync(client, me, vid, [
        {"id": "l1", "type": "update_description", "value": "final round"},
        {"id": "l2", "type": "add_tag", "tag": "ace"},
        {"id": "l3", "type": "update_category", "value": "Valorant"},
        {"id": "l4", "type": "update_featured", "value": True}], clock=base, device="laptop")
    assert status == 200
    assert laptop["sync_type"] == "client_behind" and laptop["action"] == "merged_concurrent"
    assert laptop["conflicts_resolved"] == 0              # different fields and tags: nothing to decide
    merged = laptop["merged_video"]
    assert (merged["title"], merged["description"], merged["category"], merged["featured"]) == \
        ("Clutch 1v4", "final round", "Valorant", True)
    assert sorted(merged["tags"]) == ["ace", "clutch"] and merged["version"] == 3
    assert merged == call(client, "GET", f"/videos/{vid}", me)[1] | {"liked": merged["liked"]}
    clock = laptop["server_vector_clock"]
    assert clock[f"{me['user']['id']}:phone"] == 2 and clock[f"{me['user']['id']}:laptop"] == 4


def test_concurrent_title_edits_resolve_the_same_way_and_count_as_conflicts(client, crew):
    vid, me, admin = crew["first"], crew["creator"], crew["admin"]
    base = sync(client, me, vid)[1]["server_vector_clock"]
    sync(client, me, vid, [{"type": "update_title", "value": "mine"}], clock=base, device="phone")
    status, body = sync(client, admin, vid, [{"type": "update_title", "value": "theirs"}], clock=base)
    assert status == 200 and body["conflicts_resolved"] == 1 and body["action"] == "merged_concurrent"
    winner = body["merged_video"]["title"]
    assert winner in ("mine", "theirs")
    # A causally later edit (made after seeing the merge) always wins.
    status, body = sync(client, me, vid, [{"type": "update_title", "value": "agreed"}],
                        clock=body["server_vector_clock"], device="phone")
    assert body["merged_video"]["title"] == "agreed" and body["conflicts_resolved"] == 0


def test_tag_removal_and_concurrent_re_add_both_survive_the_merge(client, crew):
    vid, me, admin = crew["first"], crew["creator"], crew["admin"]
    status, body = sync(client, me, vid, [{"type": "add_tag", "tag": "fps"}], device="phone")
    seen = body["server_vector_clock"]
    # The admin removes "fps" having seen the add; the laptop adds it again without having seen the removal.
    sync(client, admin, vid, [{"type": "remove_tag", "tag": "fps"}], clock=seen)
    status, body = sync(client, me, vid, [{"type": "add_tag", "tag": "fps"}], clock=seen, device="laptop")
    assert body["merged_video"]["tags"] == ["fps"]                       # the unseen add wins
    status, body = sync(client, admin, vid, [{"type": "remove_tag", "tag": "fps"}],
                        clock=body["server_vector_clock"])
    assert body["merged_video"]["tags"] == []                            # both adds were seen: gone
    status, log = call(client, "GET", f"/sync?video_id={vid}", me)
    adds = [op["id"] for op in log["operations"] if op["type"] == "add_tag"]
    removes = [op for op in log["operations"] if op["type"] == "remove_tag"]
    # Each remove lists the live adds it saw; the first add, already tombstoned, is not listed again.
    assert [r["observed"] for r in removes] == [[adds[0]], [adds[1]]]


def test_a_resent_batch_applies_once(client, crew):
    vid, me = crew["first"], crew["creator"]
    ops = [{"id": "same-1", "type": "add_tag", "tag": "ace"}, {"id": "same-2", "type": "update_title", "value": "Ace"}]
    first = sync(client, me, vid, ops)[1]
    again = sync(client, me, vid, ops)[1]
    assert again["action"] == "already_applied" and again["duplicates"] == 2 and again["applied"] == 0
    assert again["server_version"] == first["server_version"] == 2
    log = call(client, "GET", f"/sync?video_id={vid}", me)[1]["operations"]
    assert [op["id"] for op in log] == ["same-1", "same-2"]


def test_put_with_a_stale_clock_merges_other_fields_and_refuses_the_same_field(client, crew):
    vid, me, admin = crew["first"], crew["creator"], crew["admin"]
    status, video = call(client, "GET", f"/videos/{vid}", me)
    old = video["vector_clock"]
    assert call(client, "PUT", f"/videos/{vid}", admin, {"title": "Admin's title"})[0] == 200
    # The creator's copy is stale but only the description changed: merged.
    status, body = call(client, "PUT", f"/videos/{vid}", me, {"description": "edited", "vector_clock": old})
    assert status == 200 and (body["title"], body["description"]) == ("Admin's title", "edited")
    # The title was changed concurrently: no merge is possible for a whole-value PUT.
    status, body = call(client, "PUT", f"/videos/{vid}", me, {"title": "Mine", "vector_clock": old})
    assert status == 409
    assert body["conflict_type"] == "concurrent_update" and body["fields"] == ["title"]
    assert body["server_version"] == 3 and body["error"].startswith("Conflict detected")
    assert body["server_vector_clock"] == call(client, "GET", f"/videos/{vid}", me)[1]["vector_clock"]
    # By version too; and a fresh clock goes through.
    assert call(client, "PUT", f"/videos/{vid}", me, {"title": "Mine", "version": 1})[0] == 409
    status, body = call(client, "PUT", f"/videos/{vid}", me,
                        {"title": "Mine", "vector_clock": body["server_vector_clock"]})
    assert status == 200 and body["title"] == "Mine" and body["version"] == 4
    assert call(client, "GET", f"/videos/{vid}", me)[1]["title"] == "Mine"


def test_put_without_a_clock_still_overwrites_and_is_logged(client, crew):
    vid, me = crew["first"], crew["creator"]
    status, body = call(client, "PUT", f"/videos/{vid}", me, {"tags": ["b", "a"], "category": "FPS"})
    assert status == 200 and body["tags"] == ["b", "a"] and body["category"] == "FPS"
    status, body = call(client, "PUT", f"/videos/{vid}", me, {"tags": ["a"], "featured": True})
    assert body["tags"] == ["a"] and body["featured"] is True and body["version"] == 3
    before = datetime.now(timezone.utc).isoformat()
    call(client, "PUT", f"/videos/{vid}", me, {"title": "later"})
    status, log = call(client, "GET", f"/sync?video_id={vid}&since={before.replace('+', '%2B')}", me)
    assert status == 200 and [(op["type"], op["value"], op["source"]) for op in log["operations"]] == \
        [("update_title", "later", "put")]
    assert log["server_version"] == 4 and log["operations"][0]["user_id"] == me["user"]["id"]


def test_only_admins_and_the_uploading_creator_edit(client, crew, sign_in):
    vid = crew["first"]
    other_creator = sign_in()
    add_member(crew["sid"], other_creator, "creator")
    denied = {"error": "Only the uploader or a stream admin can change this video"}
    op = [{"type": "update_title", "value": "x"}]
    assert sync(client, crew["viewer"], vid, op) == (403, denied)
    assert sync(client, other_creator, vid, op) == (403, denied)
    assert sync(client, crew["outsider"], vid, op) == (403, {"error": "Access denied"})
    assert sync(client, crew["admin"], vid, op)[0] == 200
    # Viewers may read the state and the log; outsiders may not.
    assert sync(client, crew["viewer"], vid)[0] == 200
    assert call(client, "GET", f"/sync?video_id={vid}", crew["viewer"])[0] == 200
    assert call(client, "GET", f"/sync?video_id={vid}", crew["outsider"])[0] == 403
    assert sync(client, crew["admin"], str(uuid.uuid4()), op)[0] == 404


def test_bad_sync_requests_are_400_with_details(client, crew):
    vid, me = crew["first"], crew["creator"]
    cases = [
        ({"operations": []}, ["video_id is required"]),
        ({"video_id": vid, "operations": "x"}, ["operations must be a list"]),
        ({"video_id": vid, "operations": [{"type": "drop_table"}]},
         ["operations[0]: type must be one of update_title, update_description, update_category,"
          " update_featured, add_tag, remove_tag, set_tags"]),
        ({"video_id": vid, "operations": [{"type": "update_title", "value": ""}]},
         ["operations[0]: title must be a non-empty string"]),
        ({"video_id": vid, "operations": [{"type": "update_featured", "value": "yes"}]},
         ["operations[0]: featured must be true or false"]),
        ({"video_id": vid, "operations": [{"type": "add_tag", "tag": "x" * 41}]},
         ["operations[0]: each tag must be 1 to 40 characters"]),
        ({"video_id": vid, "client_vector_clock": {"a": -1}},
         ["client_vector_clock: counts must be integers from 0 to 2147483647"]),
        ({"video_id": vid, "client_version": 0}, ["client_version must be a positive integer"]),
        ({"video_id": vid, "device_id": "a b"},
         ["device_id must be 1 to 64 letters, digits, '.', '_' or '-'"]),
        ({"video_id": vid, "extra": 1}, ["unknown field: extra"]),
    ]
    for body, details in cases:
        assert call(client, "POST", "/sync", me, body) == \
            (400, {"error": "Invalid sync request", "details": details}), body
    assert call(client, "GET", "/sync", me) == (400, {"error": "Invalid sync request",
                                                      "details": ["video_id is required"]})
    assert call(client, "GET", f"/sync?video_id={vid}&since=yesterday", me)[0] == 400
    assert call(client, "PUT", f"/videos/{vid}", me, {"title": "x", "vector_clock": []}) == \
        (400, {"error": "Invalid video data",
               "details": ["vector_clock must be an object of actor ids to counts"]})
    too_many = [{"type": "add_tag", "tag": f"t{i}"} for i in range(21)]
    status, body = sync(client, me, vid, too_many)
    assert status == 400 and body["details"] == ["a video has at most 20 tags"]
    assert call(client, "GET", f"/videos/{vid}", me)[1]["tags"] == []      # nothing half-written


def test_concurrent_syncs_all_land(live_api, crew):
    """Eight devices at once over HTTP (chalice local): the row lock serialises them, none is lost."""
    vid, me = crew["first"], crew["creator"]
    barrier = threading.Barrier(8)

    def push(i):
        barrier.wait()
        return requests.post(f"{live_api}/sync", headers=me["headers"], timeout=60, json={
            "video_id": vid, "device_id": f"d{i}", "operations": [{"type": "add_tag", "tag": f"t{i}"}]})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(push, range(8)))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert sorted(r.json()["server_version"] for r in responses) == list(range(2, 10))
    video = requests.get(f"{live_api}/videos/{vid}", headers=me["headers"], timeout=30).json()
    assert sorted(video["tags"]) == sorted(f"t{i}" for i in range(8)) and video["version"] == 9
    assert len(video["vector_clock"]) == 8



# ---------------------------------------------------------------- a client that lies about its clock

MAX = 2**31 - 1


def snapshot(vid):
    """Everything a sync write touches: the video row (values, clock, version, CRDT state) and the log."""
    row = db.fetch_one("SELECT title, description, tags, category, featured, vector_clock, version,"
                       " crdt_state, updated_at FROM videos WHERE id = %s", (vid,))
    log = db.fetch_all("SELECT * FROM video_operations WHERE video_id = %s ORDER BY seq", (vid,))
    return row, log


@pytest.fixture
def edited(client, crew):
    """crew with "first" edited once by the creator (phone) and once by the admin: a clock of 2 actors."""
    vid, me, admin = crew["first"], crew["creator"], crew["admin"]
    assert sync(client, me, vid, [{"type": "update_title", "value": "t1"},
                                  {"type": "add_tag", "tag": "fps"}], device="phone")[0] == 200
    status, body = sync(client, admin, vid, [{"type": "update_description", "value": "d1"}])
    assert status == 200
    return crew | {"server": body["server_vector_clock"], "mine": f"{me['user']['id']}:phone",
                   "theirs": admin["user"]["id"]}


FORGED = {   # name -> (clock built from the fixture, the expected details with {c} the clock's field name)
    "co-editor's counter to the integer limit": (
        lambda e: {**e["server"], e["mine"]: MAX},
        lambda e: [f"{{c}}[{e['mine']}]: {MAX} is more than the server has seen (2)"]),
    "an actor the server never saw": (
        lambda e: {**e["server"], "ghost": 1},
        lambda e: ["{c}[ghost]: 1 is more than the server has seen (0)"]),
    "own counter far ahead": (
        lambda e: {**e["server"], e["theirs"]: 1000},
        lambda e: [f"{{c}}[{e['theirs']}]: 1000 is ahead of the server's 1 by more than the 1 operations sent"]),
    "2**63": (lambda e: {e["theirs"]: 2**63}, lambda e: [f"{{c}}: counts must be integers from 0 to {MAX}"]),
    "10**30": (lambda e: {e["theirs"]: 10**30}, lambda e: [f"{{c}}: counts must be integers from 0 to {MAX}"]),
    "negative": (lambda e: {e["theirs"]: -1}, lambda e: [f"{{c}}: counts must be integers from 0 to {MAX}"]),
    "a bool": (lambda e: {e["theirs"]: True}, lambda e: [f"{{c}}: counts must be integers from 0 to {MAX}"]),
    "a float": (lambda e: {e["theirs"]: 1.5}, lambda e: [f"{{c}}: counts must be integers from 0 to {MAX}"]),
    "a string": (lambda e: {e["theirs"]: "1"}, lambda e: [f"{{c}}: counts must be integers from 0 to {MAX}"]),
    "thousands of actors": (lambda e: {f"a{i}": 0 for i in range(5000)},
                            lambda e: ["{c} must have at most 64 entries"]),
    "a giant actor id": (lambda e: {"x" * 10_000: 1},
                         lambda e: ["{c}: actor ids must be 1 to 101 characters"]),
    "a list": (lambda e: [1, 2], lambda e: ["{c} must be an object of actor ids to counts"]),
}


@pytest.mark.attack
@pytest.mark.parametrize("case", list(FORGED))
def test_a_forged_clock_is_400_changes_nothing_and_co_editors_keep_editing(client, edited, case):
    vid, admin, me = edited["first"], edited["admin"], edited["creator"]
    clock, details = (f(edited) for f in FORGED[case])
    before = snapshot(vid)
    status, body = sync(client, admin, vid, [{"type": "update_title", "value": "forged"}], clock=clock)
    assert (status, body) == (400, {"error": "Invalid sync request",
                                    "details": [d.format(c="client_vector_clock") for d in details]})
    status, body = call(client, "PUT", f"/videos/{vid}", admin, {"title": "forged", "vector_clock": clock})
    assert (status, body) == (400, {"error": "Invalid video data",
                                    "details": [d.format(c="vector_clock") for d in details]})
    assert snapshot(vid) == before
    # The co-editor whose counter was targeted keeps editing, by sync and by PUT with its clock.
    status, body = sync(client, me, vid, [{"type": "update_title", "value": "still mine"}],
                        clock=edited["server"], device="phone")
    assert status == 200 and body["merged_video"]["title"] == "still mine"
    assert body["server_vector_clock"] == {edited["mine"]: 3, edited["theirs"]: 1}
    status, body = call(client, "PUT", f"/videos/{vid}", me,
                        {"description": "d2", "vector_clock": body["server_vector_clock"]})
    assert status == 200 and body["version"] == 5 and body["title"] == "still mine"


def test_an_honest_clock_may_count_its_own_unsent_operations(client, edited):
    """The own entry may be ahead by the operations sent (a device counting its offline edits), no more."""
    vid, admin = edited["first"], edited["admin"]
    clock = {**edited["server"], edited["theirs"]: 3}                # 1 known + the 2 operations sent
    status, body = sync(client, admin, vid, [{"type": "add_tag", "tag": "a"}, {"type": "add_tag", "tag": "b"}],
                        clock=clock)
    assert status == 200 and body["sync_type"] == "client_ahead"
    assert body["server_vector_clock"][edited["theirs"]] == 5
    # A read-only sync may not be ahead at all.
    status, body = sync(client, admin, vid, clock={edited["theirs"]: 6})
    assert status == 400 and body["details"] == [
        f"client_vector_clock[{edited['theirs']}]: 6 is ahead of the server's 5 by more than the 0 operations sent"]


@pytest.mark.attack
def test_giant_values_and_batches_are_400_and_change_nothing(client, edited):
    vid, admin = edited["first"], edited["admin"]
    before = snapshot(vid)
    cases = [
        ([{"type": "update_description", "value": "x" * 1_000_000}],
         ["operations[0]: description must be at most 5000 characters"]),
        ([{"type": "add_tag", "tag": "t" * 100_000}], ["operations[0]: each tag must be 1 to 40 characters"]),
        ([{"type": "set_tags", "tags": ["a"] * 10_000}], ["operations[0]: tags must have at most 20 items"]),
        ([{"id": "i" * 101, "type": "add_tag", "tag": "a"}],
         ["operations[0]: id must be a string of 1 to 100 characters"]),
        ([{"type": "add_tag", "tag": "a"}] * 101, ["operations must have at most 100 items"]),
    ]
    for ops, details in cases:
        assert sync(client, admin, vid, ops) == (400, {"error": "Invalid sync request", "details": details})
    assert snapshot(vid) == before


@pytest.mark.attack
def test_a_counter_at_the_limit_is_400_not_500(client, edited):
    """A clock stored before the bounds existed (planted here): the exhausted actor gets a 400, others edit."""
    vid, me, admin = edited["first"], edited["creator"], edited["admin"]
    db.execute("UPDATE videos SET vector_clock = vector_clock || %s::jsonb WHERE id = %s",
               (json.dumps({edited["mine"]: MAX}), vid))
    before = snapshot(vid)
    status, body = sync(client, me, vid, [{"type": "update_title", "value": "x"}], device="phone")
    assert (status, body) == (400, {"error": "Invalid sync request", "details": [
        f"the count of actor {edited['mine']} would pass {MAX}; sync with another device_id"]})
    assert snapshot(vid) == before
    assert sync(client, me, vid, [{"type": "update_title", "value": "x"}], device="laptop")[0] == 200
    assert call(client, "PUT", f"/videos/{vid}", admin, {"title": "y"})[0] == 200


@pytest.mark.attack
def test_a_video_clock_holds_a_bounded_number_of_actors(client, edited):
    vid, me, admin = edited["first"], edited["creator"], edited["admin"]
    for i in range(7):                                       # phone + 7 more: the creator's 8 devices
        assert sync(client, me, vid, [{"type": "add_tag", "tag": f"d{i}"}], device=f"d{i}")[0] == 200
    before = snapshot(vid)
    status, body = sync(client, me, vid, [{"type": "add_tag", "tag": "ninth"}], device="ninth")
    assert (status, body) == (400, {"error": "Invalid sync request", "details": [
        "a user edits a video from at most 8 devices; use a device_id that has edited it before"]})
    assert call(client, "PUT", f"/videos/{vid}", me, {"title": "plain"})[0] == 400   # the plain user id is a 9th
    assert snapshot(vid) == before
    assert sync(client, me, vid, [{"type": "add_tag", "tag": "again"}], device="d3")[0] == 200
    # A video's clock is full at 64 actors (planted: 8 users' devices): no newcomer, the known keep editing.
    fillers = {f"{uuid.uuid4()}:x": 1 for _ in range(64 - 9)}
    db.execute("UPDATE videos SET vector_clock = vector_clock || %s::jsonb WHERE id = %s",
               (json.dumps(fillers), vid))
    server = call(client, "GET", f"/videos/{vid}", admin)[1]["vector_clock"]
    assert len(server) == 64
    before = snapshot(vid)
    status, body = sync(client, admin, vid, [{"type": "add_tag", "tag": "x"}], clock=server, device="tablet")
    assert (status, body) == (400, {"error": "Invalid sync request", "details": [
        "a video's vector clock has at most 64 actors; edit from a device that has edited it before"]})
    assert snapshot(vid) == before
    status, body = sync(client, admin, vid, [{"type": "add_tag", "tag": "x"}], clock=server)
    assert status == 200 and len(body["server_vector_clock"]) == 64


def test_re_adding_a_tag_keeps_one_live_add_so_a_remove_stays_small(client, edited):
    """100 re-adds of a present tag replace each other: the remove that follows observes one add."""
    vid, me = edited["first"], edited["creator"]
    status, body = sync(client, me, vid, [{"type": "add_tag", "tag": "fps"}] * 100, device="phone")
    assert status == 200 and body["applied"] == 100 and body["merged_video"]["tags"] == ["fps"]
    status, body = sync(client, me, vid, [{"type": "remove_tag", "tag": "fps"}], device="phone")
    assert status == 200 and body["merged_video"]["tags"] == []
    log = call(client, "GET", f"/sync?video_id={vid}&limit=1000", me)[1]["operations"]
    adds = [op for op in log if op["type"] == "add_tag"]
    assert [len(op["observed"]) for op in adds] == [0] + [1] * 100   # each re-add replaced the one before
    assert len(log[-1]["observed"]) == 1 and log[-1]["type"] == "remove_tag"
    state = db.fetch_one("SELECT crdt_state FROM videos WHERE id = %s", (vid,))["crdt_state"]
    assert len(state["adds"]["fps"]) == 101 and len(state["removed"]) == 101
