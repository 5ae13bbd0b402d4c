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
- Presigned URLs are checked as S3 checks them: expired ones are refused, and
  a URL signed with the stack's own key is valid for its method, key and
  query only (moto alone accepts any signature).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qsl, quote

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
_ASYNC_RETRIES = 2  # AWS retries a failed async invocation twice.


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
        """(ok, result or error payload) of one invocation of a moto LambdaFunction."""
        name = fn.function_name
        self.invocations[name] += 1
        fault = self._take_fault(name)
        context = LambdaContext(function_name=name, memory_limit_in_mb=int(fn.memory_size or 128),
                                invoked_function_arn=fn.function_arn, timeout_s=int(fn.timeout or 3),
                                aws_request_id=str(uuid.uuid4()))
        with self._lock:
            self.in_flight[name] += 1
        try:
            if isinstance(fault, BaseException):
                raise fault
            return True, self.handler_for(fn.handler)(payload, context)
        except Exception as exc:  # noqa: BLE001 - a Lambda reports every error as its payload
            logger.warning("lambda %s failed: %s: %s", name, type(exc).__name__, exc)
            return False, {"errorType": type(exc).__name__, "errorMessage": str(exc),
                           "stackTrace": traceback.format_exception(exc)[-5:]}
        finally:
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
    reason = {403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/xml"),
                                          ("Content-Length", str(len(body)))])
    return [body]


def presigned_problem(environ: dict) -> tuple[str, str] | None:
    """(code, message) if the request carries a presigned query S3 would refuse."""
    params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if "X-Amz-Signature" not in params:
        return None
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        expires = int(params["X-Amz-Expires"])
        access_key, scope = params["X-Amz-Credential"].split("/", 1)
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError", "Malformed presigned query"
    if dt.datetime.now(dt.timezone.utc) > signed_at + dt.timedelta(seconds=expires):
        return "AccessDenied", "Request has expired"
    if access_key != os.environ.get("AWS_ACCESS_KEY_ID") or not os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return None  # someone else's key: moto accepts any credentials
    expected = _presigned_signature(environ, params, scope)
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
    return None


def _presigned_signature(environ: dict, params: dict, scope: str) -> str:
    """SigV4 query signature of this request (method, raw path, query, signed headers)."""
    raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")).split("?", 1)[0]
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
                     if k != "X-Amz-Signature")
    names = params.get("X-Amz-SignedHeaders", "host").split(";")

    def header(name: str) -> str:
        key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
            name, "HTTP_" + name.upper().replace("-", "_"))
        return " ".join(str(environ.get(key, "")).split())

    canonical = "\n".join([environ["REQUEST_METHOD"], raw_path, query,
                           "".join(f"{n}:{header(n)}\n" for n in names), ";".join(names),
                           "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def storage_checks(app: Callable) -> Callable:
    """WSGI middleware in front of moto: injected storage faults, then presigned URL checks."""

    def wrapped(environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        fault = STORAGE_FAULTS.take(environ.get("REQUEST_METHOD", ""), path)
        if fault:
            return _s3_error(start_response, fault["status"], fault["code"], "Injected fault")
        problem = presigned_problem(environ)
        if problem:
            return _s3_error(start_response, 403, *problem)
        return app(environ, start_response)

    return wrapped


def _install_lambda_backend() -> None:
    """Swap moto's Docker-free Lambda backend for one that runs our handlers."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple import models as simple_models
    from moto.core.base_backend import BackendDict

    class ServiceFault(LambdaClientError):
        def __init__(self, code: str, status: int) -> None:
            super().__init__(code, f"Injected {code}")
            self.code = status

    class LocalLambdaBackend(simple_models.LambdaSimpleBackend):
        def invoke(self, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any) -> bytes:
            fn = self.get_function(function_name, qualifier)
            fault = DISPATCHER.service_fault(fn.function_name)
            if fault:
                raise ServiceFault(*fault)
            payload = json.loads(body) if body else {}
            if (headers or {}).get("X-Amz-Invocation-Type") == "Event":
                DISPATCHER.invoke_async(fn, payload)
                return b""
            ok, result = DISPATCHER.run(fn, payload)
            if not ok:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["x-amz-log-result"] = base64.b64encode(b"").decode()
            response_headers["x-amz-executed-version"] = "$LATEST"
            return json.dumps(result, default=str).encode()

    simple_models.lambda_simple_backends = BackendDict(LocalLambdaBackend, "lambda")


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
    """moto's threaded server with `storage_checks` in front of its WSGI app."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                               create_backend_app)
    from werkzeug.serving import make_server

    class CheckedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = storage_checks(DomainDispatcherApplication(create_backend_app))
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
        self._server = _checked_server_class()(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        DISPATCHER.async_pool.shutdown(wait=False, cancel_futures=True)
