"""App tokens: our HS256 JWT code held to PyJWT's verdicts, and the per-container caches.

chalicelib.auth.tokens signs and verifies HS256 JWTs with the standard library
(PyJWT would pull `cryptography` into every cold start). These tests run
without the stack: PyJWT (a dev dependency) is the reference implementation.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest

SECRET = "s" * 64  # long enough for HS512 too (one case signs with it)
SUB = "0b7d1c2e-3f40-4a5b-8c6d-7e8f90a1b2c3"


@pytest.fixture(autouse=True)
def app_key(monkeypatch):
    """Our key for these tests, and caches forgotten before and after."""
    from chalicelib.auth import tokens
    from chalicelib.config import reset_settings

    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_SECRET_ARN", raising=False)
    reset_settings()
    tokens._verified.clear()
    yield tokens
    monkeypatch.undo()
    reset_settings()
    tokens._verified.clear()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict, claims: dict, key: bytes = SECRET.encode(), digest=hashlib.sha256) -> str:
    """A token built by hand, for shapes PyJWT refuses to produce."""
    head, body = _b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(hmac.new(key, f'{head}.{body}'.encode(), digest).digest())}"


def _claims(**changes) -> dict:
    now = int(time.time())
    base = {"sub": SUB, "email": "a@example.com", "iss": "clipstream", "typ": "access",
            "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def _pyjwt(claims: dict, key: str = SECRET, **kw) -> str:
    return jwt.encode(claims, key, algorithm="HS256", **kw)


def _reference_decode(token: str) -> dict | None:
    """What the app accepted when it verified with PyJWT (the code this replaced)."""
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="clipstream",
                            options={"require": ["exp", "iat", "sub", "iss"]}, leeway=5)
        uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None
    return claims if claims.get("typ") == "access" else None


def _ours(tokens, token) -> dict | None:
    from chalicelib.errors import AuthenticationError
    tokens._verified.clear()
    try:
        return tokens.decode_access_token(token)
    except AuthenticationError:
        return None


def _cases() -> dict[str, str]:
    now = int(time.time())
    good = _pyjwt(_claims())
    head, body, sig = good.split(".")
    return {
        "valid": good,
        "valid, float dates": _pyjwt(_claims(iat=now + 0.5, exp=now + 600.5)),
        "expired": _pyjwt(_claims(iat=now - 7200, exp=now - 3600)),
        "expired within leeway": _pyjwt(_claims(exp=now - 2)),
        "issued in the future": _pyjwt(_claims(iat=now + 3600, exp=now + 7200)),
        "not yet valid (nbf)": _pyjwt(_claims(nbf=now + 3600)),
        "missing exp": _pyjwt(_claims(exp=None)),
        "missing iat": _pyjwt(_claims(iat=None)),
        "missing sub": _pyjwt(_claims(sub=None)),
        "missing iss": _pyjwt(_claims(iss=None)),
        "wrong issuer": _pyjwt(_claims(iss="someone-else")),
        "with an audience": _pyjwt(_claims(aud="elsewhere")),
        "refresh typed": _pyjwt(_claims(typ="refresh")),
        "playback typed": _pyjwt(_claims(typ="playback")),
        "sub not a uuid": _pyjwt(_claims(sub="admin")),
        "sub a number": _forge({"alg": "HS256", "typ": "JWT"}, _claims(sub=42)),
        "exp a string": _forge({"alg": "HS256", "typ": "JWT"}, _claims(exp=str(now + 600))),
        "exp true": _forge({"alg": "HS256", "typ": "JWT"}, _claims(exp=True)),
        "wrong key": _pyjwt(_claims(), key="x" * 40),
        "HS512 with our key": jwt.encode(_claims(), SECRET, algorithm="HS512"),
        "HS512 header, HS256 signature": _forge({"alg": "HS512"}, _claims()),
        "RS256 header, HMAC signature": _forge({"alg": "RS256", "typ": "JWT"}, _claims()),
        "alg none": f"{_b64(json.dumps({'alg': 'none'}).encode())}.{body}.",
        "alg missing": _forge({"typ": "JWT"}, _claims()),
        "crit header": _forge({"alg": "HS256", "crit": ["exp"], "exp": 1}, _claims()),
        "tampered payload": f"{head}.{_b64(json.dumps(_claims(sub=str(uuid.uuid4()))).encode())}.{sig}",
        "tampered signature": f"{head}.{body}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}",
        "signature stripped": f"{head}.{body}.",
        "two segments": f"{head}.{body}",
        "four segments": f"{good}.{sig}",
        "padding added": f"{head}==.{body}.{sig}",
        "payload not an object": _forge({"alg": "HS256"}, ["sub", SUB]),
        "header not json": f"{_b64(b'{alg')}.{body}.{sig}",
        "not base64": f"{head}.{body}.***",
        "garbage": "not-a-jwt",
        "empty": "",
        "non-ascii": good + "é",
        "huge": good + "A" * 5000,
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_verification_never_accepts_what_pyjwt_refuses(app_key, case):
    token = _cases()[case]
    ours, reference = _ours(app_key, token), _reference_decode(token)
    if ours is not None:
        assert reference == ours, f"{case}: accepted by us, refused by PyJWT"
    expected_valid = {"valid", "valid, float dates", "expired within leeway"}
    assert (ours is not None) == (case in expected_valid), case


def test_our_tokens_verify_in_pyjwt_and_back(app_key):
    token, expires_at = app_key.issue_access_token({"id": SUB, "email": "a@example.com"})
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="clipstream")
    assert claims["sub"] == SUB and claims["typ"] == "access" and expires_at.tzinfo is not None
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert app_key.decode_access_token(token)["jti"] == claims["jti"]


def test_playback_tokens_are_their_own_type(app_key):
    from chalicelib.errors import AuthenticationError

    now = int(time.time())
    playback = app_key.sign({"sub": SUB, "vid": "v", "typ": "playback", "iss": "clipstream",
                             "iat": now, "exp": now + 60})
    assert app_key.verify(playback, typ="playback", require=("exp", "iat", "sub", "vid"))["vid"] == "v"
    with pytest.raises(AuthenticationError):
        app_key.decode_access_token(playback)  # a playback token never signs anyone in
    access, _ = app_key.issue_access_token({"id": SUB, "email": "a@example.com"})
    with pytest.raises(AuthenticationError):
        app_key.verify(access, typ="playback", require=("exp", "iat", "sub", "vid"))


def test_verified_tokens_are_remembered_until_they_expire(app_key):
    from chalicelib.errors import AuthenticationError

    token = _pyjwt(_claims(exp=int(time.time()) + 1))
    first = app_key.decode_access_token(token)
    first["sub"] = "changed by a caller"
    assert app_key.decode_access_token(token)["sub"] == SUB  # callers get copies
    time.sleep(1.2)
    # Past exp the cache no longer answers; the token is verified again (accepted within leeway) ...
    assert app_key._verified.get(token) is None
    assert app_key.decode_access_token(token)["sub"] == SUB
    # ... and refused once the leeway is over too.
    stale = _pyjwt(_claims(iat=int(time.time()) - 100, exp=int(time.time()) - 10))
    with pytest.raises(AuthenticationError):
        app_key.decode_access_token(stale)


def test_token_cache_is_bounded(app_key):
    cache = app_key.TokenCache(size=4)
    later = time.time() + 60
    cache.put("gone", time.time() - 1, "expired")
    for i in range(4):
        cache.put(f"t{i}", later, i)
    assert cache.get("gone") is None  # expired entries go first
    assert [cache.get(f"t{i}") for i in range(4)] == [0, 1, 2, 3]
    cache.put("t4", later, 4)
    assert len(cache) <= 4 and cache.get("t4") == 4 and cache.get("t0") is None


def test_the_key_comes_from_secrets_manager_and_a_rotation_is_read_after_max_age(app_key, stack, monkeypatch):
    """JWT_SECRET_ARN: the key is the secret's value, read through our client (the stack's endpoint),
    kept SECRET_MAX_AGE_S, then read again; a token signed with the old key stops verifying."""
    import boto3

    from chalicelib.config import reset_settings
    from chalicelib.errors import AuthenticationError

    sm = boto3.client("secretsmanager", endpoint_url=stack.env["AWS_ENDPOINT_URL"])
    arn = sm.create_secret(Name=f"clipstream/test/jwt-{uuid.uuid4().hex[:8]}", SecretString="k1" * 20)["ARN"]
    monkeypatch.setenv("JWT_SECRET", "")
    monkeypatch.setenv("JWT_SECRET_ARN", arn)
    reset_settings()
    app_key._secrets.cache_clear()
    try:
        assert app_key.signing_key() == "k1" * 20
        token, _ = app_key.issue_access_token({"id": SUB, "email": "a@example.com"})
        sm.put_secret_value(SecretId=arn, SecretString="k2" * 20)
        assert app_key.signing_key() == "k1" * 20           # cached within SECRET_MAX_AGE_S
        app_key._secrets().clear_cache()                     # as when SECRET_MAX_AGE_S has passed
        assert app_key.signing_key() == "k2" * 20
        app_key._verified.clear()
        with pytest.raises(AuthenticationError):
            app_key.decode_access_token(token)
    finally:
        app_key._secrets.cache_clear()
