"""The local AWS emulator: moto's server with Lambda dispatched to our own handlers.

- S3, IAM, STS, Step Functions, Lambda on one port (LocalStack's 4566 by
  default), over real HTTP.
- Step Functions *execute* the ASL (moto's execute_state_machine: LocalStack's
  interpreter, with Retry, Catch, Choice, Parallel, Map and history).
- A Lambda invocation (from a state machine, an SDK call or an S3 bucket
  notification) runs the function's configured handler (e.g. "app.pipeline_dedup")
  in this process: the deploy step registers functions exactly as in AWS and
  the emulator looks the handler up by function name.
- S3 notifications to Lambda are delivered asynchronously with retries, as
  AWS's async invocation does; moto's own path would need Docker.
- Faults can be injected per function (tests of retries): `inject_fault`;
  and per storage request: `STORAGE_FAULTS.inject` answers the next matching
  S3 requests with an error (500 InternalError by default) before moto sees them.
- Every request is authenticated and authorized as AWS does it (`edge`):
  header-signed requests by moto's own SigV4 check, presigned URLs and
  presigned POST policies at the edge (signature, expiry, signed headers such
  as Content-Length, policy conditions), unsigned ones refused with S3's 403.
  Each caller is an IAM identity: the developer user (`bootstrap_iam`), the
  role of each Lambda function (`Dispatcher`), the role of each state machine
  (its Lambda calls); their policies decide, with S3 conditions evaluated
  (`allowed`).
- Limits as AWS documents them: invoke payloads (6 MB synchronous, 1 MB
  asynchronous, 6 MB responses), each function's timeout ("Task timed out")
  and /tmp size, and a Step Functions state's 256 KiB data limit.
"""
from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import hmac
import importlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, unquote, urlparse

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
_ASYNC_RETRIES = 2  # AWS retries a failed async invocation twice.

# Limits (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, states quotas).
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024            # request and response of RequestResponse invokes
ASYNC_PAYLOAD_LIMIT = 1024 * 1024               # Event invokes
RESPONSE_PAYLOAD_LIMIT = 6 * 1024 * 1024
STATE_DATA_LIMIT = 256 * 1024                   # a state's input or output

DEVELOPER_USER = "developer"
# Set by the edge once it has checked a presigned URL or POST policy: the access key (and
# session token) the request was signed with. Any copy a client sends is dropped first.
PRESIGNED_BY = "X-Clipstream-Presigned-By"
PRESIGNED_TOKEN = "X-Clipstream-Presigned-Token"
POST_KEY = "X-Clipstream-Post-Key"


