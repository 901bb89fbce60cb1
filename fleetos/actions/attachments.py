"""Photos and documents: taking them in, attaching them, opening them, cleaning up.

Every channel hands files over the same way: a name and the bytes
(:class:`IncomingFile`), read by the channel from a form, a mail or an MMS.
:func:`take_in` checks and cleans each one (``fleetos.attachments.content``)
and writes it to storage; the request actions (``create_request``,
``add_note``) then attach what was taken in, in their own unit of work, and
their notification says what came with it. A file taken in but never attached
(the form was refused, the transaction failed) is a file in storage that no
row refers to: :func:`collect_garbage` removes it once it is old enough.

Storage and database meet under an advisory lock per object: taking a file in
holds a shared lock on its key until the unit of work ends, and the garbage
collector takes the exclusive one before deleting, then looks again. So a
collector can never delete a file that a transaction is about to attach.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text

from .. import queries
from ..attachments.content import (
    CleanFile,
    IncomingFile,
    Unacceptable,
    clean,
    display_name,
    size_label,
)
from ..attachments.storage import Storage, current_storage, key_for
from ..clock import utcnow
from ..domain_errors import Invalid, NotFound
from ..events import EventLogService
from ..extensions import db
from ..models import Attachment, Contact, EventLog, ServiceRequest
from ..unit_of_work import atomic

__all__ = ["Attachable", "HeldFile", "IncomingFile", "TakenIn", "take_in"]


@dataclass(frozen=True)
class HeldFile:
    """A file taken in (checked, cleaned, in storage), not yet attached to anything."""

    name: str
    content_type: str
    size: int
    sha256: str
    thumbnail_sha256: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def size_label(self) -> str:
        return size_label(self.size)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HeldFile:
        values: dict[str, Any] = {name: raw.get(name) for name in cls.__dataclass_fields__}
        return cls(**values)


# What an action accepts: files fresh from a channel, or ones it took in before.
Attachable = IncomingFile | HeldFile


@dataclass
class TakenIn:
    held: list[HeldFile] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one message per file, naming it

    def refusal(self) -> str | None:
        if not self.refused:
            return None
        kept = " The other files are kept." if self.held else ""
        return "Not attached: " + " ".join(self.refused) + kept


def take_in(files: Sequence[Attachable], service_request: ServiceRequest | None = None) -> TakenIn:
    """Check, clean and store ``files``; each one is held or refused with its name.

    Limits: ATTACHMENT_MAX_BYTES a file, ATTACHMENT_MAX_FILES and
    ATTACHMENT_MAX_UPLOAD_BYTES at once, ATTACHMENT_MAX_REQUEST_BYTES for all
    the files of ``service_request`` (two uploads to one request at the same
    moment may each fit on their own and, together, pass it by one upload).
    """
    config = current_app.config
    storage = current_storage()
    taken = TakenIn()
    upload_room = config["ATTACHMENT_MAX_UPLOAD_BYTES"]
    request_room = config["ATTACHMENT_MAX_REQUEST_BYTES"] - _stored_bytes(service_request)
    for file in files:
        most = config["ATTACHMENT_MAX_FILES"]
        if len(taken.held) >= most:
            taken.refused.append(f"{display_name(file.name)}: at most {most} files can go at once.")
            continue
        try:
            held = (
                _still_held(storage, file)
                if isinstance(file, HeldFile)
                else _store(storage, clean(file, max_bytes=config["ATTACHMENT_MAX_BYTES"]))
            )
        except Unacceptable as exc:
            taken.refused.append(str(exc))
            continue
        if held.size > upload_room:
            taken.refused.append(
                f"{held.name} would take this upload over "
                f"{size_label(config['ATTACHMENT_MAX_UPLOAD_BYTES'])}."
            )
            continue
        if held.size > request_room:
            taken.refused.append(
                f"{held.name} would take this request's files over "
                f"{size_label(config['ATTACHMENT_MAX_REQUEST_BYTES'])}."
            )
            continue
        upload_room -= held.size
        request_room -= held.size
        taken.held.append(held)
    return taken


def _stored_bytes(service_request: ServiceRequest | None) -> int:
    if service_request is None:
        return 0
    total = db.session.scalar(
        select(func.coalesce(func.sum(Attachment.size_bytes), 0)).where(
            Attachment.request_id == service_request.request_id
        )
    )
    return int(total or 0)


def _store(storage: Storage, cleaned: CleanFile) -> HeldFile:
    thumbnail_key = None
    if cleaned.thumbnail is not None:
        _hold_key(key_for(cleaned.thumbnail))
        thumbnail_key = storage.put(cleaned.thumbnail)
    _hold_key(key_for(cleaned.data))
    return HeldFile(
        name=cleaned.name,
        content_type=cleaned.content_type,
        size=len(cleaned.data),
        sha256=storage.put(cleaned.data),
        thumbnail_sha256=thumbnail_key,
        width=cleaned.width,
        height=cleaned.height,
    )


def _still_held(storage: Storage, file: HeldFile) -> HeldFile:
    """A file taken in by an earlier, refused attempt: still there? (gc may have taken it)."""
    keys = [key for key in (file.sha256, file.thumbnail_sha256) if key]
    for key in keys:
        _hold_key(key)
    if not all(storage.exists(key) for key in keys):
        raise Unacceptable(f"{file.name} was kept too long; attach it again.")
    return file


def _hold_key(key: str) -> None:
    """Until this unit of work ends, no garbage collector deletes ``key`` (see the module)."""
    db.session.execute(
        text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:key, 0))"),
        {"key": "attachment:" + key},
    )


def refuse_if_wrong(taken: TakenIn, errors: dict[str, str]) -> None:
    """Refuse, if any field (``errors``) or file is at fault, with one Invalid naming them
    all; it carries the files that were taken in, for the channel to offer again (a
    form shows them as kept: nothing needs sending twice)."""
    message = taken.refusal()
    if message:
        errors["files"] = message
    if errors:
        first = next(iter(errors))
        raise Invalid(first, errors[first], errors=errors, held=taken.held)


def attach(
    held: Sequence[HeldFile],
    *,
    service_request: ServiceRequest,
    contact: Contact,
    event: EventLog,
    channel: str,
) -> list[Attachment]:
    """Make ``held`` files part of ``service_request``, carried by ``event`` (a note or
    its creation), in the caller's unit of work."""
    db.session.flush()  # the event's id
    attachments = [
        Attachment(
            attachment_id=uuid.uuid4(),
            request_id=service_request.request_id,
            event_id=event.event_id,
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            filename=file.name,
            content_type=file.content_type,
            size_bytes=file.size,
            sha256=file.sha256,
            thumbnail_sha256=file.thumbnail_sha256,
            width=file.width,
            height=file.height,
            channel=channel,
        )
        for file in held
    ]
    db.session.add_all(attachments)
    return attachments


