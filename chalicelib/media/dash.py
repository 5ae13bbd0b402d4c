"""A DASH MPD over the HLS ladder's own fMP4 (CMAF) segments: no second encode, no second copy.

The transcode writes `manifest.mpd` beside `master.m3u8`. It names the same init
and media segments as the HLS playlists (relative URIs, like them), one
Representation per rendition in one video AdaptationSet (the segments carry the
rendition's AAC track too, as in HLS), with a SegmentList whose SegmentTimeline
comes from the playlists' durations. A SegmentList rather than a SegmentTemplate
because the API serves the manifest with every segment URI presigned (private
bucket), and presigned URLs cannot be derived from a template.
"""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from chalicelib.media.hls import HlsResult, parse_media_playlist

MPD_NAME = "manifest.mpd"
TIMESCALE = 1000  # milliseconds: EXTINF durations are written to the microsecond, players need no finer


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _timeline(durations: list[float]) -> list[str]:
    """<S> elements, runs of equal durations folded with @r; cumulative rounding keeps no drift."""
    starts, t = [], 0.0
    for d in durations:
        starts.append(round(t * TIMESCALE))
        t += d
    ends = starts[1:] + [round(t * TIMESCALE)]
    ticks = [e - s for s, e in zip(starts, ends, strict=True)]
    out: list[str] = []
    i = 0
    while i < len(ticks):
        j = i
        while j + 1 < len(ticks) and ticks[j + 1] == ticks[i]:
            j += 1
        attrs = f't="{starts[i]}" ' if i == 0 else ""
        repeat = f' r="{j - i}"' if j > i else ""
        out.append(f'<S {attrs}d="{ticks[i]}"{repeat}/>')
        i = j + 1
    return out


def build_mpd(out_dir: str | Path, result: HlsResult, *, captions: str | None = None,
              language: str = "en") -> str:
    """The MPD text for the renditions in `result` (playlists read from `out_dir`).

    `captions`: the relative URI of a WebVTT file to add as a subtitles AdaptationSet.
    """
    out_dir = Path(out_dir)
    renditions = sorted(result.renditions, key=lambda r: r.bandwidth)
    max_w = max(r.width for r in renditions)
    max_h = max(r.height for r in renditions)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"'
             ' profiles="urn:mpeg:dash:profile:isoff-on-demand:2011,urn:mpeg:dash:profile:isoff-main:2011"'
             f' mediaPresentationDuration="{_iso_duration(result.duration_s)}"'
             f' minBufferTime="PT2S">',
             '  <Period id="0" start="PT0S">',
             '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4"'
             ' segmentAlignment="true" startWithSAP="1"'
             f' maxWidth="{max_w}" maxHeight="{max_h}">']
    for r in renditions:
        init, segments = parse_media_playlist((out_dir / r.playlist).read_text())
        lines.append(f'      <Representation id={quoteattr(r.name)} bandwidth="{r.bandwidth}"'
                     f' width="{r.width}" height="{r.height}" frameRate="{_frame_rate(r.frame_rate)}"'
                     f' codecs={quoteattr(r.codecs)} sar="1:1">')
        lines.append(f'        <SegmentList timescale="{TIMESCALE}">')
        lines.append(f'          <Initialization sourceURL={quoteattr(init)}/>')
        lines.append("          <SegmentTimeline>")
        lines += [f"            {s}" for s in _timeline([d for d, _ in segments])]
        lines.append("          </SegmentTimeline>")
        lines += [f"          <SegmentURL media={quoteattr(uri)}/>" for _, uri in segments]
        lines.append("        </SegmentList>")
        lines.append("      </Representation>")
    lines.append("    </AdaptationSet>")
    body = "\n".join(lines) + "\n"
    if captions:
        body += captions_adaptation_set(captions, language)
    return body + "  </Period>\n</MPD>\n"


def captions_adaptation_set(url: str, language: str = "en") -> str:
    """A subtitles AdaptationSet of one WebVTT file at `url` (lines ending in a newline)."""
    return "\n".join([
        f'    <AdaptationSet id="1" contentType="text" mimeType="text/vtt" lang={quoteattr(language)}>',
        '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>',
        '      <Representation id="captions" bandwidth="256">',
        f"        <BaseURL>{escape(url)}</BaseURL>",
        "      </Representation>",
        "    </AdaptationSet>"]) + "\n"


def write_mpd(out_dir: str | Path, result: HlsResult) -> str:
    """Write MPD_NAME into `out_dir`; its name relative to `out_dir`."""
    (Path(out_dir) / MPD_NAME).write_text(build_mpd(out_dir, result))
    return MPD_NAME


def _frame_rate(fps: float) -> str:
    for ntsc in (24, 30, 60):
        if abs(fps - ntsc * 1000 / 1001) < 0.01:
            return f"{ntsc * 1000}/1001"
    return str(int(fps)) if float(fps).is_integer() else f"{round(fps * 1000)}/1000"