@dataclass
class LambdaContext:
    """The parts of the Lambda context object handlers and powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_s: int
    aws_request_id: str
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Dispatcher:
    """Runs Lambda functions by name with the handler their configuration names."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self._faults: dict[str, list[Any]] = defaultdict(list)
        self.invocations: dict[str, int] = defaultdict(int)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.async_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="lambda-async")

    # -- faults, for tests
    def inject_fault(self, function_name: str, fault: Any, times: int = 1) -> None:
        """Make the next `times` invocations fail: an exception instance, or
        ("service", code, status) for a Lambda service error the caller sees."""
        with self._lock:
            self._faults[function_name].extend([fault] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self, function_name: str) -> int:
        """Injected faults not yet served."""
        with self._lock:
            return len(self._faults.get(function_name) or [])

    def _take_fault(self, function_name: str) -> Any:
        with self._lock:
            faults = self._faults.get(function_name)
            return faults.pop(0) if faults else None

    # -- handlers
    def handler_for(self, handler_string: str) -> Callable[..., Any]:
        with self._lock:
            handler = self._handlers.get(handler_string)
            if handler is None:
                module_name, _, attr = handler_string.rpartition(".")
                handler = getattr(importlib.import_module(module_name), attr)
                self._handlers[handler_string] = handler
            return handler

    def run(self, fn: Any, payload: Any) -> tuple[bool, Any]:
        """(ok, result or error payload) of one invocation of a moto LambdaFunction.

        The handler runs as the function's role, in a thread of its own, with its
        own /tmp folder: past the function's timeout the caller gets "Task timed
        out" (the thread cannot be frozen as Lambda freezes a sandbox; its
        credentials stop working instead), and /tmp use over the function's
        ephemeral storage fails the invocation with "No space left on device".
        """
        name = fn.function_name
        self.invocations[name] += 1
        fault = self._take_fault(name)
        timeout_s = int(fn.timeout or 3)
        context = LambdaContext(function_name=name, memory_limit_in_mb=int(fn.memory_size or 128),
                                invoked_function_arn=fn.function_arn, timeout_s=timeout_s,
                                aws_request_id=str(uuid.uuid4()))
        with self._lock:
            self.in_flight[name] += 1
        outcome: dict[str, Any] = {}
        scratch = Path(tempfile.mkdtemp(prefix=f"lambda-{name[-24:]}-"))
        tmp_limit = int(getattr(fn, "ephemeral_storage", 512) or 512) * 1024 * 1024

        def invoke() -> None:
            from chalicelib import aws
            try:
                if isinstance(fault, BaseException):
                    raise fault
                with aws.acting_as(ROLES.credentials(fn.role)), aws.scratch_space(scratch):
                    outcome["result"] = self.handler_for(fn.handler)(payload, context)
            except Exception as exc:  # noqa: BLE001 - a Lambda reports every error as its payload
                outcome["error"] = exc

        worker = threading.Thread(target=invoke, name=f"lambda-{name}", daemon=True)
        try:
            worker.start()
            peak = _watch_scratch(worker, scratch, timeout_s)
            if worker.is_alive():
                logger.warning("lambda %s timed out after %s s", name, timeout_s)
                return False, {"errorType": "Sandbox.Timedout",
                               "errorMessage": f"RequestId: {context.aws_request_id} Error: "
                                               f"Task timed out after {timeout_s:.2f} seconds"}
            if peak > tmp_limit:
                exc = OSError(28, f"No space left on device: /tmp used {peak} bytes of "
                                  f"{tmp_limit} (EphemeralStorage)")
                outcome = {"error": exc}
            if "error" in outcome:
                exc = outcome["error"]
                logger.warning("lambda %s failed: %s: %s", name, type(exc).__name__, exc)
                return False, {"errorType": type(exc).__name__, "errorMessage": str(exc),
                               "stackTrace": traceback.format_exception(exc)[-5:]}
            return True, outcome.get("result")
        finally:
            if not worker.is_alive():
                shutil.rmtree(scratch, ignore_errors=True)
            with self._lock:
                self.in_flight[name] -= 1

    def service_fault(self, function_name: str) -> tuple[str, int] | None:
        """A pending ("service", code, status) fault for this function, if any."""
        with self._lock:
            faults = self._faults.get(function_name)
            if faults and isinstance(faults[0], tuple) and faults[0][0] == "service":
                _, code, status = faults.pop(0)
                return code, status
        return None

    def invoke_async(self, fn: Any, payload: Any) -> None:
        """Queue an async invocation with AWS's retry behaviour."""

        def attempt() -> None:
            for n in range(_ASYNC_RETRIES + 1):
                ok, result = self.run(fn, payload)
                if ok:
                    return
                time.sleep(0.5 * (n + 1))
            logger.error("async invocation of %s failed after retries: %s", fn.function_name, result)

        self.async_pool.submit(attempt)


DISPATCHER = Dispatcher()