def audit_facts(held: Sequence[HeldFile]) -> dict[str, Any]:
    """What the carrying event records of the upload (empty when nothing came with it)."""
    if not held:
        return {}
    return {
        "attachments": [
            {"name": f.name, "type": f.content_type, "size": f.size, "sha256": f.sha256}
            for f in held
        ]
    }


def summary(held: Sequence[HeldFile]) -> str:
    """ "2 photos attached", "1 photo and 1 document attached", or "" for none."""
    photos = sum(f.is_image for f in held)
    documents = len(held) - photos
    parts = [
        f"{n} {word}{'' if n == 1 else 's'}"
        for n, word in ((photos, "photo"), (documents, "document"))
        if n
    ]
    return f"{' and '.join(parts)} attached" if parts else ""


# -- opening one -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    attachment: Attachment
    key: str
    content_type: str
    inline: bool


@atomic
def open_attachment(
    contact: Contact,
    request_id: uuid.UUID,
    attachment_id: uuid.UUID,
    *,
    thumbnail: bool = False,
    download: bool = False,
    channel: str = "web",
) -> Opened:
    """The file (or its thumbnail) if ``contact``'s company owns the request; else NotFound.

    Opening the file itself is recorded; thumbnails are part of looking at the
    request and are not. Only images are ever shown inline.
    """
    attachment = queries.visible_attachment(contact, request_id, attachment_id)
    if thumbnail:
        if attachment.thumbnail_sha256 is None:
            raise NotFound()
        return Opened(attachment, attachment.thumbnail_sha256, "image/jpeg", inline=True)
    inline = attachment.is_image and not download
    EventLogService.record(
        "attachment.viewed" if inline else "attachment.downloaded",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=attachment.request_id,
        attachment_id=str(attachment.attachment_id),
        name=attachment.filename,
        channel=channel,
    )
    return Opened(attachment, attachment.sha256, attachment.content_type, inline=inline)


