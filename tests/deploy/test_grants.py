"""Every AWS call the code makes is allowed by the role of every function that can reach it.

NEEDS says, for each function of chalicelib that calls AWS (directly, or
through the generic helpers of storage.py and media_io.py), which IAM
actions on which resources the call needs: the key prefix it reads or writes,
the state machine it starts, the function it asks about. Two checks keep it
honest:

* completeness: a function that calls a boto3 operation or a generic helper
  and is missing from NEEDS fails the test, so a new call site must say what
  it needs;
* reach: a static call graph of app.py and chalicelib (names and
  `module.attribute` references, function-level imports included) finds the
  NEEDS entries each route group and each pipeline function can reach; the
  role of that function in the packaged template must allow every one of
  them (action, resource, and the s3:prefix condition of a listing).
"""
from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.aws import routes
from infra.local.deploy import WEBSOCKET_FUNCTIONS
from tests.deploy.conftest import STAGE, functions

ROOT = Path(__file__).resolve().parents[2]
APP_NAME = "clipstream"
PARAMS = {"${AWS::Partition}": "aws", "${AWS::Region}": "us-east-1", "${AWS::AccountId}": "123456789012",
          "${MediaBucketName}": "media-bucket", "${WebsocketAPI}": "wsapi123"}
REFS = {"JwtSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-key",
        "DbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-credentials"}
VIDEO = "0f8fad5b-d9cb-469f-a165-70867728950e"


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    prefix: str | None = None      # s3:prefix of a listing (None: the whole bucket)


def obj(prefix: str, *actions: str) -> list[Need]:
    return [Need(a, f"arn:aws:s3:::media-bucket/{prefix}{VIDEO}/x") for a in actions]


def listing(prefix: str | None = None) -> list[Need]:
    return [Need("s3:ListBucket", "arn:aws:s3:::media-bucket", prefix and f"{prefix}{VIDEO}/")]


def machine(stem: str, *actions: str) -> list[Need]:
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{APP_NAME}-{STAGE}-{stem}"
    return [Need(a, arn) for a in actions]


def execution(stem: str, *actions: str) -> list[Need]:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:{APP_NAME}-{STAGE}-{stem}:{VIDEO}-etag"
    return [Need(a, arn) for a in actions]


def function(name: str, action: str) -> list[Need]:
    return [Need(action, f"arn:aws:lambda:us-east-1:123456789012:function:{APP_NAME}-{STAGE}-{name}")]


def secret(ref: str) -> list[Need]:
    return [Need("secretsmanager:GetSecretValue", REFS[ref])]


GET, PUT, DELETE = "s3:GetObject", "s3:PutObject", "s3:DeleteObject"
MULTIPART = ("s3:PutObject", "s3:AbortMultipartUpload")   # upload_file/upload_fileobj split large files
RAW, HLS, THUMBS, CLIPS = "raw-uploads/", "processed-videos/", "thumbnails/", "clips/"