def _watch_scratch(worker: threading.Thread, scratch: Path, timeout_s: float) -> int:
    """Wait for the worker (at most timeout_s); the peak size of its /tmp folder meanwhile."""
    deadline = time.monotonic() + timeout_s
    peak = 0
    while worker.is_alive() and time.monotonic() < deadline:
        worker.join(min(0.25, max(0.0, deadline - time.monotonic())))
        peak = max(peak, _folder_bytes(scratch))
    return max(peak, _folder_bytes(scratch))


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class Roles:
    """Credentials of IAM roles, assumed in-process (what Lambda and Step Functions do for a role).

    One session per role, as an execution environment keeps its credentials; the
    role's policies are read at each request, so a grant removed takes effect at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Any] = {}

    def credentials(self, role_arn: str) -> Any:
        from chalicelib.aws import Credentials
        from moto.sts.models import sts_backends
        with self._lock:
            found = self._sessions.get(role_arn)
            if found is None:
                role = sts_backends[ACCOUNT_ID]["aws"].assume_role(
                    region_name="us-east-1", role_session_name="local", role_arn=role_arn,
                    policy="", duration=43200, external_id="")
                found = Credentials(role.access_key_id, role.secret_access_key, role.session_token)
                self._sessions[role_arn] = found
            return found

    def forget(self) -> None:
        with self._lock:
            self._sessions.clear()


ROLES = Roles()


class StorageFaults:
    """S3 requests answered with an error before moto sees them (tests of storage hiccups)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self.served = 0

    def inject(self, method: str, path_contains: str, *, times: int = 1, status: int = 500,
               code: str = "InternalError") -> None:
        """Answer the next `times` `method` requests whose path contains `path_contains`."""
        with self._lock:
            self._rules.append({"method": method.upper(), "path": path_contains, "left": times,
                                "status": status, "code": code})

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> dict | None:
        with self._lock:
            for rule in self._rules:
                if rule["left"] > 0 and rule["method"] == method and rule["path"] in path:
                    rule["left"] -= 1
                    self.served += 1
                    return rule
        return None


STORAGE_FAULTS = StorageFaults()


def _s3_error(start_response: Callable, status: int, code: str, message: str) -> list[bytes]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{uuid.uuid4()}</RequestId></Error>").encode()
    reason = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/xml"),
                                          ("Content-Length", str(len(body)))])
    return [body]


