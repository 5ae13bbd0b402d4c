"""API Gateway's WebSocket API, locally: a real WebSocket endpoint and its management API.

- `LiveGateway` serves WebSocket connections on its own port (ws://host:port/).
  Like API Gateway it gives each connection an id and invokes the app's
  `$connect`, `$default` and `$disconnect` functions (deployed by
  infra/local/deploy.py with their roles) through the emulator's Lambda API, with
  API Gateway's event (requestContext.connectionId, routeKey, eventType,
  domainName, stage, apiId; queryStringParameters on $connect). A $connect that
  answers other than 2xx refuses the handshake with that status. Frames are
  limited as API Gateway limits them (128 KB a message).
- `management_api` is the `@connections` API (POST to send, GET to describe,
  DELETE to close) that boto3's `apigatewaymanagementapi` client calls with
  endpoint_url `{emulator}/{stage}`. The emulator's edge sends it these
  requests; each must be SigV4-signed by a key the emulator's IAM knows and
  allowed `execute-api:ManageConnections` on the connection's ARN, as in AWS.
  A connection that is not open answers 410 GoneException.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import uuid
from typing import Any, Callable

logger = logging.getLogger(__name__)

API_ID = "live"                       # the local WebSocket API's id (the template's ${WebsocketAPI})
MESSAGE_LIMIT = 128 * 1024            # API Gateway: 128 KB a message (32 KB frames)
_PATH = re.compile(r"^/(?P<stage>[^/@]+)/@connections/(?P<id>[^/]+)$")


class LiveGateway:
    """WebSocket connections whose routes run the app's functions."""

    def __init__(self, host: str, port: int, *, stage: str, region: str, lambda_endpoint: str,
                 functions: dict[str, str], credentials: tuple[str, str]) -> None:
        self.host, self.port, self.stage, self.region = host, port, stage, region
        self.functions = functions            # route key -> deployed function name
        self._lambda_endpoint = lambda_endpoint
        self._credentials = credentials
        self._connections: dict[str, Any] = {}
        self._connected_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None
        self._lambda = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # -- lifecycle
    def start(self) -> "LiveGateway":
        from websockets.sync.server import serve
        self._server = serve(self._serve, self.host, self.port, process_request=self._connect,
                             max_size=MESSAGE_LIMIT, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        with self._lock:
            connections = list(self._connections.values())
        for ws in connections:
            ws.close()

    # -- the routes
    def _event(self, route: str, connection_id: str, **extra: Any) -> dict:
        kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        return {"requestContext": {
            "routeKey": route, "eventType": kind, "connectionId": connection_id,
            "domainName": f"{self.host}:{self.port}", "stage": self.stage, "apiId": API_ID,
            "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
            "connectedAt": int(self._connected_at.get(connection_id, time.time()) * 1000)},
            "isBase64Encoded": False, **extra}

    def _invoke(self, route: str, event: dict) -> tuple[int, str]:
        """Run the route's function as API Gateway does (Lambda Invoke); (status, body)."""
        if self._lambda is None:
            import boto3
            self._lambda = boto3.session.Session().client(
                "lambda", region_name=self.region, endpoint_url=self._lambda_endpoint,
                aws_access_key_id=self._credentials[0], aws_secret_access_key=self._credentials[1])
        answer = self._lambda.invoke(FunctionName=self.functions[route], Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            logger.error("%s failed: %s", route, payload[:2000])
            return 500, json.dumps({"message": "Internal server error"})
        result = json.loads(payload or b"null") or {}
        return int(result.get("statusCode", 200)), str(result.get("body") or "")

    def _connect(self, ws: Any, request: Any) -> Any:
        """The handshake: $connect decides (a non-2xx answer refuses the connection)."""
        from urllib.parse import parse_qsl, urlsplit
        connection_id = secrets.token_urlsafe(12)
        query = dict(parse_qsl(urlsplit(request.path).query, keep_blank_values=True)) or None
        self._connected_at[connection_id] = time.time()
        status, body = self._invoke("$connect", self._event(
            "$connect", connection_id, queryStringParameters=query,
            headers={k: v for k, v in request.headers.raw_items()}))
        if not 200 <= status < 300:
            self._connected_at.pop(connection_id, None)
            response = ws.respond(status, body or "Forbidden")
            return response
        ws.live_connection_id = connection_id
        return None

    def _serve(self, ws: Any) -> None:
        connection_id = ws.live_connection_id
        with self._lock:
            self._connections[connection_id] = ws
        try:
            for message in ws:
                if isinstance(message, bytes):
                    message = message.decode("utf-8", "replace")
                status, body = self._invoke("$default", self._event("$default", connection_id, body=message))
                if status >= 500:
                    ws.send(body)
        except Exception:  # noqa: BLE001 - the client went away mid-message
            logger.debug("connection %s ended", connection_id, exc_info=True)
        finally:
            with self._lock:
                self._connections.pop(connection_id, None)
            self._invoke("$disconnect", self._event("$disconnect", connection_id))
            self._connected_at.pop(connection_id, None)

    # -- the @connections API
    def post(self, connection_id: str, data: bytes) -> bool:
        ws = self._connections.get(connection_id)
        if ws is None:
            return False
        try:
            ws.send(data.decode("utf-8", "replace"))
            return True
        except Exception:  # noqa: BLE001 - closed under us: gone
            return False

    def close(self, connection_id: str) -> bool:
        ws = self._connections.get(connection_id)
        if ws is None:
            return False
        ws.close()
        return True

    def describe(self, connection_id: str) -> dict | None:
        ws = self._connections.get(connection_id)
        if ws is None:
            return None
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._connected_at.get(connection_id, 0)))
        return {"connectedAt": at, "lastActiveAt": at,
                "identity": {"sourceIp": str(ws.remote_address[0]), "userAgent": ""}}


