"""The whole product on one machine: Postgres, the AWS emulator, the deploy, the API.

`make dev` runs `python -m infra.local.stack` in the foreground until Ctrl-C.
The tests start the same stack (without `chalice local` unless they ask) on
free ports with throwaway data.

State between runs lives in the data folder (.local/): the database in
pgdata, the emulator's objects written through to s3/ (infra.local.persistence),
and what was in flight when the stack stopped is resumed or failed visibly at
the next start. `make reset` starts from a clean slate.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.local.postgres import LocalPostgres, free_port  # noqa: E402

logger = logging.getLogger("clipstream.stack")

DEFAULT_DB_NAME = "clipstream"


@dataclass
class StackConfig:
    stage: str = "local"
    bucket: str = "clipstream"
    region: str = "us-east-1"
    emulator_port: int = 4566
    api_port: int = 8000
    pg_port: int = 54320
    certs_port: int = 4580
    live_port: int = 4510                # the WebSocket API (live updates)
    data_dir: Path = ROOT / ".local"
    database_url: str | None = None      # an external Postgres instead of the embedded one
    aws_endpoint_url: str | None = None  # real LocalStack instead of the embedded emulator
    s3_endpoint_url: str | None = None   # MinIO
    reset_database: bool = False  # data survives restarts; make reset clears it
    extra_env: dict[str, str] = field(default_factory=dict)


class Stack:
    """Starts and stops every part; `env` is what the API and handlers run with."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: LocalPostgres | None = None
        self.emulator = None
        self.api_process: subprocess.Popen | None = None
        self.deployment = None
        self.certs = None
        self.google_key = None
        self.live = None   # infra.local.websocket.LiveGateway
        self.env: dict[str, str] = {}
        self.recovery: dict[str, list[str]] = {}  # what the start resumed or failed

    # -- parts
    def _start_postgres(self) -> str:
        c = self.config
        if c.database_url:
            return c.database_url
        self.postgres = LocalPostgres(c.data_dir / "pgdata", c.pg_port)
        self.postgres.start()
        return self.postgres.create_database(DEFAULT_DB_NAME, reset=c.reset_database)

    def _start_emulator(self) -> str:
        c = self.config
        if c.aws_endpoint_url:
            return c.aws_endpoint_url
        from infra.local.emulator import Emulator, bootstrap_iam
        self.emulator = Emulator("127.0.0.1", c.emulator_port).start()
        # The developer's credentials (the environment's, or local/local) belong to an
        # administrator user; every other caller is a role, and unsigned requests are refused.
        bootstrap_iam(*self.developer_credentials())
        # Durable local data: every object change is written through to disk.
        from infra.local import persistence
        persistence.install(c.data_dir / "s3")
        return self.emulator.endpoint

    @staticmethod
    def developer_credentials() -> tuple[str, str]:
        return (os.environ.get("AWS_ACCESS_KEY_ID", "local"), os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))

    def _start_google_certs(self) -> dict[str, str]:
        """Our own Google signing key, published where the API fetches Google's."""
        from infra.local.google_keys import LOCAL_CLIENT_ID, CertsServer, DevKey
        c = self.config
        self.google_key = DevKey(c.data_dir / "google-dev-key.pem")
        self.certs = CertsServer(self.google_key, c.certs_port)
        return {"GOOGLE_CERTS_URL": self.certs.url,
                "GOOGLE_CLIENT_IDS": os.environ.get("GOOGLE_CLIENT_IDS", LOCAL_CLIENT_ID)}

    def _jwt_secret(self) -> str:
        """A per-checkout secret, kept so app tokens survive a restart of make dev."""
        import secrets
        path = self.config.data_dir / "jwt-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def start(self, *, api: bool = True) -> "Stack":
        c = self.config
        database_url = self._start_postgres()
        aws_endpoint = self._start_emulator()
        google_env = self._start_google_certs()
        s3_endpoint = c.s3_endpoint_url or aws_endpoint
        self.env = {
            "STAGE": c.stage,
            "DATABASE_URL": database_url,
            "BUCKET_NAME": c.bucket,
            "AWS_REGION": c.region,
            "AWS_DEFAULT_REGION": c.region,
            "AWS_ACCESS_KEY_ID": self.developer_credentials()[0],
            "AWS_SECRET_ACCESS_KEY": self.developer_credentials()[1],
            "AWS_ENDPOINT_URL": aws_endpoint,
            "S3_ENDPOINT_URL": s3_endpoint,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{c.api_port}",
            "MINIO_WEBHOOK_SECRET": os.environ.get("MINIO_WEBHOOK_SECRET", "local-webhook-secret"),
            "POWERTOOLS_SERVICE_NAME": "clipstream",
            "POWERTOOLS_METRICS_NAMESPACE": "ClipstreamLocal",
            "JWT_SECRET": os.environ.get("JWT_SECRET") or self._jwt_secret(),
            "ADMIN_EMAILS": os.environ.get("ADMIN_EMAILS", "admin@example.com"),
            # The WebSocket API's management endpoint: the emulator serves @connections under the stage.
            **({"LIVE_ENDPOINT_URL": f"{aws_endpoint}/{c.stage}"} if self.emulator is not None else {}),
            **google_env,
            **c.extra_env,
        }
        # Handlers the emulator runs live in this process: same settings as the API.
        os.environ.update(self.env)
        from chalicelib.config import reset_settings
        reset_settings()
        from chalicelib.db.migrate import migrate
        migrate()

        from infra.local.deploy import deploy
        self.deployment = deploy(stage=c.stage, bucket=c.bucket, region=c.region,
                                 aws_endpoint=aws_endpoint, s3_endpoint=s3_endpoint,
                                 runtime_env=self.env)
        self.env["STATE_MACHINE_ARN"] = self.deployment.state_machine_arn
        os.environ["STATE_MACHINE_ARN"] = self.deployment.state_machine_arn
        self.env["CLIPS_STATE_MACHINE_ARN"] = self.deployment.clips_state_machine_arn
        os.environ["CLIPS_STATE_MACHINE_ARN"] = self.deployment.clips_state_machine_arn
        self.env["WEBHOOKS_STATE_MACHINE_ARN"] = self.deployment.webhooks_state_machine_arn
        os.environ["WEBHOOKS_STATE_MACHINE_ARN"] = self.deployment.webhooks_state_machine_arn
        if self.emulator is not None:
            self.env["LOCAL_API_CREDENTIALS"] = os.environ["LOCAL_API_CREDENTIALS"] = self._api_credentials()
        reset_settings()
        from chalicelib import aws
        aws.forget_clients()
        # Durable local data: the objects back in the emulator, then what the last run left in flight.
        from infra.local import persistence
        if self.emulator:
            persistence.restore(c.data_dir / "s3")
            self._start_live_gateway(aws_endpoint)
        self.recovery = persistence.recover()
        if api:
            self._start_api()
        return self

    def _start_live_gateway(self, aws_endpoint: str) -> None:
        """The WebSocket API: a real endpoint whose routes run the deployed websocket_* functions."""
        from infra.local import websocket
        from infra.local.deploy import WEBSOCKET_FUNCTIONS, full_name
        c = self.config
        functions = {route: full_name("clipstream", c.stage, name) for route, name in WEBSOCKET_FUNCTIONS.items()}
        self.live = websocket.LiveGateway("127.0.0.1", c.live_port, stage=c.stage, region=c.region,
                                          lambda_endpoint=aws_endpoint, functions=functions,
                                          credentials=self.developer_credentials()).start()
        websocket.GATEWAY = self.live
        self.env["LIVE_URL"] = self.live.url

    def _api_credentials(self) -> str:
        """Each API route's credentials: its route group's role, as in AWS (JSON for the API's env)."""
        import json

        from app import app as chalice_app
        from infra.aws import routes
        from infra.local.emulator import ROLES
        groups = {group: list(ROLES.credentials(arn)) for group, arn in self.deployment.api_roles.items()}
        paths = {path: routes.group_of(path).name for path in chalice_app.routes}
        return json.dumps({"groups": groups, "routes": paths}, separators=(",", ":"))

    def _start_api(self) -> None:
        c = self.config
        chalice = Path(sys.executable).with_name("chalice")
        from infra.local import persistence
        persistence.stop_stale_api(c.data_dir)  # left serving by a stack that was killed
        self.api_process = subprocess.Popen(
            [str(chalice), "local", "--stage", c.stage, "--host", "127.0.0.1",
             "--port", str(c.api_port), "--no-autoreload"],
            cwd=ROOT, env={**os.environ, **self.env}, start_new_session=True)
        persistence.record_api(c.data_dir, self.api_process.pid)
        wait_for_http(f"http://127.0.0.1:{c.api_port}/health", timeout_s=60,
                      process=self.api_process)

    def stop(self) -> None:
        if self.api_process and self.api_process.poll() is None:
            os.killpg(self.api_process.pid, signal.SIGTERM)
            try:
                self.api_process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.api_process.pid, signal.SIGKILL)
        from chalicelib import db
        if self.live:
            self.live.stop()
        db.close()
        if self.emulator:
            self.emulator.stop()
        if self.certs:
            self.certs.stop()
        if self.postgres:
            self.postgres.stop()

    def describe(self) -> str:
        c = self.config
        lines = [
            "Clipstream local stack is up:",
            f"  API              http://127.0.0.1:{c.api_port}   (try: curl -s 127.0.0.1:{c.api_port}/health)",
            f"  AWS emulator     {self.env['AWS_ENDPOINT_URL']}   (S3, Step Functions, Lambda, IAM, STS)",
            f"  bucket           s3://{c.bucket}",
            f"  state machine    {self.env['STATE_MACHINE_ARN']}",
            f"  Postgres         {self.env['DATABASE_URL']}",
            f"  Google certs     {self.env['GOOGLE_CERTS_URL']}   (make token EMAIL=you@example.com)",
            *([f"  Live updates     {self.env['LIVE_URL']}/?token=ACCESS_TOKEN   (WebSocket; README: Live updates)"]
              if self.env.get("LIVE_URL") else []),
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


def wait_for_http(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Wait until url answers (any HTTP status) or fail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


def test_config(tmp: Path | None = None) -> StackConfig:
    """A throwaway stack on free ports (what the test suite starts)."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="clipstream-test-"))
    return StackConfig(emulator_port=free_port(), api_port=free_port(), pg_port=free_port(),
                       certs_port=free_port(), live_port=free_port(), data_dir=tmp,
                       extra_env={"RATE_LIMITS": _suite_rate_limits(),
                                  # webhook deliveries retry after 1, 2, 4 ... s instead of 60, 120 ...
                                  "WEBHOOK_RETRY_INTERVAL_SECONDS": "1"})


# The suite signs in hundreds of users from one address and its fuzzer sends
# thousands of requests a minute as one user: product limits would turn those
# cases into 429s that never reach the routes. The limiter still counts every
# request; tests/api/test_ratelimit.py sets low limits to prove it refuses.
def _suite_rate_limits() -> str:
    from chalicelib.config import DEFAULT_RATE_LIMITS
    return ",".join(f"{group}=1000000/60" for group in DEFAULT_RATE_LIMITS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Clipstream local stack.")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", 8000)))
    parser.add_argument("--emulator-port", type=int, default=int(os.environ.get("EMULATOR_PORT", 4566)))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("PG_PORT", 54320)))
    parser.add_argument("--certs-port", type=int, default=int(os.environ.get("CERTS_PORT", 4580)))
    parser.add_argument("--live-port", type=int, default=int(os.environ.get("LIVE_PORT", 4510)))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ROOT / ".local")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("werkzeug", "botocore", "moto", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = StackConfig(api_port=args.api_port, emulator_port=args.emulator_port,
                         pg_port=args.pg_port, certs_port=args.certs_port, live_port=args.live_port,
                         data_dir=args.data_dir,
                         database_url=os.environ.get("DATABASE_URL") or None,
                         aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                         s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
    stack = Stack(config)
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start(api=True)
        print(stack.describe(), flush=True)
        while not stopping.is_set():
            if stack.api_process and stack.api_process.poll() is not None:
                logger.error("chalice local exited with %s", stack.api_process.returncode)
                return 1
            stopping.wait(1.0)
    finally:
        print("stopping the local stack ...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
