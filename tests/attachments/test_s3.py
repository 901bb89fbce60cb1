"""Issue 16: the s3 backend, against a real S3-compatible server on loopback.

A real object store (AWS S3, MinIO, Ceph) cannot run here; moto's server mode
speaks the same S3 HTTP API (signatures, presigned URLs, listings) on
127.0.0.1, in a process of its own. FleetOS talks to it through boto3 exactly as
to AWS: credentials from the usual AWS variables, S3_ENDPOINT_URL, S3_BUCKET.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from fleetos.actions.attachments import collect_garbage, missing_files
from fleetos.attachments.storage import S3_PREFIX, current_storage
from tests.attachments.test_uploads import attachments, note, upload
from tests.support import files
from tests.support.apps import database
from tests.support.web import signed_in

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fleetos-test",
    "AWS_SECRET_ACCESS_KEY": "fleetos-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a loopback port, for the whole run (each test has its own bucket)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = f"fleetos-{secrets.token_hex(4)}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, **_credentials())


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture
def s3_app(make_app, s3_server: str, bucket: str):
    return make_app(
        ATTACHMENT_STORAGE="s3", S3_ENDPOINT_URL=s3_server, S3_BUCKET=bucket, S3_URL_SECONDS=60
    )


def fetch(url: str):
    """GET ``url`` as a browser would after the redirect: (status, headers, body)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_s3_backend_round_trip(s3_app, s3_server, bucket, world, smtp):
    bob = signed_in(s3_app, smtp, world.contacts["bob"])
    response = note(
        bob,
        world.request_id,
        files=upload((files.phone_jpeg(), "tyre.jpg"), (files.pdf(), "quote.pdf")),
    )
    assert response.status_code == 303, response.text
    found = {a.filename: a for a in attachments(s3_app)}
    photo, document = found["tyre.jpg"], found["quote.pdf"]

    # In the bucket, under their SHA-256: the photo, its thumbnail and the PDF.
    listed = s3_client(s3_server).list_objects_v2(Bucket=bucket)["Contents"]
    assert {item["Key"] for item in listed} == {
        S3_PREFIX + photo.sha256,
        S3_PREFIX + photo.thumbnail_sha256,
        S3_PREFIX + document.sha256,
    }

    dana = signed_in(s3_app, smtp, world.contacts["dana"])
    base = f"/requests/{world.request_id}/attachments"
    # FleetOS checks who asks, then hands over a short-lived presigned URL.
    redirect = dana.client.get(f"{base}/{photo.attachment_id}")
    assert redirect.status_code == 303
    assert redirect.headers["Cache-Control"] == "private, no-store"
    target = redirect.headers["Location"]
    assert target.startswith(s3_server + "/")
    assert parse_qs(urlsplit(target).query)["X-Amz-Expires"] == ["60"]
    status, headers, body = fetch(target)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"].startswith('inline; filename="tyre.jpg"')
    assert files.SERIAL.encode() not in body
    assert files.read_image(body).size == (48, 64)

    status, headers, body = fetch(
        dana.client.get(f"{base}/{document.attachment_id}").headers["Location"]
    )
    assert status == 200 and body == files.pdf()
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("attachment;")

    thumbnail = dana.client.get(f"{base}/{photo.attachment_id}/thumbnail")
    status, headers, body = fetch(thumbnail.headers["Location"])
    assert status == 200 and files.read_image(body).format == "JPEG"

    # Another company gets the 404, never a URL.
    nora = signed_in(s3_app, smtp, world.contacts["nora"])
    refused = nora.client.get(f"{base}/{photo.attachment_id}")
    assert refused.status_code == 404 and "Location" not in refused.headers

    # Without FleetOS's signature the bucket gives nothing away.
    status, _, _ = fetch(f"{s3_server}/{bucket}/{S3_PREFIX}{photo.sha256}")
    assert status == 403


def test_gc_and_verify_on_s3(s3_app, s3_server, bucket, world, smtp):
    bob = signed_in(s3_app, smtp, world.contacts["bob"])
    note(bob, world.request_id, files=upload((files.pdf(), "quote.pdf")))
    (kept,) = attachments(s3_app)
    with database(s3_app):
        orphan = current_storage().put(b"%PDF-1.4 left behind")
        collected = collect_garbage(timedelta(0))
        assert collected.deleted == [orphan] and collected.kept_referenced == 1
        assert missing_files() == (1, [])
    s3_client(s3_server).delete_object(Bucket=bucket, Key=S3_PREFIX + kept.sha256)
    with database(s3_app):
        total, missing = missing_files()
    assert total == 1 and [m.attachment_id for m in missing] == [kept.attachment_id]


def test_an_unreachable_store_is_a_503_and_nothing_is_saved(make_app, bucket, world, smtp):
    app = make_app(
        ATTACHMENT_STORAGE="s3",
        S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        S3_BUCKET=bucket,
        S3_URL_SECONDS=60,
    )
    bob = signed_in(app, smtp, world.contacts["bob"])
    response = note(bob, world.request_id, body="Quote", files=upload((files.pdf(), "quote.pdf")))
    assert response.status_code == 503
    assert "Files cannot be reached just now" in response.text
    assert response.headers["Retry-After"] == "5"
    assert attachments(app) == []
