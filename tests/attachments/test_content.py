"""What FleetOS makes of a file, by its content: the libraries' behaviour it relies on, checked.

- filetype names JPEG, PNG, WebP, PDF and the ``heic`` brand, but not ``heix`` or
  ``mif1`` HEIF files (some Android phones): pillow-heif's brand check covers those.
- Pillow only *warns* (DecompressionBombWarning) between MAX_IMAGE_PIXELS and twice
  that, and raises above: FleetOS refuses both, whatever the warning filters say.
"""

from __future__ import annotations

import io
import struct
import warnings

import pytest
from PIL import Image

from fleetos.attachments.content import (
    HEIC,
    IncomingFile,
    Unacceptable,
    clean,
    kind_of,
    size_label,
)
from tests.support import files

MAX = 10_000_000


def take(data: bytes, name: str = "file") -> object:
    return clean(IncomingFile(name, data), max_bytes=MAX)


def with_brand(heic: bytes, brand: bytes) -> bytes:
    """The same HEIC with another major brand in its ftyp box."""
    assert heic[4:8] == b"ftyp"
    return heic[:8] + brand + heic[12:]


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"mif1"])
def test_heif_of_any_common_brand_becomes_a_jpeg(brand):
    data = with_brand(files.heic(), brand)
    assert kind_of(data) is HEIC
    cleaned = take(data, "IMG_7.HEIC")
    assert cleaned.content_type == "image/jpeg" and cleaned.name == "IMG_7.jpg"
    assert files.read_image(cleaned.data).format == "JPEG"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (files.image("GIF"), "GIF is not on the list"),
        (files.image("BMP"), "BMP is not on the list"),
        (files.image("TIFF"), "TIFF is not on the list"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (files.HTML, "HTML"),
        (b"PK\x03\x04" + b"\0" * 100, "a ZIP (or a .docx)"),
        (b"MZ\x90\x00" + b"\0" * 100, "a Windows program"),
    ],
)
def test_anything_else_is_refused_naming_the_file(data, why):
    with pytest.raises(Unacceptable, match=r"^report\.jpg is not a photo"):
        take(data, "report.jpg")


def test_avif_is_refused_though_pillow_could_open_it():
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "AVIF")
    with pytest.raises(Unacceptable, match="is not a photo"):
        take(out.getvalue(), "a.avif")


def test_a_jpeg_named_pdf_is_kept_as_the_jpeg_it_is():
    cleaned = take(files.phone_jpeg(), "invoice.pdf")
    assert cleaned.content_type == "image/jpeg" and cleaned.name == "invoice.pdf.jpg"


def test_a_damaged_image_is_refused_as_damaged():
    broken = files.phone_jpeg()[:200]
    with pytest.raises(Unacceptable, match="could not be read as a JPEG photo"):
        take(broken, "cut.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_no_metadata_survives_in_any_format(fmt):
    exif = Image.Exif()
    exif[0xA431] = files.SERIAL
    exif[0x8825] = files.GPS
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(out, fmt, exif=exif.tobytes())
    assert files.SERIAL.encode() in out.getvalue()
    cleaned = take(out.getvalue())
    assert files.SERIAL.encode() not in cleaned.data
    assert dict(files.read_image(cleaned.data).getexif()) == {}


def test_transparency_is_kept_in_a_png_and_laid_on_white_in_its_thumbnail():
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(out, "PNG")
    cleaned = take(out.getvalue())
    assert files.read_image(cleaned.data).getpixel((0, 0))[3] == 0
    assert files.read_image(cleaned.thumbnail).getpixel((0, 0)) == pytest.approx(
        (255, 255, 255), abs=3
    )


def test_a_cmyk_jpeg_stays_a_jpeg():
    cleaned = take(files.image("JPEG", mode="CMYK"))
    assert files.read_image(cleaned.data).mode == "CMYK"
    assert files.read_image(cleaned.thumbnail).mode == "RGB"


def test_an_animation_keeps_its_first_frame():
    out = io.BytesIO()
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "blue")]
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    image = files.read_image(take(out.getvalue()).data)
    assert not getattr(image, "is_animated", False)
    assert image.convert("RGB").getpixel((5, 5)) == pytest.approx((255, 0, 0), abs=6)


@pytest.mark.parametrize("times", [1.1, 2.1])
def test_bombs_are_refused_even_where_warnings_are_ignored(times):
    """Production does not turn warnings into errors (the test suite does): FleetOS's own
    check must refuse the band where Pillow only warns."""
    data = files.bomb(int(Image.MAX_IMAGE_PIXELS * times))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Unacceptable, match="too many pixels"):
            take(data, "bomb.png")


def test_a_heic_claiming_huge_dimensions_is_refused():
    data = bytearray(files.heic())
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", 100_000, 100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Unacceptable, match=r"^huge\.heic "):
            take(bytes(data), "huge.heic")


def test_sizes_read_as_people_say_them():
    assert [size_label(n) for n in (12, 820_000, 14_200_000, 15_000_000)] == [
        "12 bytes",
        "820 KB",
        "14.2 MB",
        "15 MB",
    ]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_damaged_files_are_refused_never_a_crash(fmt):
    """Random bytes changed in a real image: each try is kept clean or refused, nothing else."""
    import contextlib
    import random

    original = files.image(fmt, 48, 32)
    rng = random.Random(16)  # the same damage every run
    for _ in range(150):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(12, len(damaged))] = rng.randrange(256)
        with contextlib.suppress(Unacceptable):
            take(bytes(damaged), "damaged")