# What each call site needs ("module:function" -> needs). Presigned URLs are
# signed with the function's role, so presigning needs the action itself;
# HeadObject needs s3:GetObject, HeadBucket s3:ListBucket.
NEEDS: dict[str, list[Need]] = {
    # the API
    "chalicelib.auth.tokens:signing_key": secret("JwtSecretArn"),
    "chalicelib.db:_secret_dsn": secret("DbSecretArn"),
    "chalicelib.api.health:_storage_ok": listing(),
    "chalicelib.api.health:_transcode_function_ready": function("pipeline_transcode",
                                                                "lambda:GetFunctionConfiguration"),
    "chalicelib.api.console:executions": machine("pipeline", "states:ListExecutions"),
    "chalicelib.api.console:_history": execution("pipeline", "states:GetExecutionHistory"),
    "chalicelib.api.console:graph": machine("pipeline", "states:DescribeStateMachine"),
    "chalicelib.api.files:thumbnail_key_for": obj(THUMBS, GET),
    "chalicelib.api.files:thumbnail": obj(THUMBS, GET),
    "chalicelib.api.files:stream_redirect": obj(HLS, GET) + obj(RAW, GET),
    "chalicelib.api.hls:_read": obj(HLS, GET),
    "chalicelib.api.hls:media_playlist": obj(HLS, GET),
    "chalicelib.api.hls:mp4_url": obj(HLS, GET),
    "chalicelib.api.dash:manifest": obj(HLS, GET),
    "chalicelib.api.storyboard:track": obj(HLS, GET),
    "chalicelib.api.moments:stream_clip": obj(CLIPS, GET),
    "chalicelib.api.moments:_start": machine("clips", "states:StartExecution"),
    "chalicelib.api.search:query_vector": function("embed_query", "lambda:InvokeFunction"),
    "chalicelib.api.social:public_share": obj(THUMBS, GET),
    "chalicelib.api.system:usage": listing(),
    "chalicelib.api.uploads:presigned_upload": obj(RAW, PUT),
    "chalicelib.api.thumbnails:request_upload": obj("thumbnail-uploads/", PUT),
    "chalicelib.api.thumbnails:confirm": obj(THUMBS, DELETE),
    "chalicelib.api.thumbnails:remove": obj(THUMBS, DELETE),
    "chalicelib.api.thumbnails:_convert": function("thumbnail_custom", "lambda:InvokeFunction"),
    "chalicelib.media.custom_thumbnail:convert": obj("thumbnail-uploads/", GET, DELETE) + obj(THUMBS, GET, PUT),
    "chalicelib.api.uploads:create_direct": obj(RAW, PUT),
    "chalicelib.api.ingest:_start": function("ingest_url", "lambda:InvokeFunction"),
    # ingest_url: CreateMultipartUpload, UploadPart and Complete need s3:PutObject; a failed fetch aborts
    "chalicelib.pipeline.ingest:run": obj(RAW, *MULTIPART),
    "chalicelib.api.uploads:reissue": obj(RAW, GET),
    # resumable uploads: CreateMultipartUpload, UploadPart (presigned) and Complete need
    # s3:PutObject; ListParts s3:ListMultipartUploadParts; deleting a video finds and aborts its uploads
    "chalicelib.api.multipart:_start": obj(RAW, PUT),
    "chalicelib.api.multipart:_describe": obj(RAW, PUT),
    "chalicelib.api.multipart:_list_parts": obj(RAW, "s3:ListMultipartUploadParts"),
    "chalicelib.api.multipart:complete": obj(RAW, PUT),
    "chalicelib.api.multipart:abort": obj(RAW, "s3:AbortMultipartUpload"),
    "chalicelib.pipeline.start:start_for_object": obj(RAW, GET) + machine("pipeline", "states:StartExecution"),
    "chalicelib.pipeline.start:_refuse_mismatched_size": obj(RAW, DELETE),
    "chalicelib.webhooks:start_deliveries": machine("webhooks", "states:StartExecution"),
    "chalicelib.video_deletion:stop_executions": execution("pipeline", "states:StopExecution"),
    "chalicelib.video_deletion:stop_clip_extraction": execution("clips", "states:StopExecution"),
    "chalicelib.video_deletion:abort_uploads": obj(RAW, "s3:AbortMultipartUpload") + [
        Need("s3:ListBucketMultipartUploads", "arn:aws:s3:::media-bucket")],
    "chalicelib.video_deletion:delete_objects": [
        n for p in ("raw-uploads/", HLS, THUMBS, "transcripts/", "embeddings/", CLIPS, "thumbnail-uploads/")
        for n in obj(p, DELETE) + listing(p)],
    # the pipeline
    "chalicelib.pipeline.dedup:run": obj(RAW, GET),
    "chalicelib.pipeline.dedup:_store_overlay": obj(THUMBS, *MULTIPART),
    "chalicelib.pipeline.dedup:_hand_over_speech": [   # the speech WAV, beside the ladder's prefix
        Need(a, f"arn:aws:s3:::media-bucket/{HLS}{VIDEO}/tmp/speech-16k.wav") for a in MULTIPART],
    "chalicelib.pipeline.transcode:run": obj(RAW, GET) + obj(HLS, *MULTIPART) + obj(THUMBS, *MULTIPART),
    "chalicelib.pipeline.transcode:_store_ladder": obj(HLS, *MULTIPART),
    "chalicelib.pipeline.transcode:_publish": obj(HLS, *MULTIPART) + obj(THUMBS, *MULTIPART),
    # the chunked ladder: dedup leaves the AAC under the video's tmp/ prefix; the chunks read it
    # and store their final segments; the stitch stores playlists and deletes the hand-over
    "chalicelib.pipeline.dedup:_hand_over_ladder_audio": [
        Need(a, f"arn:aws:s3:::media-bucket/{HLS}{VIDEO}/tmp/chunks/audio_96000.m4a") for a in MULTIPART],
    "chalicelib.pipeline.transcode:encode_part": obj(RAW, GET) + obj(HLS, GET, *MULTIPART),
    "chalicelib.pipeline.transcode:stitch": (obj(HLS, GET, DELETE, *MULTIPART) + listing(HLS)
                                             + obj(THUMBS, *MULTIPART)),
    "chalicelib.pipeline.transcode:_join_rung": obj(HLS, GET),
    "chalicelib.pipeline.transcribe:run": obj(HLS, GET, DELETE),       # the speech WAV hand-over
    "chalicelib.pipeline.transcribe:_audio_from_upload": obj(RAW, GET),
    "chalicelib.pipeline.transcribe:store": obj("transcripts/", PUT),
    "chalicelib.pipeline.embed:run": obj("embeddings/", PUT),
    "chalicelib.pipeline.finalize:_Concatenation": obj(HLS, GET),
    "chalicelib.pipeline.finalize:rendition_parts": obj(HLS, GET),
    # the MP4 fallback: a multipart upload (CreateMultipartUpload, UploadPart and
    # Complete need s3:PutObject; a failed one is aborted)
    "chalicelib.pipeline.finalize:build_mp4_fallbacks": obj(HLS, GET, *MULTIPART) + listing(HLS),
    "chalicelib.moments.steps:generate": obj(RAW, GET) + obj(CLIPS, DELETE) + listing(CLIPS),
    "chalicelib.moments.steps:extract": obj(RAW, GET) + obj(CLIPS, *MULTIPART, DELETE),
    # live updates: every publisher posts to the WebSocket API's connections
    "chalicelib.live:send": [Need("execute-api:ManageConnections",
                                  "arn:aws:execute-api:us-east-1:123456789012:wsapi123/api/POST/@connections/c1")],
}

