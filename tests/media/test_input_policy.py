"""FFmpeg reads files, nothing else: hostile "videos" that are playlists, concat lists or SDP
files cannot make FFmpeg open a URL or another local file, through any media function.

A local HTTP server stands in for the host an attacker names; every test asserts it saw no
request, and that /etc/passwd never appears in anything FFmpeg returned.
"""
from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from chalicelib.media import fingerprint, hls, probe as probe_mod, thumbnails
from chalicelib.media.errors import InvalidMediaError, MediaError
from chalicelib.media.ffmpeg import (GENERATED, UPLOADED_FILE, UPLOADED_URL, run_ffmpeg,
                                     upload_policy)
from chalicelib.media.probe import MediaInfo, probe
from chalicelib.moments import analysis, clips as moment_clips
from tests.media import clips

pytestmark = pytest.mark.attack  # hostile callers: counted in bench/results/reliability.json

PASSWD_MARK = "root:x:0:0"
NOT_ACCEPTED = "not MP4/MOV, AVI, Matroska or WebM"


class _Recorder(http.server.ThreadingHTTPServer):
    """Serves files from `routes` (path -> bytes) and records every request line."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.routes: dict[str, bytes] = {}
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(self.path)
        body = self.server.routes.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        # The playlist MIME type, as storage would send for an object uploaded with it.
        self.send_header("Content-Type", "application/vnd.apple.mpegurl"
                         if body.startswith(b"#EXTM3U") else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server():
    srv = _Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _hostile(folder: Path, base: str, name: str) -> Path:
    targets = [f"{base}/stolen.ts", "file:///etc/passwd", "/etc/passwd"]
    if name == "playlist":
        return clips.hls_playlist(folder / "playlist.mp4", targets)
    if name == "playlist.m3u8":
        return clips.hls_playlist(folder / "playlist.m3u8", targets)
    if name == "concat":
        return clips.concat_list(folder / "concat.mp4", targets)
    return clips.sdp_session(folder / "session.mp4", 5004)


HOSTILE = {"playlist": "an HLS playlist", "playlist.m3u8": "an HLS playlist",
           "concat": "a concat list", "sdp": "an SDP session description"}
FAKE_INFO = MediaInfo(duration_s=4.0, width=320, height=180, fps=30.0, video_codec="h264",
                      audio_codec="aac", has_video=True, has_audio=True, size_bytes=1000,
                      format_name="mov,mp4,m4a,3gp,3g2,mj2", bitrate=None)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_probe_refuses_by_name_and_opens_nothing(name: str, server: _Recorder,
                                                 tmp_path: Path) -> None:
    path = _hostile(tmp_path, server.base, name)
    with pytest.raises(InvalidMediaError) as err:
        probe(path)
    assert err.value.reason == f"not a video file: {HOSTILE[name]}, {NOT_ACCEPTED}"
    assert server.requests == []


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_media_function_refuses_and_opens_nothing(name: str, server: _Recorder,
                                                        tmp_path: Path) -> None:
    """Even past the probe (a caller that skipped it), each FFmpeg run refuses the input."""
    path = _hostile(tmp_path, server.base, name)
    runs = {
        "decode check": lambda: probe_mod.verify_decodable(path, duration_s=4.0, timeout_s=20),
        "thumbnail": lambda: thumbnails.representative_frame(path, FAKE_INFO, tmp_path / "t.jpg",
                                                             timeout_s=20),
        "video signature": lambda: fingerprint.video_signature(path, FAKE_INFO, timeout_s=20),
        "hls ladder": lambda: hls.transcode_hls(path, tmp_path / "hls", FAKE_INFO, timeout_s=20),
        "moments analysis": lambda: analysis.analyse(str(path), has_audio=True, duration=4.0,
                                                     timeout_s=20),
        "moment cut": lambda: moment_clips.cut(str(path), tmp_path / "cut.mp4", 0.0, 1.0, 30.0,
                                               timeout_s=20),
    }
    for what, run in runs.items():
        with pytest.raises(MediaError) as err:
            run()
        assert PASSWD_MARK not in err.value.reason, what
    assert server.requests == []
    assert not any(PASSWD_MARK in p.read_text(errors="replace")
                   for p in tmp_path.rglob("*") if p.is_file() and p != path)


def test_a_playlist_url_is_followed_without_the_policy_and_not_with_it(server: _Recorder,
                                                                       tmp_path: Path) -> None:
    """The control (this server does see FFmpeg's requests when nothing stops them), then the
    URL policy the moments steps use: one request for the input itself, none for its targets."""
    # Only the http target: FFmpeg's own HLS checks drop a playlist that names file:// segments.
    playlist = clips.hls_playlist(tmp_path / "evil.m3u8", [f"{server.base}/stolen.ts"])
    server.routes["/raw/evil.m3u8"] = playlist.read_bytes()
    url = f"{server.base}/raw/evil.m3u8?X-Amz-Signature=x"
    run_ffmpeg(["-i", url, "-f", "null", "-"], timeout_s=20, check=False, inputs=GENERATED)
    assert "/stolen.ts" in server.requests
    server.requests.clear()
    result = run_ffmpeg(["-i", url, "-f", "null", "-"], timeout_s=20, check=False,
                        inputs=UPLOADED_URL)
    assert result.returncode != 0 and "not on whitelist" in result.stderr
    assert [p.split("?")[0] for p in server.requests] == ["/raw/evil.m3u8"]


def test_a_caller_cannot_widen_the_policy_with_its_own_options(server: _Recorder,
                                                                tmp_path: Path) -> None:
    path = _hostile(tmp_path, server.base, "playlist.m3u8")
    result = run_ffmpeg(["-protocol_whitelist", "file,http,tcp", "-format_whitelist", "hls",
                         "-f", "hls", "-i", str(path), "-f", "null", "-"], timeout_s=20,
                        check=False)
    assert result.returncode != 0 and "not on whitelist" in result.stderr
    assert server.requests == []


def test_an_upload_policy_input_cannot_be_a_url(server: _Recorder, tmp_path: Path) -> None:
    clip = clips.make_clip(tmp_path / "ok.mp4", duration=1.0, audio=False,
                           extra=("-movflags", "+faststart"))
    server.routes["/ok.mp4"] = clip.read_bytes()
    with pytest.raises(MediaError):
        run_ffmpeg(["-i", f"{server.base}/ok.mp4", "-f", "null", "-"], timeout_s=20)
    assert server.requests == []


def test_a_url_policy_input_must_be_a_url(tmp_path: Path) -> None:
    clip = clips.make_clip(tmp_path / "ok.mp4", duration=1.0, audio=False)
    with pytest.raises(MediaError, match="must be a URL"):
        run_ffmpeg(["-i", str(clip), "-f", "null", "-"], timeout_s=20, inputs=UPLOADED_URL)
    with pytest.raises(MediaError, match="must be a URL"):
        run_ffmpeg(["-i", "file:///etc/passwd", "-f", "null", "-"], timeout_s=20,
                   inputs=UPLOADED_URL)


def test_a_presigned_url_reads_the_upload_and_nothing_it_names(server: _Recorder,
                                                                tmp_path: Path) -> None:
    """The moments steps read the upload by URL: a real clip works, a playlist behind the URL
    is refused after one request (for itself), and none of its targets is fetched."""
    clip = clips.make_clip(tmp_path / "ok.mp4", duration=2.0, extra=("-movflags", "+faststart"))
    server.routes["/raw/ok.mp4"] = clip.read_bytes()
    measured = analysis.analyse(f"{server.base}/raw/ok.mp4?X-Amz-Signature=x", has_audio=True,
                                duration=2.0, timeout_s=30)
    assert measured.duration == pytest.approx(2.0, abs=0.1) and measured.keyframes
    server.requests.clear()

    server.routes["/raw/evil.mp4"] = _hostile(tmp_path, server.base, "playlist").read_bytes()
    with pytest.raises(MediaError) as err:
        analysis.analyse(f"{server.base}/raw/evil.mp4?X-Amz-Signature=x", has_audio=True,
                         duration=4.0, timeout_s=20)
    assert "Last message" not in err.value.reason
    assert {p.split("?")[0] for p in server.requests} == {"/raw/evil.mp4"}


def test_upload_policy_picks_by_source() -> None:
    assert upload_policy("https://bucket.example/raw.mp4?sig") is UPLOADED_URL
    assert upload_policy("/tmp/raw.mp4") is UPLOADED_FILE


@pytest.mark.parametrize("suffix", ["mp4", "mov", "avi", "mkv", "webm"])
def test_the_accepted_containers_still_probe_and_decode(suffix: str, tmp_path: Path) -> None:
    vcodec = {"webm": "libvpx-vp9", "avi": "mpeg4"}.get(suffix, "libx264")
    clip = clips.make_clip(tmp_path / f"ok.{suffix}", duration=2.0, vcodec=vcodec)
    info = probe(clip)
    probe_mod.check_limits(info)
    probe_mod.verify_decodable(clip, duration_s=info.duration_s)
    assert info.has_video and info.has_audio
