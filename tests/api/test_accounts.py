"""Accounts are Google accounts: keyed by `sub`, verified emails only, no takeover by email."""
from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from chalicelib import db
from infra.local.google_keys import DevKey
from tests.helpers import call

pytestmark = pytest.mark.attack  # hostile callers: counted in bench/results/reliability.json

ADMIN = "admin@example.com"  # ADMIN_EMAILS of the test stack
UNVERIFIED = {"error": "Invalid Google ID token", "details": [
    "email_verified must be true: sign in with a Google account whose email is verified"]}


def email() -> str:
    return f"acct-{uuid.uuid4().hex[:10]}@example.com"


def verify(client, token: str) -> tuple[int, dict]:
    return call(client, "POST", "/auth/verify", None, {"id_token": token})


def sign_in_as(client, google_key, address: str, **mint) -> dict:
    """Sign in with a minted token (sub, email_verified ... as given); the body plus headers."""
    status, body = verify(client, google_key.mint(address, **mint))
    assert status == 200, body
    body["headers"] = {"Authorization": f"Bearer {body['app_token']}"}
    return body


def users_snapshot() -> list[dict]:
    return db.fetch_all("SELECT id, google_sub, email, name, avatar, updated_at FROM users ORDER BY id")


def claim_of(address: str):
    row = db.fetch_one("SELECT user_id FROM email_claims WHERE email = %s", (address,))
    return str(row["user_id"]) if row else None


def me(client, who) -> dict:
    status, body = call(client, "GET", "/auth/user", who)
    assert status == 200, body
    return body


def owned_stream(client, who, name="Mine") -> str:
    status, stream = call(client, "POST", "/streams", who, {"name": name})
    assert status == 201, stream
    return stream["id"]


def stream_ids(client, who) -> set[str]:
    status, body = call(client, "GET", "/streams", who)
    assert status == 200, body
    return {s["id"] for s in body["streams"]}


# ---------------------------------------------------------------- verified emails only

@pytest.mark.parametrize("verified", [False, "false", None, "yes", 1, "True"])
def test_an_unverified_email_is_refused_and_creates_nothing(client, google_key, verified):
    address = email()
    before = users_snapshot()
    status, body = verify(client, google_key.mint(address, email_verified=verified))
    assert (status, body) == (401, UNVERIFIED)
    assert users_snapshot() == before
    assert claim_of(address) is None


def test_an_unverified_token_for_an_existing_account_changes_nothing(client, google_key):
    victim = sign_in_as(client, google_key, email(), name="Victim")
    before = users_snapshot()
    for token in (google_key.mint(victim["user"]["email"], "Mallory", sub="mallory-" + uuid.uuid4().hex,
                                  email_verified=False),
                  google_key.mint("new-" + victim["user"]["email"], "Renamed", email_verified=None,
                                  sub=DevKey.sub_for(victim["user"]["email"]))):
        assert verify(client, token) == (401, UNVERIFIED)
    assert users_snapshot() == before


def test_the_string_true_is_a_verified_email(client, google_key):
    # Older Google tokens carry email_verified as a string.
    status, body = verify(client, google_key.mint(email(), email_verified="true"))
    assert status == 200 and body["app_token"]


@pytest.mark.parametrize("case", ["sub too long", "sub not a string", "empty sub", "email not a string",
                                  "email without @"])
def test_malformed_account_claims_are_refused(client, google_key, case):
    change = {"sub too long": {"sub": "1" * 256}, "sub not a string": {"sub": 1234567},
              "empty sub": {"sub": ""}, "email not a string": {"email": ["a@example.com"]},
              "email without @": {"email": "nobody"}}[case]
    claims = {**jwt.decode(google_key.mint(email()), options={"verify_signature": False}), **change}
    token = jwt.encode(claims, google_key.private_pem, algorithm="RS256", headers={"kid": google_key.kid})
    before = users_snapshot()
    status, body = verify(client, token)
    assert (status, body) == (401, {"error": "Invalid Google ID token"}), case
    assert users_snapshot() == before


# ---------------------------------------------------------------- the sub is the account

def test_a_changed_email_updates_the_same_account(client, google_key):
    old, new = email(), email()
    first = sign_in_as(client, google_key, old, name="Ada")
    sid = owned_stream(client, first)
    again = sign_in_as(client, google_key, new.upper(), name="Ada L.", sub=DevKey.sub_for(old))
    assert again["user"]["id"] == first["user"]["id"]
    assert again["user"] == {"id": first["user"]["id"], "email": new, "name": "Ada L.", "avatar": None}
    assert me(client, again)["email"] == new
    assert stream_ids(client, again) == {sid}
    _, members = call(client, "GET", f"/streams/{sid}/members", again)
    assert [m["email"] for m in members["members"]] == [new]
    rows = db.fetch_all("SELECT id, email FROM users WHERE google_sub = %s OR email IN (%s, %s)",
                        (DevKey.sub_for(old), old, new))
    assert [(str(r["id"]), r["email"]) for r in rows] == [(first["user"]["id"], new)]