# Reached in the call graph but never run by that function, and why (no grant needed there).
NOT_RUN_THERE: dict[tuple[str, str, str], str] = {
    ("api_admin", "chalicelib.pipeline.start:start_for_object", "s3:GetObject"):
        "an admin retry passes the recorded etag, so start_for_object never heads the upload",
    ("api_admin", "chalicelib.pipeline.start:_refuse_mismatched_size", "s3:DeleteObject"):
        "an admin retry resumes a video whose upload was checked when it arrived",
}

# The helpers whose resources depend on their caller: the caller is in NEEDS.
GENERIC = {"chalicelib.storage:" + n for n in ("s3_client", "presign_client", "presigned_get", "presigned_put",
                                               "presigned_post", "head", "check_bucket", "iter_objects",
                                               "delete_prefix", "_delete_batch", "delete", "get_object",
                                               "open_object", "read_bytes", "read_text", "put_bytes",
                                               "upload_file", "upload_stream", "create_multipart",
                                               "presigned_upload_part", "list_parts", "complete_multipart",
                                               "abort_multipart", "open_multipart_uploads", "StreamUpload")} | {
    "chalicelib.pipeline.media_io:" + n for n in ("download", "fetch_if_present", "upload_file",
                                                  "Uploader")} | {
    "chalicelib.aws:client", "chalicelib.api.console:_sfn", "chalicelib.api.search:_lambda",
    "chalicelib.api.health:_lambda", "chalicelib.db:_secrets", "chalicelib.auth.tokens:_secrets"}

