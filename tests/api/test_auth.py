"""Sign-in, app tokens, refresh rotation and logout (reference/000 Authentication)."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

H = {"Content-Type": "application/json"}


def post(client, path, body, headers=None):
    resp = client.http.post(path, headers={**H, **(headers or {})},
                            body=body if isinstance(body, str) else json.dumps(body))
    return resp.status_code, json.loads(resp.body) if resp.body else None


def test_verify_creates_the_user_and_returns_tokens(client, google_key):
    status, body = post(client, "/auth/verify",
                        {"id_token": google_key.mint("Ada@Example.com", "Ada Lovelace")})
    assert status == 200
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["name"] == "Ada Lovelace"
    assert set(body["user"]) == {"id", "email", "name", "avatar"}
    assert body["app_token"] and body["refresh_token"] and body["expires_at"].endswith("Z")
    # Signing in again updates the same user.
    status, again = post(client, "/auth/verify",
                         {"credential": google_key.mint("ada@example.com", "Ada L.")})
    assert status == 200
    assert again["user"]["id"] == body["user"]["id"]
    assert again["user"]["name"] == "Ada L."


def test_auth_user_returns_documented_fields(client, sign_in):
    me = sign_in(name="Grace")
    resp = client.http.get("/auth/user", headers=me["headers"])
    assert resp.status_code == 200
    body = json.loads(resp.body)
    for field in ("id", "email", "name", "avatar", "created_at", "total_videos", "total_likes"):
        assert field in body
    assert body["total_videos"] == 0 and body["total_likes"] == 0


def test_missing_token_is_401_authentication_required(client):
    resp = client.http.get("/auth/user")
    assert resp.status_code == 401
    assert json.loads(resp.body) == {"error": "Authentication required"}


def _forge_unsigned(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}."


def _bad_google_tokens(google_key) -> dict[str, str]:
    now = int(time.time())
    good = google_key.mint("mallory@example.com")
    header, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    tampered_claims = {**claims, "email": "admin@example.com"}
    tampered_payload = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).rstrip(b"=").decode()
    return {
        "expired": google_key.mint("m@example.com", iat=now - 7200, exp=now - 3600),
        "wrong audience": google_key.mint("m@example.com", audience="someone-else.apps.googleusercontent.com"),
        "wrong issuer": google_key.mint("m@example.com", issuer="https://evil.example.com"),
        "unsigned": f"{header}.{payload}.",
        "alg none": _forge_unsigned(claims),
        "hs256 with the public key": _hs256_with_public_key(claims, google_key),
        "missing exp": google_key.mint("m@example.com", exp=None),
        "tampered": f"{header}.{tampered_payload}.{sig}",
        "garbage": "not-a-jwt",
        "not yet valid": google_key.mint("m@example.com", iat=now + 3600, exp=now + 7200),
    }


def _hs256_with_public_key(claims: dict, google_key) -> str:
    """The classic algorithm-confusion forgery, built by hand (PyJWT refuses to)."""
    import hashlib
    import hmac

    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT", "kid": google_key.kid}).encode())
    body = enc(json.dumps(claims).encode())
    sig = hmac.new(google_key.public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{enc(sig)}"


@pytest.mark.parametrize("case", ["expired", "wrong audience", "wrong issuer", "unsigned", "alg none",
                                  "hs256 with the public key", "missing exp", "tampered", "garbage",
                                  "not yet valid"])
def test_bad_google_tokens_get_401(client, google_key, case):
    token = _bad_google_tokens(google_key)[case]
    status, body = post(client, "/auth/verify", {"id_token": token})
    assert status == 401, (case, body)
    assert body["error"] == "Invalid Google ID token"


def test_no_client_ids_configured_refuses_every_token(client, google_key, monkeypatch):
    from chalicelib.config import reset_settings

    monkeypatch.setenv("GOOGLE_CLIENT_IDS", "")
    reset_settings()
    try:
        status, body = post(client, "/auth/verify", {"id_token": google_key.mint("x@example.com")})
        assert status == 401
    finally:
        monkeypatch.undo()
        reset_settings()


@pytest.mark.parametrize("body,expected", [
    ("{not json", 400), ("[]", 400), ({}, 400), ({"id_token": 42}, 401), ({"id_token": ""}, 400),
])
def test_malformed_verify_bodies(client, body, expected):
    status, resp = post(client, "/auth/verify", body)
    assert status == expected
    assert "error" in resp


def _app_token(secret: str, **claims) -> str:
    now = int(time.time())
    base = {"sub": "00000000-0000-0000-0000-000000000000", "iss": "clipstream", "typ": "access",
            "iat": now, "exp": now + 600}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, algorithm="HS256")


@pytest.mark.parametrize("case", ["expired", "missing exp", "missing iat", "missing sub", "wrong key",
                                  "alg none", "tampered", "refresh-typed", "wrong issuer"])
def test_bad_app_tokens_get_401(client, sign_in, stack, case):
    me = sign_in()
    secret = stack.env["JWT_SECRET"]
    sub = me["user"]["id"]
    now = int(time.time())
    token = {
        "expired": _app_token(secret, sub=sub, iat=now - 7200, exp=now - 3600),
        "missing exp": _app_token(secret, sub=sub, exp=None),
        "missing iat": _app_token(secret, sub=sub, iat=None),
        "missing sub": _app_token(secret, sub=None),
        "wrong key": _app_token("x" * 40, sub=sub),
        "alg none": _forge_unsigned({"sub": sub, "iss": "clipstream", "typ": "access", "iat": now,
                                     "exp": now + 600}),
        "tampered": me["app_token"][:-4] + ("AAAA" if not me["app_token"].endswith("AAAA") else "BBBB"),
        "refresh-typed": _app_token(secret, sub=sub, typ="refresh"),
        "wrong issuer": _app_token(secret, sub=sub, iss="someone-else"),
    }[case]
    resp = client.http.get("/auth/user", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, case
    assert json.loads(resp.body) == {"error": "Invalid or expired token"}


def test_refresh_rotates_and_reuse_revokes_the_family(client, sign_in):
    me = sign_in()
    status, first = post(client, "/auth/refresh", {"refresh_token": me["refresh_token"]})
    assert status == 200
    assert first["refresh_token"] != me["refresh_token"] and first["app_token"]
    # The used token presented again: refused, and its family is revoked ...
    status, body = post(client, "/auth/refresh", {"refresh_token": me["refresh_token"]})
    assert status == 401 and body == {"error": "Invalid refresh token"}
    # ... so even the newest token of the family no longer works.
    status, _ = post(client, "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 401
    # The app token minted by the refresh is a working access token.
    assert client.http.get("/auth/user", headers={"Authorization": f"Bearer {first['app_token']}"}).status_code == 200


def test_refresh_errors(client):
    assert post(client, "/auth/refresh", {"refresh_token": "nope"}) == (401, {"error": "Invalid refresh token"})
    status, body = post(client, "/auth/refresh", {})
    assert status == 400 and body["details"] == ["refresh_token is required"]


def test_logout_revokes_the_refresh_token(client, sign_in):
    me = sign_in()
    status, body = post(client, "/auth/logout", {"refresh_token": me["refresh_token"]}, me["headers"])
    assert (status, body) == (200, {"logged_out": True})
    assert post(client, "/auth/refresh", {"refresh_token": me["refresh_token"]})[0] == 401


def test_another_users_refresh_token_only_ever_signs_in_its_owner(client, sign_in):
    alice, bob = sign_in(), sign_in()
    status, body = post(client, "/auth/refresh", {"refresh_token": bob["refresh_token"]}, alice["headers"])
    assert status == 200
    claims = jwt.decode(body["app_token"], options={"verify_signature": False})
    assert claims["sub"] == bob["user"]["id"]


def test_certs_are_fetched_from_the_configured_url(stack):
    import urllib.request

    with urllib.request.urlopen(stack.env["GOOGLE_CERTS_URL"]) as resp:
        certs = json.loads(resp.read())
        assert "max-age" in resp.headers["Cache-Control"]
    assert stack.google_key.kid in certs
    assert certs[stack.google_key.kid].startswith("-----BEGIN CERTIFICATE-----")


def test_google_certs_are_fetched_once_while_their_max_age_lasts(client, google_key, stack, monkeypatch):
    """The certs response (max-age=300) is cached: sign-ins after the first ask Google nothing."""
    from chalicelib.auth import google

    monkeypatch.setattr(google, "_request", None)  # a cold container: nothing cached yet
    before = stack.certs.served
    for name in ("One", "Two", "Three"):
        status, body = post(client, "/auth/verify", {"id_token": google_key.mint(f"{name}@example.com", name)})
        assert status == 200, body
    assert stack.certs.served == before + 1
