"""Custom thumbnails: an uploaded JPEG/PNG/WebP, checked and re-encoded to a safe JPEG.

The uploaded bytes are never served. They must be exactly one image of the
declared type (the magic bytes at offset 0, and the container ending where the
file ends: a JPEG with a ZIP or HTML appended, a PNG with bytes after IEND, a
WebP whose RIFF size disagrees, are polyglots and refused), within the pixel
limit *before* anything is decoded (a decompression bomb is refused from its
header), and decodable to the last pixel. What is stored is a new baseline JPEG
drawn from the decoded pixels only: no metadata, no ICC profile, no comments,
EXIF orientation applied, at most THUMB_SIDE pixels on the long side.

The `convert` step runs as its own Lambda function (the media image carries
Pillow; API functions do not), invoked by PUT /videos/{id}/thumbnail.
"""
from __future__ import annotations

import io
import logging
import struct
import warnings

from chalicelib import storage
from chalicelib.errors import ValidationError

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_BYTES = 5 * 1024 * 1024
MAX_BYTES_LABEL = "5MB"
MAX_PIXELS = 24_000_000          # e.g. 6000x4000: a phone photo
MAX_SIDE = 8192
MIN_SIDE = 16
THUMB_SIDE = 1280                # the long side of the stored JPEG
JPEG_QUALITY = 85
_BAD = "Invalid thumbnail image"


def _magic_ok(data: bytes, content_type: str) -> bool:
    if content_type == "image/jpeg":
        return data[:3] == b"\xff\xd8\xff"
    if content_type == "image/png":
        return data[:8] == b"\x89PNG\r\n\x1a\n"
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _trailing_bytes(data: bytes, content_type: str) -> int:
    """How many bytes follow the end of the image's container (0 for a clean file)."""
    if content_type == "image/png":
        pos = 8
        while pos + 12 <= len(data):
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            kind = data[pos + 4:pos + 8]
            pos += 12 + length
            if kind == b"IEND":
                return max(0, len(data) - pos)
        return 0   # truncated: the decoder refuses it
    if content_type == "image/webp":
        (size,) = struct.unpack("<I", data[4:8])
        return max(0, len(data) - (8 + size + (size & 1)))
    # JPEG: the last EOI marker ends the image; anything after it is another file.
    end = data.rfind(b"\xff\xd9")
    return len(data) - (end + 2) if end >= 0 else 0


def safe_jpeg(data: bytes, content_type: str) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) re-encoded from `data`; ValidationError with details when it is not a safe image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if content_type not in CONTENT_TYPES:
        raise ValidationError(_BAD, details=[f"content_type must be one of {', '.join(CONTENT_TYPES)}"])
    if not data:
        raise ValidationError(_BAD, details=["the file is empty"])
    if len(data) > MAX_BYTES:
        raise ValidationError(_BAD, details=[f"the file is {len(data)} bytes; at most {MAX_BYTES} are allowed"])
    if not _magic_ok(data, content_type):
        raise ValidationError(_BAD, details=[f"the file is not a {CONTENT_TYPES[content_type]} image "
                                             f"(its first bytes say otherwise)"])
    extra = _trailing_bytes(data, content_type)
    if extra and data[-extra:].strip(b"\x00"):   # zero padding after the image is harmless
        raise ValidationError(_BAD, details=[f"{extra} bytes follow the end of the image: "
                                             "a file that is also another file is refused"])
    fmt = CONTENT_TYPES[content_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size   # from the header: nothing is decoded yet
                _check_size(width, height)
                img.seek(0)   # an animated image: its first frame
                img.load()
                rgb = ImageOps.exif_transpose(img).convert("RGB")
                # Only the pixels cross over: Pillow carries comments and metadata in .info otherwise.
                pixels = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(_BAD, details=[f"the image declares far more than {MAX_PIXELS} pixels "
                                             "(a decompression bomb)"]) from None
    except UnidentifiedImageError as exc:
        raise ValidationError(_BAD, details=[f"the file is not a readable {fmt} image: {exc}"]) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ValidationError(_BAD, details=[f"the {fmt} image cannot be decoded: {exc}"]) from None
    pixels.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)   # no exif=, icc_profile=: none written
    return out.getvalue(), pixels.width, pixels.height


def _check_size(width: int, height: int) -> None:
    problems = []
    if width < MIN_SIDE or height < MIN_SIDE:
        problems.append(f"the image is {width}x{height}; each side must be at least {MIN_SIDE} pixels")
    if width > MAX_SIDE or height > MAX_SIDE:
        problems.append(f"the image is {width}x{height}; each side must be at most {MAX_SIDE} pixels")
    if width * height > MAX_PIXELS:
        problems.append(f"the image has {width * height} pixels; at most {MAX_PIXELS} are allowed")
    if problems:
        raise ValidationError(_BAD, details=problems)


def _size_of(jpeg: bytes) -> dict:
    from PIL import Image
    with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as img:
        return {"width": img.width, "height": img.height}


def convert(event: dict) -> dict:
    """The Lambda step: the upload under `upload_key` becomes a safe JPEG under `key`; the upload is removed.

    Answers {"key", "width", "height", "bytes"} or {"error", "details"} for an image it refuses;
    either way the upload is gone afterwards (a refused one is not kept, a used one not reused).
    """
    upload_key, key = event["upload_key"], event["key"]
    try:
        meta = storage.head(upload_key)
        if meta is None:
            done = storage.head(key)
            if done is not None:   # a repeated call (the API's retry after a timeout): the same answer
                return {"key": key, **_size_of(storage.read_bytes(key)), "bytes": done["ContentLength"]}
            return {"error": "Thumbnail upload not found", "missing": True,
                    "details": ["no upload arrived for this upload_id"]}
        # The presigned PUT signed the content type, so storage holds the one the API accepted.
        content_type = (meta.get("ContentType") or "").split(";")[0].strip().lower()
        if meta["ContentLength"] > MAX_BYTES:   # the presigned PUT binds the size; never read a bigger one
            return {"error": _BAD, "details": [f"the file is {meta['ContentLength']} bytes; at most "
                                               f"{MAX_BYTES} are allowed"]}
        try:
            jpeg, width, height = safe_jpeg(storage.read_bytes(upload_key), content_type)
        except ValidationError as exc:
            logger.info("custom thumbnail refused: %s", exc.details)
            return {"error": exc.message, "details": exc.details}
        storage.put_bytes(key, jpeg, "image/jpeg")
        return {"key": key, "width": width, "height": height, "bytes": len(jpeg)}
    finally:
        storage.delete(upload_key)
