"""Google sign-in on a machine that cannot reach Google.

The local stack publishes our own RSA key at a certs URL in Google's format
(`{"kid": "x509 PEM"}`, like https://www.googleapis.com/oauth2/v1/certs), and
the product's real verification code (google-auth) checks tokens against it.
`make token EMAIL=...` mints a Google-format ID token signed by that key:

    python -m infra.local.google_keys token --email someone@example.com [--name "Some One"]
        [--sub ACCOUNT_ID] [--unverified]

Each email belongs by default to a stable local account (`sub`, DevKey.sub_for);
`--sub` mints for another account, e.g. the same account after an email change.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KEY = ROOT / ".local" / "google-dev-key.pem"
LOCAL_CLIENT_ID = "clipstream-local.apps.googleusercontent.com"
ISSUER = "https://accounts.google.com"


class DevKey:
    """An RSA key with a stable key id and a self-signed certificate."""

    def __init__(self, path: Path = DEFAULT_KEY) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.path = Path(path)
        if self.path.exists():
            self.key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            self.path.chmod(0o600)
        self.private_pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        import hashlib
        self.kid = hashlib.sha256(self.public_pem).hexdigest()[:40]

    def certificate_pem(self) -> str:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clipstream-local-google")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(1)
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def certs_json(self) -> bytes:
        return json.dumps({self.kid: self.certificate_pem()}).encode()

    @staticmethod
    def sub_for(email: str) -> str:
        """The stable Google `sub` of the local account that owns an email by default."""
        import hashlib

        return "local-" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:21]

    def mint(self, email: str, name: str | None = None, *, sub: str | None = None,
             email_verified: Any = True, audience: str = LOCAL_CLIENT_ID, issuer: str = ISSUER,
             lifetime_s: int = 3600, **overrides: Any) -> str:
        """A Google-format ID token for the email, signed RS256 by this key.

        The account (`sub`) is sub_for(email) unless given: a sub of its own
        with another email is that account after an email change, another sub
        with the same email is an address that changed hands. email_verified
        None leaves the claim out; any claim set to None in overrides is left out.
        """
        import jwt

        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "azp": audience,
                  "sub": sub if sub is not None else self.sub_for(email),
                  "email": email, "email_verified": email_verified, "name": name or email.split("@")[0],
                  "picture": None, "iat": now, "exp": now + lifetime_s}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None or k == "picture"}
        return jwt.encode(claims, self.private_pem, algorithm="RS256", headers={"kid": self.kid})


class CertsServer:
    """Serves the key's certs at http://127.0.0.1:<port>/oauth2/v1/certs."""

    def __init__(self, key: DevKey, port: int) -> None:
        body = key.certs_json()
        server = self
        self.served = 0  # certs responses sent (tests check that verifiers cache them)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.split("?")[0] != "/oauth2/v1/certs":
                    self.send_response(404)
                    self.end_headers()
                    return
                server.served += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", "public, max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth2/v1/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="certs").start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    tok = sub.add_parser("token", help="print a Google-format ID token for the local stage")
    tok.add_argument("--email", required=True)
    tok.add_argument("--name")
    tok.add_argument("--sub", help="the Google account id (default: a stable one per email)")
    tok.add_argument("--unverified", action="store_true", help="email_verified false (refused by the API)")
    tok.add_argument("--key", type=Path, default=DEFAULT_KEY)
    args = parser.parse_args(argv)
    print(DevKey(args.key).mint(args.email, args.name, sub=args.sub or None,
                                email_verified=not args.unverified))
    return 0


if __name__ == "__main__":
    sys.exit(main())
