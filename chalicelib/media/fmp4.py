"""Just enough of ISO BMFF (fragmented MP4) to put a chunk's segments on the whole clip's timeline.

A chunk of the ladder is muxed by FFmpeg on its own, so its fragments count
their decode times (tfdt) and sequence numbers (mfhd) from zero. fragment
timing is a fixed-width field, so moving a fragment later on the timeline is
an in-place rewrite: no sizes or offsets change. tracks() reads the init
segment (track id -> handler and timescale) so offsets are given per kind.
"""
from __future__ import annotations

import struct
from pathlib import Path

from chalicelib.media.errors import MediaError


def _boxes(data: bytes | bytearray, start: int = 0, end: int | None = None):
    """(type, offset, header size, box size) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise MediaError(f"broken MP4 box {kind!r} at {at}")
        yield kind.decode("latin-1"), at, header, size
        at += size


def _child(data, parent: tuple, kind: str):
    _, at, header, size = parent
    return next((b for b in _boxes(data, at + header, at + size) if b[0] == kind), None)


def tracks(init: bytes) -> dict[int, tuple[str, int]]:
    """track id -> (handler type "vide"/"soun", media timescale) from an init segment."""
    out = {}
    for moov in (b for b in _boxes(init) if b[0] == "moov"):
        for trak in (b for b in _boxes(init, moov[1] + moov[2], moov[1] + moov[3]) if b[0] == "trak"):
            tkhd, mdia = _child(init, trak, "tkhd"), _child(init, trak, "mdia")
            mdhd = _child(init, mdia, "mdhd") if mdia else None
            hdlr = _child(init, mdia, "hdlr") if mdia else None
            if not (tkhd and mdhd and hdlr):
                raise MediaError("an init segment's track lacks tkhd/mdhd/hdlr")
            body = tkhd[1] + tkhd[2]
            track_id = struct.unpack_from(">I", init, body + (20 if init[body] == 1 else 12))[0]
            body = mdhd[1] + mdhd[2]
            timescale = struct.unpack_from(">I", init, body + (20 if init[body] == 1 else 12))[0]
            handler = init[hdlr[1] + hdlr[2] + 8:hdlr[1] + hdlr[2] + 12].decode("latin-1")
            out[track_id] = (handler, timescale)
    if not out:
        raise MediaError("no tracks in the init segment")
    return out


def shift_fragments(path: Path, offsets: dict[int, int], sequence_offset: int) -> list[dict[int, int]]:
    """Add offsets[track id] to every fragment's tfdt and sequence_offset to its mfhd, in place.

    Returns each fragment's new {track id: tfdt}. FFmpeg writes 64-bit tfdt;
    a 32-bit one that would overflow is an error rather than a silent wrap.
    """
    data = bytearray(path.read_bytes())
    out = []
    for moof in (b for b in _boxes(data) if b[0] == "moof"):
        mfhd = _child(data, moof, "mfhd")
        if mfhd is None:
            raise MediaError(f"{path.name}: a fragment without mfhd")
        at = mfhd[1] + mfhd[2] + 4
        struct.pack_into(">I", data, at, struct.unpack_from(">I", data, at)[0] + sequence_offset)
        times = {}
        for traf in (b for b in _boxes(data, moof[1] + moof[2], moof[1] + moof[3]) if b[0] == "traf"):
            tfhd, tfdt = _child(data, traf, "tfhd"), _child(data, traf, "tfdt")
            if tfhd is None or tfdt is None:
                raise MediaError(f"{path.name}: a track fragment without tfhd/tfdt")
            track_id = struct.unpack_from(">I", data, tfhd[1] + tfhd[2] + 4)[0]
            if track_id not in offsets:
                raise MediaError(f"{path.name}: track {track_id} is not in the init segment")
            body = tfdt[1] + tfdt[2]
            fmt = ">Q" if data[body] == 1 else ">I"
            value = struct.unpack_from(fmt, data, body + 4)[0] + offsets[track_id]
            if fmt == ">I" and value >= 2 ** 32:
                raise MediaError(f"{path.name}: a 32-bit decode time would overflow")
            struct.pack_into(fmt, data, body + 4, value)
            times[track_id] = value
        out.append(times)
    if not out:
        raise MediaError(f"{path.name} holds no fragment")
    path.write_bytes(bytes(data))
    return out
