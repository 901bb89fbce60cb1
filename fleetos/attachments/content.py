"""What a file is, decided by its content, and a copy of it that is safe to show.

A file's name and the type a browser or a mail client claims say nothing we can
trust: ``filetype`` reads the first bytes (and pillow-heif the HEIF brands that
``filetype`` does not know, such as ``heix`` from some Android phones). Only
JPEG, PNG, WebP, HEIC and PDF are taken.

Images are decoded and encoded again by Pillow: what comes out is pixels and
nothing else (no EXIF, so no GPS position or camera serial; no XMP, no
comments, nothing appended after the image, so no polyglot survives), turned
the right way up, and HEIC becomes JPEG, which every browser shows. A
thumbnail is made here, once. An image with more pixels than Pillow's
``MAX_IMAGE_PIXELS`` (a decompression bomb) is refused before it is decoded.
PDFs are kept byte for byte; they are only ever served as downloads.

Every refusal is an :class:`Unacceptable` whose message names the file.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass

import filetype
import pillow_heif
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()

THUMBNAIL_SIZE = (320, 320)
IMAGE_QUALITY = 90
THUMBNAIL_QUALITY = 80
NAME_MAX = 120  # characters, extension included
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class IncomingFile:
    """A file as a channel received it: the name it came with (untrusted) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class FileKind:
    label: str  # as a sentence names it: "a JPEG photo"
    extension: str  # of the stored file
    extensions: frozenset[str]  # names that already say so keep their own
    stored_type: str  # the Content-Type it is stored and served with
    pillow_format: str | None = None  # None: a document, kept as it is

    @property
    def is_image(self) -> bool:
        return self.pillow_format is not None


JPEG = FileKind(
    "a JPEG photo", "jpg", frozenset({"jpg", "jpeg", "jpe", "jfif"}), "image/jpeg", "JPEG"
)
PNG = FileKind("a PNG image", "png", frozenset({"png"}), "image/png", "PNG")
WEBP = FileKind("a WebP image", "webp", frozenset({"webp"}), "image/webp", "WEBP")
# Stored as JPEG: browsers other than Safari cannot show HEIC.
HEIC = FileKind("a HEIC photo", "jpg", frozenset({"jpg", "jpeg"}), "image/jpeg", "HEIF")
PDF = FileKind("a PDF", "pdf", frozenset({"pdf"}), "application/pdf")

KINDS = {
    "image/jpeg": JPEG,
    "image/png": PNG,
    "image/webp": WEBP,
    "image/heic": HEIC,
    "image/heif": HEIC,
    "image/heic-sequence": HEIC,  # a burst or live photo: its first picture is kept
    "image/heif-sequence": HEIC,
    "application/pdf": PDF,
}
ACCEPTED_DESCRIPTION = "a photo (JPEG, PNG, WebP, HEIC) or a PDF"
# For the file picker: what phones offer (the camera among them).
ACCEPT_ATTRIBUTE = "image/*,application/pdf"


class Unacceptable(Exception):
    """A file FleetOS will not take; the message says which, and why."""


@dataclass(frozen=True)
class CleanFile:
    """A file fit to store and show: cleaned bytes, its safe name and type, a thumbnail."""

    name: str
    content_type: str
    data: bytes
    thumbnail: bytes | None = None  # JPEG, for images
    width: int | None = None
    height: int | None = None

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


def kind_of(data: bytes) -> FileKind | None:
    """What ``data`` is, by its content alone (None: nothing FleetOS takes)."""
    mime = filetype.guess_mime(data)
    if mime is None and data[4:8] == b"ftyp":
        # ISO media files that filetype does not name (heix, mif1, ...).
        mime = pillow_heif.get_file_mimetype(data[:12]) or None
    return KINDS.get(mime or "")


def clean(incoming: IncomingFile, *, max_bytes: int) -> CleanFile:
    """Check ``incoming`` and return what FleetOS keeps of it, or raise Unacceptable."""
    shown = display_name(incoming.name)
    if not incoming.data:
        raise Unacceptable(f"{shown} is empty.")
    if len(incoming.data) > max_bytes:
        raise Unacceptable(
            f"{shown} is {size_label(len(incoming.data))}; "
            f"files can be at most {size_label(max_bytes)}."
        )
    kind = kind_of(incoming.data)
    if kind is None:
        raise Unacceptable(f"{shown} is not {ACCEPTED_DESCRIPTION}.")
    name = safe_name(incoming.name, kind)
    if not kind.is_image:
        return CleanFile(name=name, content_type=kind.stored_type, data=incoming.data)
    return _clean_image(incoming.data, kind, name, shown)