AWS_OPERATIONS = {
    "start_execution", "stop_execution", "list_executions", "describe_execution", "get_execution_history",
    "describe_state_machine", "invoke", "get_function_configuration", "get_secret_value", "get_object",
    "put_object", "upload_file", "upload_fileobj", "download_file", "download_fileobj", "delete_object",
    "delete_objects", "head_object", "head_bucket", "list_objects_v2", "get_paginator", "copy_object",
    "generate_presigned_url", "generate_presigned_post", "create_multipart_upload", "list_parts",
    "complete_multipart_upload", "abort_multipart_upload", "list_multipart_uploads", "upload_part",
    "post_to_connection"}


# ------------------------------------------------------------------ the call graph

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class CallGraph:
    """Top-level functions and classes of app.py and chalicelib, and what each refers to."""

    def __init__(self) -> None:
        paths = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
        self.trees = {_module_name(p): ast.parse(p.read_text()) for p in paths}
        self.defs = {m: {n.name: n for n in t.body
                         if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
                     for m, t in self.trees.items()}
        self.edges = {f"{m}:{name}": self._refs(m, node) for m, ds in self.defs.items() for name, node in ds.items()}

    def _aliases(self, module: str, nodes: list[ast.AST]) -> dict[str, tuple[str, str | None]]:
        """Local name -> (module, def name or None for the module itself)."""
        out: dict[str, tuple[str, str | None]] = {}
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("chalicelib",):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    out[a.asname or a.name] = (sub, None) if sub in self.trees else (node.module, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in self.trees and a.asname:
                        out[a.asname] = (a.name, None)
        return out

    def _refs(self, module: str, node: ast.AST) -> set[str]:
        aliases = self._aliases(module, self.trees[module].body)
        aliases.update(self._aliases(module, list(ast.walk(node))))
        out = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                if n.id in self.defs[module] and n is not node:
                    out.add(f"{module}:{n.id}")
                target = aliases.get(n.id)
                if target and target[1] and target[1] in self.defs.get(target[0], {}):
                    out.add(f"{target[0]}:{target[1]}")
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
                target = aliases.get(n.value.id)
                if target and target[1] is None and n.attr in self.defs.get(target[0], {}):
                    out.add(f"{target[0]}:{n.attr}")
        return out

    def reach(self, start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.add(key)
                todo.extend(self.edges.get(key, ()))
        return seen

    def aws_call_sites(self) -> set[str]:
        """Functions that call a boto3 operation themselves, or a generic helper."""
        out = set()
        for key, refs in self.edges.items():
            module, name = key.split(":")
            node = self.defs[module][name]
            direct = any(isinstance(n, ast.Attribute) and n.attr in AWS_OPERATIONS for n in ast.walk(node))
            if direct or refs & GENERIC:
                out.add(key)
        return out


@pytest.fixture(scope="module")
def graph() -> CallGraph:
    return CallGraph()


@pytest.fixture(scope="module")
def chalice_app():
    import app
    return app.app


# ------------------------------------------------------------------ the policy

def _resolve(resource) -> str:
    if isinstance(resource, str):
        return resource
    if "Ref" in resource:
        return REFS[resource["Ref"]]
    text = resource["Fn::Sub"]
    for name, value in PARAMS.items():
        text = text.replace(name, value)
    assert "${" not in text, text
    return text


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict], need: Need) -> bool:
    for s in statements:
        if s["Effect"] != "Allow" or need.action not in _as_list(s["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(need.resource, _resolve(r)) for r in _as_list(s["Resource"])):
            continue
        prefixes = s.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        if prefixes is None or (need.prefix is not None and
                                any(fnmatch.fnmatchcase(need.prefix, p) for p in _as_list(prefixes))):
            return True
    return False


def _role_statements(template: dict, props: dict) -> list[dict]:
    role = template["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
    return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _entry_points(chalice_app) -> dict[str, set[str]]:
    """Deployed function name -> the app.py functions it runs."""
    out: dict[str, set[str]] = {}
    for path, methods in chalice_app.routes.items():
        for entry in methods.values():
            name = f"{APP_NAME}-{STAGE}-api_{routes.group_of(path).name}"
            out.setdefault(name, set()).add(f"app:{entry.view_function.__name__}")
    for f in [*chalice_app.pure_lambda_functions, *chalice_app.event_sources]:
        out[f"{APP_NAME}-{STAGE}-{f.name}"] = {"app:" + f.handler_string.split(".", 1)[1]}
    for key, h in chalice_app.websocket_handlers.items():   # Chalice names these by route
        out[f"{APP_NAME}-{STAGE}-{WEBSOCKET_FUNCTIONS[key]}"] = {"app:" + h.handler_string.split(".", 1)[1]}
    return out


# ------------------------------------------------------------------ the tests

def test_every_aws_call_site_says_what_it_needs(graph):
    missing = sorted(graph.aws_call_sites() - set(NEEDS) - GENERIC)
    assert not missing, f"add these call sites to NEEDS with the actions and resources they use: {missing}"
    stale = sorted(k for k in NEEDS if k.split(":")[1] not in graph.defs.get(k.split(":")[0], {}))
    assert not stale, f"NEEDS names functions that no longer exist: {stale}"


def test_every_function_is_granted_what_its_code_can_reach(template, graph, chalice_app):
    by_name = {p["FunctionName"]: p for p in functions(template).values()}
    problems = []
    for name, entries in sorted(_entry_points(chalice_app).items()):
        statements = _role_statements(template, by_name[name])
        reached = set().union(*(graph.reach(e) for e in entries))
        for site in sorted(reached & set(NEEDS)):
            problems += [f"{name}: {site} needs {n.action} on {n.resource}"
                         + (f" (prefix {n.prefix})" if n.prefix else "")
                         for n in NEEDS[site] if not allows(statements, n)
                         and (name.split(f"{STAGE}-", 1)[1], site, n.action) not in NOT_RUN_THERE]
    assert not problems, "\n".join(problems)


def test_the_graph_reaches_through_imports_and_helpers(graph):
    """The reach check can fail: it follows function-level imports, module attributes and decorators."""
    delete = graph.reach("app:videos_delete")
    assert "chalicelib.video_deletion:stop_clip_extraction" in delete
    assert "chalicelib.db:_secret_dsn" in delete
    transcode = graph.reach("app:pipeline_transcode")
    assert {"chalicelib.pipeline.transcode:run", "chalicelib.pipeline.media_io:Uploader"} <= transcode
    assert "chalicelib.video_deletion:delete_objects" in transcode        # through @stage_step
    assert "chalicelib.auth.tokens:signing_key" not in graph.reach("app:health_check")


def test_a_missing_grant_is_caught(template):
    """The policy check itself: the ops role reads the pipeline's history; remove that and it does not."""
    props = next(p for p in functions(template).values() if p["FunctionName"].endswith("-api_ops"))
    statements = _role_statements(template, props)
    need = NEEDS["chalicelib.api.console:_history"][0]
    assert allows(statements, need)
    assert not allows([s for s in statements if "states:GetExecutionHistory" not in _as_list(s["Action"])], need)
    assert not allows(statements, execution("clips", "states:GetExecutionHistory")[0])
    finalize = next(p for p in functions(template).values() if p["FunctionName"].endswith("-pipeline_finalize"))
    assert not allows(_role_statements(template, finalize), obj(RAW, "s3:PutObject")[0])