def test_a_recycled_email_gets_a_new_account_not_the_old_one(client, google_key):
    address = email()
    victim = sign_in_as(client, google_key, address, name="Victim")
    sid = owned_stream(client, victim, "Victim's")
    newcomer = sign_in_as(client, google_key, address, name="Newcomer", sub="recycled-" + uuid.uuid4().hex)
    assert newcomer["user"]["id"] != victim["user"]["id"]
    assert newcomer["user"]["email"] == address
    assert stream_ids(client, newcomer) == set()
    assert call(client, "GET", f"/streams/{sid}", newcomer) == (403, {"error": "Access denied"})
    assert call(client, "GET", f"/streams/{sid}/members", newcomer)[0] == 403
    assert call(client, "DELETE", f"/streams/{sid}", newcomer)[0] == 403
    # The old account is untouched and still its owner's.
    row = db.fetch_one("SELECT * FROM users WHERE id = %s", (victim["user"]["id"],))
    assert (row["google_sub"], row["email"], row["name"]) == (DevKey.sub_for(address), address, "Victim")
    back = sign_in_as(client, google_key, address, name="Victim")
    assert back["user"]["id"] == victim["user"]["id"]
    assert stream_ids(client, back) == {sid}
    assert claim_of(address) == victim["user"]["id"]
    # The newcomer's refresh token signs in only the newcomer.
    _, refreshed = call(client, "POST", "/auth/refresh", None, {"refresh_token": newcomer["refresh_token"]})
    assert jwt.decode(refreshed["app_token"], options={"verify_signature": False})["sub"] == newcomer["user"]["id"]


def test_a_recycled_admin_email_does_not_carry_the_platform_admin_grant(client, google_key):
    owner = sign_in_as(client, google_key, ADMIN, name="Operator")  # the account that claimed it
    assert me(client, owner)["is_admin"] is True
    assert call(client, "GET", "/processing/stats", owner)[0] == 200
    newcomer = sign_in_as(client, google_key, ADMIN, name="Newcomer", sub="recycled-" + uuid.uuid4().hex)
    assert newcomer["user"]["id"] != owner["user"]["id"]
    assert me(client, newcomer)["is_admin"] is False
    for path in ("/processing/stats", "/processing/queue", "/admin/duplicates", "/admin/audit"):
        assert call(client, "GET", path, newcomer) == (403, {"error": "Admin access required"}), path
    status, _ = call(client, "POST", "/admin/processing/retry", newcomer, {"video_id": str(uuid.uuid4())})
    assert status == 403
    assert claim_of(ADMIN) == owner["user"]["id"]
    assert me(client, owner)["is_admin"] is True


def test_taking_another_accounts_email_is_never_a_takeover(client, google_key):
    victim = sign_in_as(client, google_key, email(), name="Victim")
    sid = owned_stream(client, victim, "Victim's")
    mallory_sub = "mallory-" + uuid.uuid4().hex
    mallory = sign_in_as(client, google_key, email(), name="Mallory", sub=mallory_sub)
    # Mallory's Google account now (verifiably) carries the victim's address.
    renamed = sign_in_as(client, google_key, victim["user"]["email"], name="Mallory", sub=mallory_sub)
    assert renamed["user"]["id"] == mallory["user"]["id"] != victim["user"]["id"]
    assert stream_ids(client, renamed) == set()
    assert call(client, "GET", f"/streams/{sid}", renamed) == (403, {"error": "Access denied"})
    assert claim_of(victim["user"]["email"]) == victim["user"]["id"]
    back = sign_in_as(client, google_key, victim["user"]["email"], name="Victim")
    assert back["user"]["id"] == victim["user"]["id"] and stream_ids(client, back) == {sid}


def test_renaming_an_account_to_the_admin_email_grants_nothing(client, google_key):
    sign_in_as(client, google_key, ADMIN, name="Operator")  # the admin address is claimed
    mallory_sub = "mallory-" + uuid.uuid4().hex
    mallory = sign_in_as(client, google_key, email(), sub=mallory_sub)
    renamed = sign_in_as(client, google_key, ADMIN, sub=mallory_sub)
    assert renamed["user"]["id"] == mallory["user"]["id"]
    assert me(client, renamed)["is_admin"] is False
    assert call(client, "GET", "/processing/stats", renamed) == (403, {"error": "Admin access required"})


# ---------------------------------------------------------------- rows from before subs