def _signing_key(secret: str, scope: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _secret_of(access_key_id: str, session_token: str | None) -> str | None:
    """The secret of an access key the emulator's IAM knows (a user's key, or an assumed role's)."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    try:
        key = create_access_key(account_id=ACCOUNT_ID, partition="aws", access_key_id=access_key_id,
                                headers={"X-Amz-Security-Token": session_token} if session_token else {})
    except CreateAccessKeyFailure:
        return None
    return key.create_credentials().secret_key


def _environ_key(header: str) -> str:
    """The WSGI environ key of an HTTP header."""
    return "HTTP_" + header.upper().replace("-", "_")


def _header_value(environ: dict, name: str) -> str:
    key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
        name, _environ_key(name))
    return " ".join(str(environ.get(key, "")).split())


def presigned_problem(environ: dict) -> tuple[int, str, str] | None:
    """(status, code, message) if S3 would refuse this presigned (query-signed) request."""
    params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        expires = int(params["X-Amz-Expires"])
        access_key, scope = params["X-Amz-Credential"].split("/", 1)
        signature = params["X-Amz-Signature"]
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not 1 <= expires <= 604800:
            raise ValueError
    except (KeyError, ValueError):
        return 400, "AuthorizationQueryParametersError", "Malformed presigned query"
    if dt.datetime.now(dt.timezone.utc) > signed_at + dt.timedelta(seconds=expires):
        return 403, "AccessDenied", "Request has expired"
    secret = _secret_of(access_key, params.get("X-Amz-Security-Token"))
    if secret is None:
        return 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
    raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")).split("?", 1)[0]
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
                     if k != "X-Amz-Signature")
    names = params.get("X-Amz-SignedHeaders", "host").split(";")
    canonical = "\n".join([environ["REQUEST_METHOD"], raw_path, query,
                           "".join(f"{n}:{_header_value(environ, n)}\n" for n in names), ";".join(names),
                           "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(_signing_key(secret, scope), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return 403, "SignatureDoesNotMatch", ("The request signature we calculated does not match the "
                                              "signature you provided. Check your key and signing method.")
    environ[_environ_key(PRESIGNED_BY)] = access_key
    if params.get("X-Amz-Security-Token"):
        environ[_environ_key(PRESIGNED_TOKEN)] = params["X-Amz-Security-Token"]
    return None


def post_policy_problem(environ: dict) -> tuple[int, str, str] | None:
    """(status, code, message) if S3 would refuse this presigned POST (browser form upload).

    The body is read here (and handed on to moto unchanged): the policy's
    signature and expiry, and every condition against the form's fields and the
    file's real size, as S3 checks them.
    """
    from werkzeug.formparser import parse_form_data

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    probe = dict(environ, **{"wsgi.input": io.BytesIO(body)})
    _, form, files = parse_form_data(probe)
    fields = {k.lower(): v for k, v in form.items()}
    upload = files.get("file")
    if upload is None or "policy" not in fields:
        return 400, "InvalidArgument", "POST requires a policy and a file field"
    size = len(upload.read())
    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        access_key, scope = fields["x-amz-credential"].split("/", 1)
        signature = fields["x-amz-signature"]
        expiration = dt.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
    except (KeyError, ValueError, TypeError):
        return 400, "InvalidPolicyDocument", "Invalid Policy: malformed policy or signature fields"
    if dt.datetime.now(dt.timezone.utc) > expiration:
        return 403, "AccessDenied", "Invalid according to Policy: Policy expired."
    secret = _secret_of(access_key, fields.get("x-amz-security-token"))
    if secret is None:
        return 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
    expected = hmac.new(_signing_key(secret, scope), fields["policy"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
    bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
    values = {**fields, "bucket": bucket}
    covered = {"policy", "x-amz-signature", "file"}
    for cond in conditions:
        if isinstance(cond, dict):
            (name, want), = cond.items()
            name = name.lower().lstrip("$")
            covered.add(name)
            if values.get(name) != want:
                return 403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: [\"eq\", \"${name}\", \"{want}\"]"
        elif isinstance(cond, list) and cond and cond[0] == "content-length-range":
            if not int(cond[1]) <= size <= int(cond[2]):
                code = "EntityTooLarge" if size > int(cond[2]) else "EntityTooSmall"
                return 400, code, "Your proposed upload exceeds the maximum allowed size" if code == "EntityTooLarge" \
                    else "Your proposed upload is smaller than the minimum allowed size"
        elif isinstance(cond, list) and len(cond) == 3 and cond[0] in ("eq", "starts-with"):
            name = str(cond[1]).lower().lstrip("$")
            covered.add(name)
            have = values.get(name, "")
            if (cond[0] == "eq" and have != cond[2]) or (cond[0] == "starts-with" and not have.startswith(cond[2])):
                return 403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(cond)}"
    extra = sorted(k for k in fields if k not in covered and not k.startswith("x-ignore-"))
    if extra:
        return 403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}"
    environ[_environ_key(PRESIGNED_BY)] = access_key
    environ[_environ_key(POST_KEY)] = fields.get("key", "")
    if fields.get("x-amz-security-token"):
        environ[_environ_key(PRESIGNED_TOKEN)] = fields["x-amz-security-token"]
    return None


_INTERNAL = tuple(_environ_key(h) for h in (PRESIGNED_BY, PRESIGNED_TOKEN, POST_KEY))


def edge(app: Callable) -> Callable:
    """WSGI middleware in front of moto: injected faults, then authentication as AWS does it.

    Header-signed requests go on to moto, which checks their SigV4 signature
    and (patched by `_install_authorization`) the caller's policies. Presigned
    URLs and POST policies are checked here. Anything else is anonymous, and
    nothing in this account allows anonymous access: 403, as S3 answers.
    """

    def wrapped(environ: dict, start_response: Callable) -> Any:
        for name in _INTERNAL:
            environ.pop(name, None)
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        from infra.local import websocket
        if websocket.is_management_request(path):   # the WebSocket API's @connections (its own checks)
            return websocket.management_api(environ, start_response)
        fault = STORAGE_FAULTS.take(method, path)
        if fault:
            return _s3_error(start_response, fault["status"], fault["code"], "Injected fault")
        query = environ.get("QUERY_STRING", "")
        if path.startswith("/moto-api") or method == "OPTIONS":
            problem = None  # the emulator's own control plane; CORS preflights carry no credentials
        elif environ.get("HTTP_AUTHORIZATION"):
            problem = None  # SigV4 in the header: moto checks the signature and the policies
        elif "X-Amz-Signature=" in query or "X-Amz-Credential=" in query:
            problem = presigned_problem(environ)
        elif method == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            problem = post_policy_problem(environ)
        else:
            problem = (403, "AccessDenied", "Anonymous access is not allowed: sign the request")
        if problem:
            return _s3_error(start_response, *problem)
        return app(environ, start_response)

    return wrapped


def _policy_documents(principal: Any) -> list[dict]:
    from moto.iam.access_control import IAMPolicy  # reads inline and managed policies alike
    return [IAMPolicy(policy)._policy_json for policy in principal.collect_policies()]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, *, case: bool = True) -> bool:
    return any(fnmatch.fnmatchcase(value if case else value.lower(), p if case else p.lower())
               for p in _as_list(patterns))


def _conditions_hold(conditions: dict, context: dict[str, str]) -> bool:
    """StringEquals / StringLike (and their Not forms) over the request's context keys."""
    for op, tests in (conditions or {}).items():
        for key, wanted in tests.items():
            have = context.get(key.lower())
            if have is None:
                return False
            like = "Like" in op
            hit = any((fnmatch.fnmatchcase(have, w) if like else have == w) for w in _as_list(wanted))
            if op.startswith("StringNot") == hit:
                return False
    return True


def allowed(principal: Any, action: str, resource: str, context: dict[str, str]) -> bool:
    """IAM's verdict for identity policies: an explicit Deny wins, else any matching Allow."""
    verdict = False
    for doc in _policy_documents(principal):
        for st in _as_list(doc.get("Statement", [])):
            if not _matches(st.get("Action", []), action, case=False):
                continue
            if not _matches(st.get("Resource", []), resource):
                continue
            if "Condition" in st and not _conditions_hold(st["Condition"], context):
                continue
            if st.get("Effect") == "Deny":
                return False
            verdict = True
    return verdict


# API operation names whose IAM action is named otherwise.
_IAM_ACTIONS = {"lambda:Invoke": "lambda:InvokeFunction"}


def _resource_of(response: Any, action: str, default: str) -> str:
    """The ARN a Step Functions or Lambda call acts on (moto's check knows none)."""
    service = action.split(":", 1)[0]
    if service == "states":
        try:
            body = json.loads(response.body or "{}")
        except ValueError:
            body = {}
        return body.get("executionArn") or body.get("stateMachineArn") or default
    if service == "lambda":
        parts = unquote(response.path).split("/functions/", 1)
        if len(parts) == 2:
            name = parts[1].split("/", 1)[0]
            if name.startswith("arn:"):
                return name.split(":$")[0]
            return f"arn:aws:lambda:{response.region}:{ACCOUNT_ID}:function:{name.split(':')[0]}"
    return default


def _s3_keys_to_delete(body: bytes) -> list[str]:
    import xml.etree.ElementTree as ET
    root = ET.fromstring(body or b"<Delete/>")
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]


