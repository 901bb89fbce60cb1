"""Benchmark: what taking a photo in costs a web thread (time and memory).

For phone-sized photos (JPEG 12 and 48 megapixels, HEIC 12 megapixels, PNG 12
megapixels) and a PDF, each in a fresh process: the wall time of
``fleetos.attachments.content.clean`` (decode, turn upright, re-encode, thumbnail)
and the process's peak resident memory growth while doing it. Also a bomb just
over Pillow's limit, to show it is refused before it is decoded.

The pictures are noise over a gradient, so they compress like real photos
(a 12-megapixel JPEG of a few MB). Not part of the test suite:
``.venv/bin/python bench/attachments.py``; prints a table.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time

CASES = {
    "JPEG 12 MP (4000x3000)": ("JPEG", 4000, 3000),
    "JPEG 48 MP (8000x6000)": ("JPEG", 8000, 6000),
    "HEIC 12 MP (4032x3024)": ("HEIF", 4032, 3024),
    "PNG 12 MP (4000x3000)": ("PNG", 4000, 3000),
    "PDF 5 MB": ("PDF", 0, 0),
    "bomb PNG 100 MP": ("BOMB", 10000, 10000),
}


def make(kind: str, width: int, height: int) -> bytes:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    if kind == "PDF":
        return b"%PDF-1.7\n" + bytes(range(256)) * (5_000_000 // 256) + b"\n%%EOF\n"
    if kind == "BOMB":
        out = io.BytesIO()
        Image.new("1", (width, height)).save(out, "PNG")
        return out.getvalue()
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    picture = Image.blend(gradient, noise, 0.3)
    out = io.BytesIO()
    picture.save(out, kind, **({"quality": 92} if kind in ("JPEG", "HEIF") else {}))
    return out.getvalue()


def peak_kb() -> int:
    """This process's peak resident memory (VmHWM: ru_maxrss would count the parent's
    peak too, carried across fork and exec on Linux)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1])


def measure(path: str) -> dict[str, object]:
    """In this (fresh) process: clean() the file at ``path`` once; time and peak memory growth."""
    from fleetos.attachments.content import IncomingFile, Unacceptable, clean

    with open(path, "rb") as file:
        data = file.read()
    before = peak_kb()
    start = time.perf_counter()
    try:
        cleaned = clean(IncomingFile("photo", data), max_bytes=50_000_000)
        outcome = f"{cleaned.content_type}, {len(cleaned.data) / 1e6:.1f} MB"
    except Unacceptable as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - start
    after = peak_kb()
    return {
        "size_mb": round(len(data) / 1e6, 2),
        "seconds": round(seconds, 2),
        "peak_growth_mb": round((after - before) / 1024, 1),
        "outcome": outcome,
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2])))
        return
    print("| file | sent | clean() | peak memory growth | kept as |")
    print("|---|---:|---:|---:|---|")
    for label, (kind, width, height) in CASES.items():
        # Made here, measured in a fresh process: making a picture costs more memory
        # than taking it in, and would hide it.
        with tempfile.NamedTemporaryFile(suffix=".bin") as made:
            made.write(make(kind, width, height))
            made.flush()
            answer = subprocess.run(
                [sys.executable, __file__, "--one", made.name],
                capture_output=True,
                text=True,
                check=True,
            )
        row = json.loads(answer.stdout.strip().splitlines()[-1])
        print(
            f"| {label} | {row['size_mb']} MB | {row['seconds']} s "
            f"| {row['peak_growth_mb']} MB | {row['outcome'][:60]} |"
        )


if __name__ == "__main__":
    main()