# -- cleaning up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    deleted: list[str]
    kept_referenced: int
    kept_young: int


def collect_garbage(older_than: timedelta, *, dry_run: bool = False) -> Collected:
    """Delete stored files that no attachment refers to and that are older than ``older_than``.

    They are what a failed or refused upload left behind. ``older_than`` must
    outlast a refused form's kept files (ATTACHMENT_KEEP_SECONDS) and any
    transaction in flight; the advisory lock covers a transaction that
    attaches the very same bytes while the collector looks at them.
    """
    storage = current_storage()
    # Storage keeps time by this machine's clock (file) or the store's (s3); hours of
    # margin make their differences irrelevant.
    cutoff = utcnow() - older_than
    db.session.rollback()
    deleted: list[str] = []
    referenced = young = 0
    old = []
    for stored in storage.stored():
        if stored.modified > cutoff:
            young += 1
        else:
            old.append(stored.key)
    for start in range(0, len(old), GC_BATCH):
        batch = old[start : start + GC_BATCH]
        in_use = _referenced(batch)
        db.session.rollback()
        referenced += len(in_use)
        for key in batch:
            if key in in_use:
                continue
            # Looked at again under the key's lock: an upload of the same bytes may
            # have attached it, or written it afresh, since the batch was read.
            with _collecting(key):
                if _referenced([key]):
                    referenced += 1
                    continue
                modified = storage.modified(key)
                if modified is not None and modified > cutoff:
                    young += 1
                    continue
                if not dry_run:
                    storage.delete(key)
                deleted.append(key)
    return Collected(deleted, referenced, young)


GC_BATCH = 1000


@contextmanager
def _collecting(key: str) -> Any:
    """One key at a time, in a transaction of its own holding the key's exclusive lock."""
    try:
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": "attachment:" + key},
        )
        yield
    finally:
        db.session.rollback()  # only a lock and reads: nothing to commit


def _referenced(keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` an attachment refers to (as its file or its thumbnail), or a reply
    held for its addressee to accept (``held_replies``, while its link works) may attach."""
    files = select(Attachment.sha256).where(Attachment.sha256.in_(keys))
    thumbnails = select(Attachment.thumbnail_sha256).where(Attachment.thumbnail_sha256.in_(keys))
    held = {
        key
        for key in db.session.scalars(
            text(
                "SELECT key FROM held_replies,"
                " jsonb_array_elements(coalesce(attachments, '[]'::jsonb)) AS f,"
                " LATERAL (VALUES (f->>'sha256'), (f->>'thumbnail_sha256')) AS k(key)"
                " WHERE decided_at IS NULL AND key = ANY(:keys)"
                # Past its link's lifetime nobody can accept it any more.
                " AND created_at > now() - make_interval(secs => :link_age)"
            ),
            {"keys": list(keys), "link_age": current_app.config["HELD_REPLY_LINK_MAX_AGE"]},
        )
    }
    return held | {key for key in db.session.scalars(files.union(thumbnails)) if key}


@dataclass(frozen=True)
class Missing:
    attachment_id: uuid.UUID
    request_id: uuid.UUID
    filename: str


def missing_files() -> tuple[int, list[Missing]]:
    """How many attachments there are, and those whose file (or thumbnail) is not in
    storage (``flask fleetos verify``). Storage is listed once, not asked per file."""
    present = {stored.key for stored in current_storage().stored()}
    total = 0
    missing: list[Missing] = []
    rows = db.session.execute(
        select(
            Attachment.attachment_id,
            Attachment.request_id,
            Attachment.filename,
            Attachment.sha256,
            Attachment.thumbnail_sha256,
        )
        .order_by(Attachment.created_at, Attachment.attachment_id)
        .execution_options(yield_per=1000)
    )
    for attachment_id, request_id, filename, sha256, thumbnail in rows:
        total += 1
        if sha256 not in present or (thumbnail and thumbnail not in present):
            missing.append(Missing(attachment_id, request_id, filename))
    return total, missing
