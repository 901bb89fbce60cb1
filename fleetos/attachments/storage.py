"""Where attachments' bytes live: a small interface, two backends, chosen by ATTACHMENT_STORAGE.

- ``file`` (default): a directory (``ATTACHMENT_DIR``, default
  ``instance/attachments``) on this machine. Only for a single web machine:
  several machines share attachments only through ``s3``.
- ``s3``: any S3-compatible store (AWS S3, MinIO, Ceph) through boto3, at
  ``S3_ENDPOINT_URL`` (unset: AWS), bucket ``S3_BUCKET``, credentials and region
  from the usual AWS variables. Files are handed to browsers as short-lived
  presigned URLs, after FleetOS's own permission check.

Objects are content-addressed: the key is the SHA-256 of the bytes, so one
photo sent twice is stored once, and a key says nothing about whose it is.
Writing one again refreshes its age, which ``flask fleetos attachments gc``
reads. Nothing here knows about requests or permissions.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from flask import Flask, current_app

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

KEY = re.compile(r"[0-9a-f]{64}")
TEMPORARY_PREFIX = ".incoming-"
S3_PREFIX = "attachments/"
STORAGES = ("file", "s3")


class StorageUnavailable(Exception):
    """The attachment storage could not be reached or refused us (nothing was changed)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified: datetime  # UTC, naive like every FleetOS time


class Storage(Protocol):
    """What FleetOS needs of a place to keep files."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (atomically: whole or not at all) and return its key."""
        ...

    def read(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def stored(self) -> Iterator[StoredObject]:
        """Every object held, with when it was last written (temporary leftovers included)."""
        ...

    def modified(self, key: str) -> datetime | None:
        """When ``key`` was last written (None: not held)."""
        ...

    def url(self, key: str, *, name: str, content_type: str, inline: bool) -> str | None:
        """A short-lived URL a browser may fetch the file from; None: FleetOS serves it."""
        ...


def key_for(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_disposition(name: str, *, inline: bool) -> str:
    """``inline``/``attachment`` with the name in ASCII and in full (RFC 6266)."""
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return (
        f'{"inline" if inline else "attachment"}; filename="{fallback}"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


class FileStorage:
    """A directory on this machine: ``ab/cd/abcd...`` (two levels keep directories small)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if KEY.fullmatch(key):
            return self.root / key[:2] / key[2:4] / key
        if key.startswith(TEMPORARY_PREFIX) and "/" not in key and "\\" not in key:
            return self.root / key  # a write that never finished (the process died)
        raise ValueError(f"not an attachment key: {key!r}")

    def put(self, data: bytes) -> str:
        key = key_for(data)
        target = self.path(key)
        try:
            if target.exists():
                os.utime(target)  # the same bytes: only its age changes
                return key
            target.parent.mkdir(parents=True, exist_ok=True)
            # Written beside the root and renamed into place: a reader (or a
            # crash) sees the whole file or none of it, never a part.
            handle, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=self.root)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(temporary, 0o640)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _fsync_directory(target.parent)
        except OSError as exc:
            raise StorageUnavailable(f"could not write {target}: {exc.strerror or exc}") from exc
        return key

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageUnavailable(f"could not read {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def modified(self, key: str) -> datetime | None:
        try:
            return _utc(self.path(key).stat().st_mtime)
        except FileNotFoundError:
            return None

    def stored(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name.startswith(TEMPORARY_PREFIX):
                yield StoredObject(entry.name, _utc(entry.stat().st_mtime))
        for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            if KEY.fullmatch(path.name):
                yield StoredObject(path.name, _utc(path.stat().st_mtime))

    def url(self, key: str, *, name: str, content_type: str, inline: bool) -> str | None:
        return None


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (the file's bytes already are)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage:
    """An S3-compatible bucket, under ``attachments/<sha256>``."""

    def __init__(self, client: S3Client, bucket: str, url_seconds: int) -> None:
        self.client = client
        self.bucket = bucket
        self.url_seconds = url_seconds

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> S3Storage:
        import boto3
        from botocore.config import Config

        endpoint = config.get("S3_ENDPOINT_URL") or None
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(
                signature_version="s3v4",
                # MinIO and Ceph are usually reached by path, not by a bucket subdomain.
                s3={"addressing_style": "path" if endpoint else "auto"},
                connect_timeout=5,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )
        return cls(client, config["S3_BUCKET"], int(config["S3_URL_SECONDS"]))

    def _key(self, key: str) -> str:
        if not KEY.fullmatch(key):
            raise ValueError(f"not an attachment key: {key!r}")
        return S3_PREFIX + key

    def put(self, data: bytes) -> str:
        key = key_for(data)
        # A PUT is atomic in S3: readers see the old object, or the new one whole.
        # Writing the same bytes again refreshes LastModified (gc's idea of age).
        self._call(
            "put_object",
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType="application/octet-stream",
            ChecksumSHA256=_base64_sha256(data),
        )
        return key

    def read(self, key: str) -> bytes:
        try:
            body = self._call("get_object", Bucket=self.bucket, Key=self._key(key))["Body"]
        except _NotThere:
            raise FileNotFoundError(key) from None
        data: bytes = body.read()
        return data

    def exists(self, key: str) -> bool:
        return self.modified(key) is not None

    def modified(self, key: str) -> datetime | None:
        try:
            head = self._call("head_object", Bucket=self.bucket, Key=self._key(key))
        except _NotThere:
            return None
        last: datetime = head["LastModified"]
        return last.astimezone(UTC).replace(tzinfo=None)

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=self._key(key))

    def stored(self) -> Iterator[StoredObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=S3_PREFIX):
                for item in page.get("Contents", []):
                    key = item["Key"].removeprefix(S3_PREFIX)
                    if KEY.fullmatch(key):
                        modified = item["LastModified"].astimezone(UTC).replace(tzinfo=None)
                        yield StoredObject(key, modified)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"S3 list_objects_v2: {exc}") from exc

    def url(self, key: str, *, name: str, content_type: str, inline: bool) -> str | None:
        # The store answers with the headers FleetOS would have sent itself.
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition(name, inline=inline),
                "ResponseCacheControl": "private, max-age=60",
            },
            ExpiresIn=self.url_seconds,
        )

    def _call(self, operation: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise _NotThere from None
            raise StorageUnavailable(f"S3 {operation}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 {operation}: {exc}") from exc


class _NotThere(Exception):
    pass


def _base64_sha256(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def storage_for(app: Flask) -> Storage:
    """The app's storage, made once per app from its configuration."""
    found: Storage | None = app.extensions.get("fleetos.attachment_storage")
    if found is None:
        if app.config["ATTACHMENT_STORAGE"] == "s3":
            found = S3Storage.from_config(app.config)
        else:
            directory = app.config.get("ATTACHMENT_DIR") or Path(app.instance_path, "attachments")
            found = FileStorage(Path(directory))
        app.extensions["fleetos.attachment_storage"] = found
    return found


def current_storage() -> Storage:
    return storage_for(current_app._get_current_object())  # type: ignore[attr-defined]
