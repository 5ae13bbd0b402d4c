"""Bad requests: every operation fuzzed from the OpenAPI document, oversized and malformed JSON,
unicode and very long titles and keys, path traversal in filenames: a documented 4xx, never a 5xx;
every answer of the fuzzed operations as the document states it."""
from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.helpers import call

pytestmark = pytest.mark.reliability

# Deleting the fixtures mid-run would only turn later cases into 404s.
_KEEP_IDS_REAL = {"DELETE"}
# How the fuzzer reads the document. NUL: the document's description says no request string holds one,
# at any depth of a free-form JSON value (settings, unknown fields), which a schema cannot state, so none
# is generated (the named text fields' patterns say it too, and tests below send NUL on purpose).
# Security parameters: every case is sent with the admin's token (a generated or missing Authorization
# header would be replaced by it, so a negative case "without a token" would not be one).
# 413: a refusal too (an upload over the size limit).
_FUZZ_CONFIG = {"generation": {"allow-x00": False, "with-security-parameters": False},
                "checks": {"negative_data_rejection": {"expected-statuses": [
                    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]}}}


def test_every_operation_fuzzed_from_the_openapi_document_answers_as_documented(live_api, client, sign_in,
                                                                           make_video, s3, figures):
    """Positive and negative cases of every operation (schemathesis), half with real ids, with
    schemathesis' full response checks (call_and_validate): no 5xx, documented status codes,
    content types, headers and response schemas, invalid input refused, valid input accepted."""
    import hypothesis
    import hypothesis.errors
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    me = sign_in("admin@example.com")                         # platform admin: admin routes run too
    status, stream = call(client, "POST", "/streams", me, {"name": "Fuzz"})
    assert status == 201
    video = make_video(stream, me["user"])
    s3.put_object(Bucket="clipstream", Key=f"thumbnails/{video['id']}_processing.jpg", Body=b"\xff\xd8")
    real = {"stream_id": stream["id"], "video_id": str(video["id"]), "user_id": me["user"]["id"]}
    auth = {"Authorization": me["headers"]["Authorization"]}

    # from_url leaves out the schema's own path; from_dict of the served document fuzzes it too.
    served = requests.get(f"{live_api}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(served, config=SchemathesisConfig.from_dict(_FUZZ_CONFIG))
    failures: dict[str, str] = {}                             # first failing input per operation
    sent = [0]
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == \
        {(m.upper(), p) for p, ms in served["paths"].items() for m in ms}
    if os.environ.get("FUZZ_ONLY"):                           # a regex of "METHOD /path", to iterate on some
        operations = [op for op in operations if re.search(os.environ["FUZZ_ONLY"], f"{op.method.upper()} {op.path}")]
    # Rules the document states but a schema cannot make a generator keep: an invite's expires_at is in
    # the future; a vector clock's actor ids are 1 to 101 characters (propertyNames, which OpenAPI 3.0
    # tools ignore); a webhook or source URL's host resolves to public addresses only (an address literal
    # needs no DNS); a glossary's spellings are unique case-insensitively.
    future = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()

    def keep_unstated_rules(case) -> None:
        if not isinstance(case.body, dict):
            return
        if isinstance(case.body.get("expires_at"), str) and "/invites" in case.path:
            case.body["expires_at"] = future
        if isinstance(case.body.get("url"), str) and case.path.endswith("/webhooks"):
            case.body["url"] = "https://1.1.1.1/clipstream-fuzz"
        if isinstance(case.body.get("source_url"), str) and case.path.endswith("/videos"):
            case.body["source_url"] = "https://1.1.1.1/clipstream-fuzz.mp4"
        if isinstance(case.body.get("terms"), list) and case.path.endswith("/glossary"):
            case.body["terms"] = _unique_glossary(case.body["terms"])
        for name in ("vector_clock", "client_vector_clock"):
            clock = case.body.get(name)
            if isinstance(clock, dict):
                case.body[name] = {k: v for k, v in clock.items() if 0 < len(k) <= 101}

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

            @hypothesis.settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "15")), deadline=None,
                                 database=None, derandomize=True,
                                 suppress_health_check=list(hypothesis.HealthCheck))
            @hypothesis.given(strategy)
            def run(drawn):
                case, use_real_ids = drawn
                # Real ids only in positive cases: put into a negative one they would make it valid.
                if use_real_ids and mode is GenerationMode.POSITIVE and case.method.upper() not in _KEEP_IDS_REAL \
                        and case.path_parameters:
                    for name in case.path_parameters:
                        if name in real:
                            case.path_parameters[name] = real[name]
                if mode is GenerationMode.POSITIVE:
                    keep_unstated_rules(case)
                sent[0] += 1
                try:
                    case.call_and_validate(base_url=live_api, headers=auth, timeout=30)
                except (AssertionError, BaseExceptionGroup) as exc:   # a Failure or a FailureGroup of them
                    for failure in getattr(exc, "exceptions", [exc]):
                        title = getattr(failure, "title", type(failure).__name__)
                        failures.setdefault(
                            f"{case.method} {operation.path}: {title}",
                            f"{case.formatted_path} query={case.query} body={case.body!r:.200}:"
                            f" {str(getattr(failure, 'message', failure))[:400]}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # An operation without inputs has no invalid ones to generate.
                assert mode is GenerationMode.NEGATIVE, f"{operation.method} {operation.path}"
    elapsed = time.monotonic() - started
    assert not failures, "\n".join(f"{op} <- {example}" for op, example in sorted(failures.items()))
    assert elapsed < 240, f"fuzzing took {elapsed:.0f}s"   # 145 s on 2 shared cores
    figures.counts["requests_fuzzed"] += sent[0]
    figures.counts["operations_fuzzed"] += len(operations)


def _raw(client, method: str, path: str, who: dict, body: str | bytes):
    resp = getattr(client.http, method.lower())(path, headers=who["headers"], body=body)
    return resp.status_code, (json.loads(resp.body) if resp.body else None)


MALFORMED = ["", "{", "}", "[]", "null", "42", '"text"', '{"name": }', '{"name": "a",}', "{'name': 'a'}",
             '{"name": "\\ud800"}', '{"name": "a\\u0000b"}', "\xff\xfe{}", '{"name": NaN}',
             "[" * 10_000 + "]" * 10_000, '{"a":' * 5_000 + "1" + "}" * 5_000]


def test_malformed_and_oversized_json_is_a_400(client, sign_in, figures):
    me = sign_in()
    status, stream = call(client, "POST", "/streams", me, {"name": "Bodies"})
    targets = [("POST", "/streams"), ("PUT", f"/streams/{stream['id']}"),
               ("POST", f"/streams/{stream['id']}/videos"), ("POST", f"/streams/{stream['id']}/invites"),
               ("POST", "/auth/verify"), ("POST", "/auth/refresh")]
    tried = 0
    for method, path in targets:
        for body in MALFORMED:
            status, answer = _raw(client, method, path, me, body)
            assert status in (400, 401, 413, 415), (method, path, body[:40], status, answer)
            assert answer and "error" in answer, (method, path, body[:40])
            tried += 1
    # Oversized: 7 MB (over Lambda's 6 MB request limit) as one string and as many keys.
    huge_string = json.dumps({"name": "x" * (7 * 1024 * 1024)})
    many_keys = json.dumps({f"k{i}": i for i in range(400_000)})
    for body in (huge_string, many_keys):
        status, answer = _raw(client, "POST", "/streams", me, body)
        assert 400 <= status < 500 and "error" in answer, (status, answer)
        tried += 1
    figures.counts["bad_requests_tried"] += tried


TITLES = ["Ace 🎯🔥", "ضربة رائعة", "z̷̢̛a̸l̴g̵o̶", "\u202eevil\u202c", "日本語のクリップ", "a" * 200,
          "<script>alert(1)</script>", "'; DROP TABLE videos; --", "\U0001F600" * 50]
TRAVERSALS = ["../../etc/passwd.mp4", "..\\..\\windows\\system32\\x.mp4", "%2e%2e%2fsecret.mp4",
              "/absolute/path.mp4", "clip.mp4\x00.txt", "....//....//x.mp4", "a/../../b.mov", "CON.mp4"]


def test_unicode_long_titles_keys_and_traversal_filenames(client, sign_in, s3, figures):
    me = sign_in()
    status, stream = call(client, "POST", "/streams", me, {"name": "Names"})
    upload = f"/streams/{stream['id']}/videos"
    base = {"filename": "clip.mp4", "size_bytes": 10, "content_type": "video/mp4"}
    tried = 0
    for title in TITLES:
        status, body = call(client, "POST", upload, me, {**base, "title": title})
        assert status == 201, (title, body)
        status, got = call(client, "GET", f"/videos/{body['id']}", me)
        assert status == 200 and got["title"] == title           # stored as sent, not mangled
        tried += 1
    for bad in ("a" * 100_000, "\x00", "\ud800"):
        status, body = call(client, "POST", upload, me, {**base, "title": bad}) if bad != "\ud800" else \
            _raw(client, "POST", upload, me, json.dumps({**base, "title": bad}))
        assert status == 400 and body["error"], (bad[:10], status, body)
        tried += 1
    long_key = {**base, "title": "ok", "k" * 1_000_000: 1}
    status, body = call(client, "POST", upload, me, long_key)
    assert status in (201, 400), (status, body)
    tried += 1
    for filename in TRAVERSALS:
        status, body = call(client, "POST", upload, me, {**base, "title": "t", "filename": filename})
        if status == 201:
            keys = [k for k in (body["upload_url"], body["upload"]["fields"]["key"])]
            assert all(f"raw-uploads/{body['id']}." in k for k in keys), (filename, keys)
            assert ".." not in body["upload"]["fields"]["key"] and "\\" not in body["upload"]["fields"]["key"]
        else:
            assert status == 400 and body["error"], (filename, status, body)
        tried += 1
    figures.counts["bad_requests_tried"] += tried


def _unique_glossary(terms: list) -> list:
    """The entries with spellings already taken (case- and space-insensitively) left out."""
    seen: set[str] = set()

    def key(text: str) -> str:
        return " ".join(text.split()).lower()

    kept = []
    for entry in terms:
        term = entry if isinstance(entry, str) else entry.get("term") if isinstance(entry, dict) else None
        if not isinstance(term, str) or key(term) in seen:
            continue
        seen.add(key(term))
        if isinstance(entry, dict) and isinstance(entry.get("variants"), list):
            variants = []
            for v in entry["variants"]:
                if isinstance(v, str) and (key(v) == key(term) or key(v) not in seen):
                    seen.add(key(v))
                    variants.append(v)
            entry = {**entry, "variants": variants}
        kept.append(entry)
    return kept