def _clean_image(data: bytes, kind: FileKind, name: str, shown: str) -> CleanFile:
    assert kind.pillow_format is not None
    try:
        # Everything happens inside: closing the image frees its pixels. One decoded
        # copy at a time (bench/attachments.py measures what that costs).
        with Image.open(io.BytesIO(data), formats=[kind.pillow_format]) as image:
            # Pillow warns between MAX_IMAGE_PIXELS and twice that, and raises
            # only above: a warning is no refusal, so the limit is checked here.
            if image.width * image.height > (Image.MAX_IMAGE_PIXELS or 0) > 0:
                raise Image.DecompressionBombError("too many pixels")
            image.seek(0)  # an animation keeps its first frame
            icc_profile = image.info.get("icc_profile")
            ImageOps.exif_transpose(image, in_place=True)
            # Nothing of the original's metadata goes along: only pixels (and the
            # colour profile, which says how to show them and nothing about anyone;
            # transparency is how a palette image says which colour is see-through).
            transparency = image.info.get("transparency")
            image.info = {} if transparency is None else {"transparency": transparency}
            return CleanFile(
                name=name,
                content_type=kind.stored_type,
                data=_encode(image, kind, icc_profile),
                thumbnail=_thumbnail(image),
                width=image.width,
                height=image.height,
            )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Unacceptable(
            f"{shown} has too many pixels to open safely "
            f"(at most {(Image.MAX_IMAGE_PIXELS or 0) // 1_000_000} megapixels)."
        ) from None
    # Decoders meet hostile bytes here: whatever they raise (OSError mostly; pillow-heif's
    # RuntimeError for what libheif refuses; struct.error, IndexError from some plugins)
    # means the file cannot be taken, never a 500.
    except Exception:
        raise Unacceptable(
            f"{shown} could not be read as {kind.label}: it may be damaged."
        ) from None


def _encode(image: Image.Image, kind: FileKind, icc_profile: bytes | None) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if kind.stored_type == "image/jpeg":
        _flat(image, keep_cmyk=True).save(out, "JPEG", quality=IMAGE_QUALITY, **extra)
    elif kind.stored_type == "image/webp":
        webp = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
        webp.save(out, "WEBP", quality=IMAGE_QUALITY, **extra)
    else:
        # zlib's fastest level: a 12-megapixel photo as PNG took 5.9 s at the default
        # level and 1.2 s at this one, for the same size (bench/attachments.py).
        image.save(out, "PNG", compress_level=1, **extra)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    """A JPEG that fits THUMBNAIL_SIZE (never enlarged), made from the small copy only."""
    source = image if image.mode in ("RGB", "L", "RGBA", "LA", "CMYK") else image.convert("RGBA")
    scale = min(1.0, THUMBNAIL_SIZE[0] / image.width, THUMBNAIL_SIZE[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    out = io.BytesIO()
    _flat(small, keep_cmyk=False).save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def _flat(image: Image.Image, *, keep_cmyk: bool) -> Image.Image:
    """``image`` as JPEG can hold it (transparency laid on white); itself when it can."""
    if image.mode in ("RGB", "L") or (keep_cmyk and image.mode == "CMYK"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


# -- names ------------------------------------------------------------------------------------


def display_name(raw: str) -> str:
    """The name as a person may see it in a message: its last path part, printable only."""
    # A browser (old Edge), a mail client or an attacker may send a whole path.
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    # Control and format characters (bidi overrides like U+202E turn
    # "photo\u202egpj.exe" into "photoexe.jpg" on screen) are dropped.
    printable = "".join(
        char
        for char in unicodedata.normalize("NFC", last)
        if unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    name = " ".join(printable.split()).strip(" .")
    return name[:NAME_MAX] or "attachment"


def safe_name(raw: str, kind: FileKind) -> str:
    """The name a file is kept and downloaded under: printable, no path, and an
    extension that says what it really is ("invoice.html" that is a PDF becomes
    "invoice.html.pdf"; "IMG_0042.HEIC", converted, becomes "IMG_0042.jpg")."""
    name = display_name(raw)
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    extension = extension.lower()
    if extension in {"heic", "heif"} and kind is HEIC:
        extension = ""
    if extension not in kind.extensions:
        stem, extension = (f"{stem}.{extension}" if extension else stem), kind.extension
    room = NAME_MAX - len(extension) - 1
    return f"{stem[:room].rstrip(' .') or 'attachment'}.{extension}"


def size_label(size: int) -> str:
    """A size as people read it: "820 KB", "14.2 MB"."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{round(size / 1000)} KB"
    return f"{size / 1_000_000:.1f} MB".replace(".0 MB", " MB")
