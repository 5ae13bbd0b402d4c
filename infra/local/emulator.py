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
- Faults can be injected per function (tests of retries): `inject_fault`.
"""
from __future__ import annotations

import base64
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


class InjectedFault(Exception):
    """A fault a test asked the emulator to raise."""


class Dispatcher:
    """Runs Lambda functions by name with the handler their configuration names."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self._faults: dict[str, list[Any]] = defaultdict(list)
        self.invocations: dict[str, int] = defaultdict(int)
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
        try:
            if isinstance(fault, BaseException):
                raise fault
            return True, self.handler_for(fn.handler)(payload, context)
        except Exception as exc:  # noqa: BLE001 - a Lambda reports every error as its payload
            logger.warning("lambda %s failed: %s: %s", name, type(exc).__name__, exc)
            return False, {"errorType": type(exc).__name__, "errorMessage": str(exc),
                           "stackTrace": traceback.format_exception(exc)[-5:]}

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
        from moto.server import ThreadedMotoServer

        # The interpreter logs every failed execution at ERROR; executions are
        # inspected through the API instead.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["lambda"] = {"use_docker": False}
        _install_lambda_backend()
        _install_s3_notifications()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        DISPATCHER.async_pool.shutdown(wait=False, cancel_futures=True)