def _install_authorization() -> None:
    """moto's IAM checks on every request, with S3's presigned requests and conditions understood."""
    from moto.core import authorization
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.s3.exceptions import S3AccessDeniedError

    original = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action

    def check(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        from moto.iam.access_control import S3IAMRequest
        headers = self.headers
        if iam_request_cls is S3IAMRequest and self.method == "OPTIONS":
            # A CORS preflight carries no credentials; S3 answers it from the bucket's CORS rules
            # (moto does, once past this check), never with an authorization error.
            return
        if headers.get("Authorization"):
            path = self.raw_path + ("?" + urlparse(self.uri).query if urlparse(self.uri).query else "")
            # A bodiless REST call (Lambda's GETs) is signed over an empty payload: moto would
            # sign its parsed query as a form body and refuse a correct signature.
            bodiless = self.method in ("GET", "HEAD", "DELETE") and iam_request_cls is not S3IAMRequest
            data = {} if bodiless else self.data
            request = iam_request_cls(account_id=self.current_account, method=self.method, path=path,
                                      data=data, body=self.raw_body, headers=headers,
                                      action=self._get_action())
            request.check_signature()
            principal, deny = request._access_key, request._raise_access_denied
            if iam_request_cls is not S3IAMRequest:
                if request._action == "sts:GetCallerIdentity":
                    return
                action = _IAM_ACTIONS.get(request._action, request._action)
                if not allowed(principal, action, _resource_of(self, action, resource), {}):
                    deny()
                return
        elif iam_request_cls is not S3IAMRequest:
            return original(self, iam_request_cls, resource)   # moto refuses it (no credentials)
        else:
            key_id = headers.get(PRESIGNED_BY)
            if not key_id:
                raise S3AccessDeniedError()
            token = headers.get(PRESIGNED_TOKEN)
            try:
                principal = create_access_key(account_id=ACCOUNT_ID, partition="aws", access_key_id=key_id,
                                              headers={"X-Amz-Security-Token": token} if token else {})
            except CreateAccessKeyFailure:
                raise S3AccessDeniedError() from None

            def deny() -> None:
                raise S3AccessDeniedError()
        action = self._get_action()
        action = "ListBucket" if action == "HeadBucket" else action   # HeadBucket needs s3:ListBucket
        context = {"s3:prefix": (self.querystring.get("prefix") or [""])[0]}
        resources = [resource]
        if action == "PutObject" and "/" not in resource.split(":::", 1)[1] and headers.get(POST_KEY):
            resources = [f"{resource}/{headers.get(POST_KEY)}"]          # a POST names its key in the form
        elif action == "DeleteObject" and "/" not in resource.split(":::", 1)[1]:
            resources = [f"{resource}/{k}" for k in _s3_keys_to_delete(self.body)]  # DeleteObjects: each key
        if not all(allowed(principal, f"s3:{action}", r, context) for r in resources):
            deny()

    authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = check


def bootstrap_iam(access_key_id: str, secret_access_key: str) -> None:
    """The developer user (administrator) owns the given key; then every request is checked."""
    from moto import settings
    from moto.iam.models import iam_backends

    iam = iam_backends[ACCOUNT_ID]["aws"]
    try:
        user = iam.get_user(DEVELOPER_USER)
    except Exception:  # noqa: BLE001 - moto raises its NoSuchEntity
        user = iam.create_user(region_name="us-east-1", user_name=DEVELOPER_USER, path="/", tags=[])
        iam.put_user_policy(DEVELOPER_USER, "administrator", json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    if not any(k.access_key_id == access_key_id for k in user.access_keys):
        key = iam.create_access_key(DEVELOPER_USER)
        key.access_key_id, key.secret_access_key = access_key_id, secret_access_key
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def _install_lambda_backend() -> None:
    """Swap moto's Docker-free Lambda backend for one that runs our handlers."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple import models as simple_models
    from moto.core.base_backend import BackendDict

    class ServiceFault(LambdaClientError):
        def __init__(self, code: str, status: int) -> None:
            super().__init__(code, f"Injected {code}")
            self.code = status

    class PayloadTooLarge(LambdaClientError):
        def __init__(self, size: int, limit: int) -> None:
            super().__init__("RequestEntityTooLargeException",
                             f"{size} byte payload is too large for this invocation type (limit {limit} bytes)")
            self.code = 413

    class LocalLambdaBackend(simple_models.LambdaSimpleBackend):
        def invoke(self, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any) -> bytes:
            fn = self.get_function(function_name, qualifier)
            fault = DISPATCHER.service_fault(fn.function_name)
            if fault:
                raise ServiceFault(*fault)
            is_async = (headers or {}).get("X-Amz-Invocation-Type") == "Event"
            size = len(body or b"")
            limit = ASYNC_PAYLOAD_LIMIT if is_async else SYNC_PAYLOAD_LIMIT
            if size > limit:
                raise PayloadTooLarge(size, limit)
            payload = json.loads(body) if body else {}
            if is_async:
                DISPATCHER.invoke_async(fn, payload)
                return b""
            ok, result = DISPATCHER.run(fn, payload)
            answer = json.dumps(result, default=str).encode()
            if ok and len(answer) > RESPONSE_PAYLOAD_LIMIT:
                ok, answer = False, json.dumps({
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                    f"({RESPONSE_PAYLOAD_LIMIT} bytes)."}).encode()
            if not ok:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["x-amz-log-result"] = base64.b64encode(b"").decode()
            response_headers["x-amz-executed-version"] = "$LATEST"
            return answer

    simple_models.lambda_simple_backends = BackendDict(LocalLambdaBackend, "lambda")


def _install_state_machine_roles() -> None:
    """Each execution calls Lambda as its state machine's role; a state over 256 KiB fails it."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils as lam
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as service)

    def execute(env: Any, parameters: dict, region: str, state_credentials: Any) -> None:
        from chalicelib import aws
        role = env.states.context_object.context_object_data["Execution"]["RoleArn"]
        payload = parameters.get("Payload") or b""
        if len(payload) > STATE_DATA_LIMIT:
            raise _data_limit(env, len(payload))
        with aws.acting_as(ROLES.credentials(role)):
            client = aws.client("lambda", read_timeout=960)
        response = client.invoke(**parameters)
        raw = response["Payload"].read()
        if len(raw) > STATE_DATA_LIMIT and not response.get("FunctionError"):
            raise _data_limit(env, len(raw))
        response["Payload"] = lam._from_payload(io.BytesIO(raw)) if hasattr(lam, "_from_payload") else json.loads(raw)
        if response.get("FunctionError"):
            raise lam.LambdaFunctionErrorException(response["FunctionError"],
                                                   json.dumps(response["Payload"], separators=(",", ":")))
        env.stack.append(lam.select_from_typed_dict(typed_dict=lam.InvocationResponse, obj=response))

    def _data_limit(env: Any, size: int) -> Exception:
        from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent, FailureEventException)
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType)
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
        error = "States.DataLimitExceeded"
        cause = f"The state's data is {size} bytes, over the {STATE_DATA_LIMIT} byte limit"
        return FailureEventException(FailureEvent(
            env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource="invoke", resourceType="lambda"))))

    lam.execute_lambda_function_integration = execute
    service.lambda_eval_utils.execute_lambda_function_integration = execute


