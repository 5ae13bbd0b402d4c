"""GET /videos: the catalog of reference/003 across the caller's streams, filtered and paged."""
from __future__ import annotations

import pytest

from tests.helpers import call


@pytest.fixture()
def catalog_world(sign_in, make_user, make_stream, make_video):
    """Two streams of the caller (admin of one, viewer of the other) and a stranger's stream."""
    from chalicelib import db
    me, other = sign_in(), make_user()
    mine = make_stream({"id": me["user"]["id"]})                 # the caller is its admin
    theirs = make_stream(other)
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, 'viewer')",
               (theirs["id"], me["user"]["id"]))
    foreign = make_stream(other)
    made = {}

    def video(stream, name, **cols):
        row = make_video(stream, other if stream is not mine else {"id": me["user"]["id"]}, title=name)
        sets = ", ".join(f"{k} = %({k})s" for k in cols)
        if sets:
            db.execute(f"UPDATE videos SET {sets} WHERE id = %(id)s", {**cols, "id": row["id"]})
        made[name] = str(row["id"])

    video(mine, "Sniper duel", category="FPS", tags=["sniper", "ranked"], status="complete",
          processing_index=0, featured=True, description="long shot across the map")
    video(mine, "Hidden here", hidden_at="now()", status="complete", processing_index=0)
    video(theirs, "Tank push", category="FPS", tags=["tank"], status="running", processing_index=2)
    video(theirs, "Hidden there", hidden_at="now()", category="FPS")
    video(theirs, "Gone", deleted_at="now()", category="FPS")
    video(theirs, "Race day 100%_off", category="Racing", status="failed", description="a SNIPER cameo")
    video(foreign, "Foreign sniper", category="FPS", tags=["sniper"], featured=True)
    return me, made


def _titles(client, me, query=""):
    status, body = call(client, "GET", f"/videos{query}", me)
    assert status == 200, body
    return [v["title"] for v in body["videos"]], body


def test_the_catalog_lists_only_what_the_caller_may_see(client, catalog_world):
    me, made = catalog_world
    titles, body = _titles(client, me)
    # newest first; hidden only in the stream the caller administers; nothing deleted or foreign
    assert titles == ["Race day 100%_off", "Tank push", "Hidden here", "Sniper duel"]
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 4, "totalPages": 1}
    first = body["videos"][-1]
    assert first["id"] == made["Sniper duel"] and first["tags"] == ["sniper", "ranked"]
    assert first["featured"] is True and first["category"] == "FPS" and first["status"] == "complete"
    assert first["thumbnail_url"].endswith(f"/files/videos/{first['id']}/thumbnail")


@pytest.mark.parametrize("query,expected", [
    ("?category=FPS", ["Tank push", "Sniper duel"]),
    ("?tag=sniper", ["Sniper duel"]),
    ("?status=ready", ["Hidden here", "Sniper duel"]),
    ("?status=processing", ["Tank push"]),
    ("?status=failed", ["Race day 100%_off"]),
    ("?featured=true", ["Sniper duel"]),
    ("?featured=false", ["Race day 100%_off", "Tank push", "Hidden here"]),
    ("?search=sniper", ["Race day 100%_off", "Sniper duel"]),      # title or description, any case
    ("?q=ACROSS%20THE", ["Sniper duel"]),
    ("?search=100%25_", ["Race day 100%_off"]),                  # % and _ are literal
    ("?search=%25", ["Race day 100%_off"]),
    ("?category=FPS&tag=tank&status=processing&featured=false", ["Tank push"]),
    ("?category=Nothing", []),
])
def test_filters(client, catalog_world, query, expected):
    me, _ = catalog_world
    titles, body = _titles(client, me, query)
    assert titles == expected and body["pagination"]["total"] == len(expected)


def test_pages(client, catalog_world):
    me, _ = catalog_world
    seen = []
    for page in (1, 2, 3):
        titles, body = _titles(client, me, f"?page={page}&limit=3")
        assert body["pagination"] == {"page": page, "limit": 3, "total": 4, "totalPages": 2}
        seen += titles
    assert seen == ["Race day 100%_off", "Tank push", "Hidden here", "Sniper duel"]


@pytest.mark.attack
@pytest.mark.parametrize("query,detail", [
    ("?status=uploading", "status must be one of"),
    ("?featured=maybe", "featured must be true or false"),
    ("?search=" + "x" * 201, "search must be 1 to 200 characters"),
    ("?tag=" + "t" * 41, "tag must be 1 to 40 characters"),
    ("?category=%20", "category must be 1 to 50 characters"),
    ("?page=0", "page must be 1 or more"),
    ("?limit=abc", "limit must be an integer"),
    ("?limit=1000", "limit must be at most 100"),
])
def test_bad_filters_are_400(client, catalog_world, query, detail):
    me, _ = catalog_world
    status, body = call(client, "GET", f"/videos{query}", me)
    assert status == 400 and any(detail in d for d in body["details"]), body


@pytest.mark.attack
def test_strangers_see_nothing_and_anonymous_is_401(client, catalog_world, sign_in):
    stranger = sign_in()
    status, body = call(client, "GET", "/videos?search=sniper", stranger)
    assert status == 200 and body["videos"] == [] and body["pagination"]["total"] == 0
    assert body["pagination"]["totalPages"] == 0
    assert call(client, "GET", "/videos", None)[0] == 401
