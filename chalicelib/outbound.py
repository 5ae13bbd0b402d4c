"""Requests to addresses a user gave us (ingest URLs, webhook endpoints), safe from SSRF.

A URL a user names could point at our own network: the metadata service
(169.254.169.254), a database on a private address, the emulator on loopback.
Every request made here therefore:

- accepts https only (http only where `OUTBOUND_ALLOW_HTTP` says so), no
  credentials in the URL, default or explicit ports alike;
- resolves the host itself and refuses it unless *every* address is public
  (not loopback, private, link-local, shared, multicast, reserved, unspecified,
  or an IPv4-mapped form of those);
- connects to the address it checked (the Host header and TLS name stay the
  host's), so a DNS answer that changes between check and connect changes
  nothing;
- follows at most `max_redirects` redirects, checking each new URL the same way;
- stops at `max_bytes` of body and `timeout_s` in all.

`OUTBOUND_ALLOW_HOSTS` names hosts (or addresses, or CIDR ranges) that may be
private anyway: a local stack's test server. It is a local setting; in AWS it
stays empty.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

MAX_URL_LENGTH = 2048
REDIRECT_CODES = (301, 302, 303, 307, 308)


class OutboundRefused(Exception):
    """The URL may not be fetched, or the fetch broke a limit; `reason` is safe to show its owner.

    `kind` says which, for callers that answer each differently: "refused" (the URL or an
    address it resolves to), "redirects", "too_large", "timeout" or "connection".
    """

    def __init__(self, reason: str, kind: str = "refused"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Policy:
    allow_http: bool = False
    allow_hosts: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls) -> "Policy":
        from chalicelib.config import get_settings

        settings = get_settings()
        return cls(allow_http=settings.outbound_allow_http, allow_hosts=settings.outbound_allow_hosts)

    def allows_private(self, host: str, address: ipaddress._BaseAddress) -> bool:
        for entry in self.allow_hosts:
            if entry == host:
                return True
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    url: str = ""
    bytes_read: int = 0
    redirects: list[str] = field(default_factory=list)


def _public(address: ipaddress._BaseAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _public(mapped)
    return address.is_global and not address.is_multicast


def check_url(url: str, policy: Policy | None = None) -> tuple[str, int, str, str]:
    """(scheme, port, host, address to connect to) for a URL we may request, or OutboundRefused."""
    policy = policy or Policy.from_settings()
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(f"the URL must be a string of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused("the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not policy.allow_http):
        raise OutboundRefused("only https URLs are accepted")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("URLs with credentials are not accepted")
    host = (parts.hostname or "").lower()
    if not host:
        raise OutboundRefused("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise OutboundRefused(f"the host {host} does not resolve", "connection") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise OutboundRefused(f"the host {host} does not resolve", "connection")
    for address in addresses:
        if not _public(address) and not policy.allows_private(host, address):
            raise OutboundRefused(f"the host {host} resolves to an address that is not public")
    return scheme, port, host, str(addresses[0])


def _pool(scheme: str, host: str, address: str, port: int, timeout_s: float):
    import urllib3  # requests' own transport; imported where an outbound call is made

    timeout = urllib3.Timeout(connect=min(timeout_s, 10.0), read=timeout_s)
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)


def request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int = 1024 * 1024,
    timeout_s: float = 10.0,
    max_redirects: int = 0,
    sink: Callable[[bytes], None] | None = None,
    policy: Policy | None = None,
) -> Response:
    """Make one request (following up to `max_redirects`), bounded in size and time.

    The body goes to `sink` chunk by chunk when given (nothing is kept), else into
    `Response.body`. Raises OutboundRefused for a refused URL or a broken limit.
    """
    import urllib3

    policy = policy or Policy.from_settings()
    deadline = time.monotonic() + timeout_s
    redirects: list[str] = []
    current = url
    while True:
        scheme, port, host, address = check_url(current, policy)
        parts = urlsplit(current)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = 443 if scheme == "https" else 80
        send = {"Host": host if port == default_port else f"{host}:{port}",
                "User-Agent": "Clipstream/1 (+outbound)", **(headers or {})}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundRefused(f"the request took longer than {timeout_s:g} s", "timeout")
        pool = _pool(scheme, host, address, port, remaining)
        try:
            reply = pool.urlopen(method, target, body=body, headers=send, redirect=False,
                                 preload_content=False, assert_same_host=False)
        except urllib3.exceptions.SSLError:
            raise OutboundRefused(f"TLS with {host} failed", "connection") from None
        except urllib3.exceptions.TimeoutError:
            raise OutboundRefused(f"the request took longer than {timeout_s:g} s", "timeout") from None
        except urllib3.exceptions.HTTPError:
            raise OutboundRefused(f"could not connect to {host}", "connection") from None
        try:
            if reply.status in REDIRECT_CODES and reply.headers.get("Location"):
                if len(redirects) >= max_redirects:
                    raise OutboundRefused(f"more than {max_redirects} redirects", "redirects")
                current = urljoin(current, reply.headers["Location"])
                redirects.append(current)
                if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                continue
            declared = reply.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise OutboundRefused(f"the response is larger than {max_bytes} bytes", "too_large")
            kept, total = [], 0
            try:
                while chunk := reply.read1(64 * 1024):   # what has arrived, so the deadline is checked often
                    total += len(chunk)
                    if total > max_bytes:
                        raise OutboundRefused(f"the response is larger than {max_bytes} bytes", "too_large")
                    if time.monotonic() > deadline:
                        raise OutboundRefused(f"the request took longer than {timeout_s:g} s", "timeout")
                    if sink is not None:
                        sink(chunk)
                    else:
                        kept.append(chunk)
            except urllib3.exceptions.TimeoutError:
                raise OutboundRefused(f"the request took longer than {timeout_s:g} s", "timeout") from None
            except urllib3.exceptions.HTTPError:
                raise OutboundRefused(f"the connection to {host} broke", "connection") from None
            return Response(status=reply.status, headers=dict(reply.headers), body=b"".join(kept),
                            url=current, bytes_read=total, redirects=redirects)
        finally:
            reply.release_conn()
            pool.close()