def _install_s3_notifications() -> None:
    """Deliver bucket notifications to Lambda through the dispatcher, asynchronously."""
    from moto.s3 import notifications

    def invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        from moto.awslambda.utils import get_backend
        try:
            fn = get_backend(account_id, region_name).get_function(fn_arn)
        except Exception:  # noqa: BLE001 - AWS drops events for missing functions
            logger.warning("S3 notification for unknown function %s dropped", fn_arn)
            return
        DISPATCHER.invoke_async(fn, event_body)

    notifications._invoke_awslambda = invoke_awslambda


def _checked_server_class() -> type:
    """moto's threaded server with `edge` in front of its WSGI app."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                               create_backend_app)
    from werkzeug.serving import make_server

    class CheckedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = edge(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return CheckedMotoServer


class Emulator:
    """moto's server on host:port with our Lambda dispatch installed."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566) -> None:
        self.host, self.port = host, port
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "Emulator":
        # The ASL interpreter calls Lambda through this port.
        os.environ["MOTO_PORT"] = str(self.port)
        from moto.core.config import default_user_config

        # The interpreter logs every failed execution at ERROR; executions are
        # inspected through the API instead.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["lambda"] = {"use_docker": False}
        _install_lambda_backend()
        _install_s3_notifications()
        _install_state_machine_roles()
        _install_authorization()
        self._server = _checked_server_class()(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        DISPATCHER.async_pool.shutdown(wait=False, cancel_futures=True)