def test_an_unbound_user_is_bound_by_email_once(client, google_key, make_user, make_stream):
    address = email()
    legacy = make_user(address, "Legacy")  # no google_sub, as rows made before accounts had subs
    stream = make_stream(legacy)
    sub = "legacy-" + uuid.uuid4().hex
    first = sign_in_as(client, google_key, address, name="Legacy", sub=sub)
    assert first["user"]["id"] == str(legacy["id"])
    assert db.fetch_one("SELECT google_sub FROM users WHERE id = %s", (legacy["id"],))["google_sub"] == sub
    assert stream_ids(client, first) == {str(stream["id"])}
    # Bound now: the address under another sub is another account.
    other = sign_in_as(client, google_key, address, sub="other-" + uuid.uuid4().hex)
    assert other["user"]["id"] != str(legacy["id"])
    assert stream_ids(client, other) == set()
    assert call(client, "GET", f"/streams/{stream['id']}", other)[0] == 403


def test_concurrent_first_sign_ins_make_one_account(stack):
    from chalicelib.auth.users import upsert_from_google

    address, sub = email(), "race-" + uuid.uuid4().hex
    claims = {"sub": sub, "email": address, "email_verified": True, "name": "Racer"}
    with ThreadPoolExecutor(8) as pool:
        ids = {str(u["id"]) for u in pool.map(lambda _: upsert_from_google(dict(claims)), range(16))}
    assert len(ids) == 1
    assert db.fetch_one("SELECT count(*) AS n FROM users WHERE google_sub = %s", (sub,))["n"] == 1
    assert claim_of(address) == ids.pop()


def test_concurrent_subs_bind_an_unbound_user_at_most_once(stack, make_user):
    from chalicelib.auth.users import upsert_from_google

    address = email()
    legacy = make_user(address, "Legacy")
    subs = [f"race-{i}-{uuid.uuid4().hex}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        users = list(pool.map(lambda s: upsert_from_google(
            {"sub": s, "email": address, "email_verified": True}), subs))
    winners = [u for u in users if u["id"] == legacy["id"]]
    assert len(winners) == 1
    assert len({u["id"] for u in users}) == len(subs)
    bound = db.fetch_one("SELECT google_sub FROM users WHERE id = %s", (legacy["id"],))["google_sub"]
    assert bound == winners[0]["google_sub"]


# ---------------------------------------------------------------- local token minting

def test_make_token_mints_for_an_account_and_an_address(tmp_path):
    def mint(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "infra.local.google_keys", "token", "--key",
                              str(tmp_path / "key.pem"), *args], capture_output=True, text=True, check=True)
        return jwt.decode(out.stdout.strip(), options={"verify_signature": False})

    default = mint("--email", "Zed@Example.com")
    assert default["sub"] == DevKey.sub_for("zed@example.com") == mint("--email", "zed@example.com")["sub"]
    assert default["email_verified"] is True
    moved = mint("--email", "zed2@example.com", "--sub", default["sub"], "--unverified")
    assert (moved["sub"], moved["email"], moved["email_verified"]) == (default["sub"], "zed2@example.com", False)


# ---------------------------------------------------------------- migration 0011 on existing rows

def test_migration_0011_keeps_existing_users_and_claims_their_emails(stack):
    """0011 applied to users as they were before it (email unique, some rows without a sub)."""
    from chalicelib.db.migrate import MIGRATIONS_DIR

    schema = "m0011_" + uuid.uuid4().hex[:8]
    with pytest.raises(_Rollback), db.transaction() as cur:
        cur.execute(f"CREATE SCHEMA {schema}; SET LOCAL search_path = {schema}, public")
        cur.execute("CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
                    " google_sub text UNIQUE, email text NOT NULL UNIQUE, name text NOT NULL DEFAULT '',"
                    " avatar text, created_at timestamptz NOT NULL DEFAULT now(),"
                    " updated_at timestamptz NOT NULL DEFAULT now())")
        cur.execute("INSERT INTO users (google_sub, email) VALUES ('s-1', 'bound@example.com'),"
                    " (NULL, 'legacy@example.com') RETURNING id, email")
        ids = {r["email"]: r["id"] for r in cur.fetchall()}
        cur.execute((MIGRATIONS_DIR / "0011_google_accounts.sql").read_text())
        cur.execute("SELECT email, user_id FROM email_claims ORDER BY email")
        assert {r["email"]: r["user_id"] for r in cur.fetchall()} == ids
        # The same email under another sub is now allowed; a second unbound row is not.
        cur.execute("INSERT INTO users (google_sub, email) VALUES ('s-2', 'bound@example.com')")
        cur.execute("SAVEPOINT dup")
        with pytest.raises(Exception, match="users_unbound_email"):
            cur.execute("INSERT INTO users (email) VALUES ('legacy@example.com')")
        cur.execute("ROLLBACK TO SAVEPOINT dup")
        with pytest.raises(Exception, match="users_google_sub_key"):
            cur.execute("INSERT INTO users (google_sub, email) VALUES ('s-1', 'x@example.com')")
        raise _Rollback
    assert db.fetch_one("SELECT 1 AS x FROM pg_namespace WHERE nspname = %s", (schema,)) is None


class _Rollback(Exception):
    pass
