"""Files to attach, made here with Pillow and pillow-heif: real images a phone could send
(EXIF with a GPS position and a camera serial, rotated), and the hostile ones (bombs,
polyglots, things that are not what their names say)."""

from __future__ import annotations

import io
from datetime import datetime

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

SERIAL = "CAM-SERIAL-0042417"
CAMERA = "FleetCam 3000"
GPS = {1: "N", 2: (51.0, 30.0, 26.0), 3: "W", 4: (0.0, 7.0, 39.0)}  # where the depot is
ORIENTATION_ROTATE_90 = 6  # "turn it 90 degrees clockwise to show it"


def phone_jpeg(width: int = 64, height: int = 48, colour: str = "red") -> bytes:
    """A JPEG as a phone takes it: EXIF with GPS, make, serial, and the orientation flag."""
    exif = Image.Exif()
    exif[0x0112] = ORIENTATION_ROTATE_90
    exif[0x010F] = CAMERA
    exif[0xA431] = SERIAL  # BodySerialNumber
    exif[0x8825] = GPS
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def image(fmt: str, width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "blue").save(out, fmt)
    return out.getvalue()


def heic(width: int = 64, height: int = 48) -> bytes:
    return image("HEIF", width, height)


def pdf(text: str = "Invoice 1042") -> bytes:
    """A small valid PDF (one empty page and a title), the same bytes every time."""
    out = io.BytesIO()
    fixed = datetime(2026, 12, 1, 9, 30).timetuple()
    Image.new("RGB", (10, 10), "white").save(
        out, "PDF", title=text, creationDate=fixed, modDate=fixed
    )
    return out.getvalue()


def bomb(pixels: int) -> bytes:
    """A tiny PNG (a few KB) that decodes to ``pixels`` one-bit pixels."""
    side = int(pixels**0.5) + 1
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG", optimize=True)
    return out.getvalue()


HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def jpeg_with_html_appended() -> bytes:
    """A polyglot: a valid JPEG that also carries a page after its end."""
    return phone_jpeg() + HTML


def pdf_that_is_html() -> bytes:
    """A polyglot: starts like a PDF, and a browser sniffing it would find a page."""
    return b"%PDF-1.4\n" + HTML + b"\n%%EOF\n"


def read_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))
