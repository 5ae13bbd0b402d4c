"""chalicelib.outbound: requests to user-given URLs refuse our own network (SSRF) and hold their limits."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from chalicelib.outbound import OutboundRefused, Policy, check_url, request

STRICT = Policy()                                              # what AWS runs with
LOCAL = Policy(allow_http=True, allow_hosts=("127.0.0.1",))    # a test server on loopback


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path
        if path.startswith("/redirect-to?"):
            self.send_response(302)
            self.send_header("Location", path.split("?", 1)[1])
            self.end_headers()
        elif path.startswith("/loop"):
            n = int(path[len("/loop"):] or 0)
            self.send_response(302)
            self.send_header("Location", f"/loop{n + 1}")
            self.end_headers()
        elif path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(10_000))
            self.end_headers()
            self.wfile.write(b"x" * 10_000)
        elif path == "/big-undeclared":
            self.send_response(200)
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"y" * 1000)
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.3)
        else:
            body = f"hello {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.attack
@pytest.mark.parametrize("url", [
    "https://127.0.0.1/",
    "https://localhost/",
    "https://10.0.0.5/",
    "https://172.16.3.4/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",    # the instance metadata service
    "https://[fd00:ec2::254]/",                      # its IPv6 address
    "https://100.64.0.1/",                           # shared address space
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",                   # loopback, IPv4-mapped
    "https://2130706433/",                           # 127.0.0.1 as one decimal number
    "https://0x7f.1/",                               # and in hex shorthand
    "https://224.0.0.1/",
])
def test_private_and_special_addresses_are_refused(url):
    with pytest.raises(OutboundRefused, match="not public|does not resolve"):
        check_url(url, STRICT)


@pytest.mark.attack
@pytest.mark.parametrize("url, reason", [
    ("http://example.com/", "only https"),
    ("file:///etc/passwd", "only https"),
    ("gopher://example.com/", "only https"),
    ("https://user:pw@example.com/", "credentials"),
    ("https://example.com:99999/", "not valid"),
    ("https:///nohost", "no host"),
    ("https://no-such-host.invalid/", "does not resolve"),
    ("https://example.com/" + "a" * 3000, "at most"),
    ("", "at most"),
])
def test_malformed_urls_are_refused(url, reason):
    with pytest.raises(OutboundRefused, match=reason):
        check_url(url, STRICT)


def test_a_public_address_passes():
    assert check_url("https://8.8.8.8/x", STRICT) == ("https", 443, "8.8.8.8", "8.8.8.8")


def test_the_allow_list_opens_a_named_private_host_only(server):
    port = int(server.rsplit(":", 1)[1])
    assert check_url(f"{server}/x", LOCAL)[3] == "127.0.0.1"
    with pytest.raises(OutboundRefused, match="not public"):
        check_url(f"http://10.1.2.3:{port}/x", LOCAL)
    with pytest.raises(OutboundRefused, match="only https"):
        check_url(f"{server}/x", Policy(allow_hosts=("127.0.0.1",)))


def test_get_and_post_through_the_checked_address(server):
    port = server.rsplit(":", 1)[1]
    got = request(f"{server}/hello", policy=LOCAL)
    assert (got.status, got.body) == (200, f"hello 127.0.0.1:{port}".encode())
    posted = request(f"{server}/echo", method="POST", body=b'{"a":1}', policy=LOCAL)
    assert posted.body == b'{"a":1}'


def test_the_body_can_stream_to_a_sink(server):
    seen = []
    got = request(f"{server}/big", max_bytes=20_000, sink=seen.append, policy=LOCAL)
    assert got.body == b"" and got.bytes_read == 10_000 and b"".join(seen) == b"x" * 10_000


@pytest.mark.attack
def test_a_redirect_into_the_private_network_is_refused(server):
    with pytest.raises(OutboundRefused, match="not public"):
        request(f"{server}/redirect-to?http://169.254.169.254/latest/meta-data/", max_redirects=3, policy=LOCAL)
    with pytest.raises(OutboundRefused, match="more than 0 redirects"):
        request(f"{server}/redirect-to?{server}/hello", policy=LOCAL)
    ok = request(f"{server}/redirect-to?{server}/hello", max_redirects=1, policy=LOCAL)
    assert ok.status == 200 and ok.redirects == [f"{server}/hello"]


@pytest.mark.attack
def test_redirect_loops_stop(server):
    with pytest.raises(OutboundRefused, match="more than 3 redirects"):
        request(f"{server}/loop0", max_redirects=3, policy=LOCAL)


@pytest.mark.attack
@pytest.mark.parametrize("path", ["/big", "/big-undeclared"])
def test_bodies_over_the_cap_are_refused(server, path):
    with pytest.raises(OutboundRefused, match="larger than 5000 bytes"):
        request(f"{server}{path}", max_bytes=5000, policy=LOCAL)


@pytest.mark.attack
def test_a_slow_server_hits_the_time_cap(server):
    started = time.monotonic()
    with pytest.raises(OutboundRefused, match="longer than 1 s"):
        request(f"{server}/slow", timeout_s=1.0, policy=LOCAL)
    assert time.monotonic() - started < 2.5