GATEWAY: LiveGateway | None = None


def _error(start_response: Callable, status: int, code: str, message: str) -> list[bytes]:
    body = json.dumps({"message": message}).encode()
    reason = {400: "Bad Request", 403: "Forbidden", 410: "Gone", 413: "Payload Too Large"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("x-amzn-ErrorType", code),
                                          ("Content-Length", str(len(body)))])
    return [body]


def is_management_request(path: str) -> bool:
    return "/@connections/" in path


def management_api(environ: dict, start_response: Callable) -> list[bytes]:
    """POST/GET/DELETE {stage}/@connections/{id}, signed and authorized as API Gateway does."""
    from werkzeug.wrappers import Request
    request = Request(environ)
    found = _PATH.match(request.path)
    if found is None or GATEWAY is None or found["stage"] != GATEWAY.stage:
        return _error(start_response, 403, "ForbiddenException", "Forbidden")
    body = request.get_data()
    problem = _authorization_problem(request, body, found["stage"], found["id"])
    if problem:
        return _error(start_response, 403, "ForbiddenException", problem)
    connection_id = found["id"]
    if request.method == "POST":
        if len(body) > MESSAGE_LIMIT:
            return _error(start_response, 413, "PayloadTooLargeException", "Message too long")
        ok = GATEWAY.post(connection_id, body)
        answer = b""
    elif request.method == "DELETE":
        ok, answer = GATEWAY.close(connection_id), b""
    elif request.method == "GET":
        info = GATEWAY.describe(connection_id)
        ok, answer = info is not None, json.dumps(info or {}).encode()
    else:
        return _error(start_response, 403, "ForbiddenException", "Forbidden")
    if not ok:
        return _error(start_response, 410, "GoneException", f"Connection {connection_id} is gone")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


def _authorization_problem(request: Any, body: bytes, stage: str, connection_id: str) -> str | None:
    """Why this request may not manage the connection (unsigned, bad signature, no grant), or None."""
    from moto.iam.access_control import IAMRequest

    from infra.local.emulator import ACCOUNT_ID, allowed
    headers = {k: v for k, v in request.headers.items()}
    if not headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
        return "Missing Authentication Token"
    path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    try:
        signed = IAMRequest(account_id=ACCOUNT_ID, method=request.method, path=path, data={}, body=body,
                            headers=headers, action="ManageConnections")
        signed.check_signature()
    except Exception:  # noqa: BLE001 - moto raises its own error types for unknown keys and bad signatures
        return "The request signature we calculated does not match the signature you provided"
    arn = (f"arn:aws:execute-api:{GATEWAY.region}:{ACCOUNT_ID}:{API_ID}/{stage}/{request.method}"
           f"/@connections/{connection_id}")
    if not allowed(signed._access_key, "execute-api:ManageConnections", arn, {}):
        return f"User is not authorized to perform: execute-api:ManageConnections on resource: {arn}"
    return None
