"""Custom thumbnails: what safe_jpeg accepts, what it refuses (with details), and what it writes."""
from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from chalicelib.errors import ValidationError
from chalicelib.media import custom_thumbnail as ct


def image_bytes(fmt: str, size=(320, 180), color=(200, 30, 30), **save) -> bytes:
    out = io.BytesIO()
    img = Image.new("RGB", size, color)
    img.paste((10, 200, 10), (0, 0, size[0] // 2, size[1] // 2))   # a corner to find after a rotation
    img.save(out, fmt, **save)
    return out.getvalue()


def refused(data: bytes, content_type: str) -> list[str]:
    with pytest.raises(ValidationError) as err:
        ct.safe_jpeg(data, content_type)
    assert err.value.status == 400 and err.value.message == "Invalid thumbnail image"
    assert err.value.details
    return err.value.details


@pytest.mark.parametrize("fmt,content_type", [("JPEG", "image/jpeg"), ("PNG", "image/png"),
                                              ("WEBP", "image/webp")])
def test_each_accepted_format_becomes_a_plain_jpeg(fmt, content_type):
    jpeg, width, height = ct.safe_jpeg(image_bytes(fmt), content_type)
    with Image.open(io.BytesIO(jpeg)) as out:
        assert out.format == "JPEG" and out.size == (width, height) == (320, 180)
        assert out.mode == "RGB"
        assert not out.info.get("exif") and not out.info.get("icc_profile") and "comment" not in out.info
        r, g, b = out.getpixel((300, 170))
        assert r > 150 and g < 80   # the pixels survived


def test_metadata_is_dropped_and_the_orientation_applied():
    exif = Image.Exif()
    exif[0x0112] = 6          # rotate 90° clockwise to display
    exif[0x010F] = "SecretCam GPS 51.5N"
    data = image_bytes("JPEG", size=(400, 200), exif=exif.tobytes(), comment=b"<script>alert(1)</script>")
    jpeg, width, height = ct.safe_jpeg(data, "image/jpeg")
    assert (width, height) == (200, 400)
    assert b"SecretCam" not in jpeg and b"<script>" not in jpeg


def test_large_images_are_scaled_to_the_thumbnail_side():
    jpeg, width, height = ct.safe_jpeg(image_bytes("PNG", size=(4000, 2000)), "image/png")
    assert (width, height) == (ct.THUMB_SIDE, ct.THUMB_SIDE // 2)


def test_not_an_image_and_svg_are_refused():
    assert "not a PNG image" in refused(b"hello, this is text" * 10, "image/png")[0]
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert "not a JPEG image" in refused(svg, "image/jpeg")[0]
    assert "content_type must be one of" in refused(svg, "image/svg+xml")[0]
    assert "empty" in refused(b"", "image/png")[0]


def test_a_file_of_another_type_than_declared_is_refused():
    assert "not a WEBP image" in refused(image_bytes("PNG"), "image/webp")[0]
    assert "not a JPEG image" in refused(image_bytes("WEBP"), "image/jpeg")[0]


@pytest.mark.parametrize("fmt,content_type", [("JPEG", "image/jpeg"), ("PNG", "image/png"),
                                              ("WEBP", "image/webp")])
def test_polyglots_are_refused(fmt, content_type):
    """An image that is also a ZIP (or HTML) after its end: a classic way to smuggle content."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.html", "<script>alert(document.cookie)</script>")
    details = refused(image_bytes(fmt) + archive.getvalue(), content_type)
    assert "bytes follow the end of the image" in details[0]
    assert "follow the end" in refused(image_bytes(fmt) + b"<html><script>x()</script></html>", content_type)[0]


def test_zero_padding_after_the_image_is_accepted():
    jpeg, _, _ = ct.safe_jpeg(image_bytes("JPEG") + b"\x00" * 64, "image/jpeg")
    assert jpeg[:3] == b"\xff\xd8\xff"


def test_a_decompression_bomb_is_refused_from_its_header():
    """A 1-bit 20000x20000 PNG is ~60 KB but 400 M pixels: refused before a pixel is decoded."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG", optimize=True)
    data = out.getvalue()
    assert len(data) < ct.MAX_BYTES
    assert refused(data, "image/png") == [f"the image declares far more than {ct.MAX_PIXELS} pixels "
                                          "(a decompression bomb)"]
    out = io.BytesIO()
    Image.new("1", (9000, 100)).save(out, "PNG")
    assert refused(out.getvalue(), "image/png") == ["the image is 9000x100; each side must be at most 8192 pixels"]


def test_too_many_pixels_within_the_side_limit_is_refused():
    out = io.BytesIO()
    Image.new("L", (6000, 6000)).save(out, "PNG", optimize=True)
    assert refused(out.getvalue(), "image/png") == [
        f"the image has 36000000 pixels; at most {ct.MAX_PIXELS} are allowed"]


def test_over_size_files_and_tiny_images_are_refused():
    assert f"at most {ct.MAX_BYTES}" in refused(b"\xff\xd8\xff" + b"\x00" * ct.MAX_BYTES, "image/jpeg")[0]
    assert "at least 16 pixels" in refused(image_bytes("PNG", size=(8, 8)), "image/png")[0]


def test_truncated_and_corrupt_images_are_refused():
    png = image_bytes("PNG", size=(640, 480))
    assert "cannot be decoded" in refused(png[: len(png) // 2], "image/png")[0]
    jpeg = bytearray(image_bytes("JPEG", size=(640, 480)))
    jpeg[200:600] = b"\xff" * 400
    refused(bytes(jpeg), "image/jpeg")
