"""Photos and documents on a request: what FleetOS accepts, and where it keeps them.

- ``content``: deciding by content what a file is, and making it safe to show
  (images decoded and re-encoded without their metadata, a thumbnail made once;
  PDFs kept as they are). No database, no storage: bytes in, bytes out.
- ``storage``: where the bytes live (``file`` or ``s3``, by ``ATTACHMENT_STORAGE``),
  content-addressed by SHA-256.

Taking files in and attaching them to a request or a note is the action core's
(``fleetos.actions.attachments``), so every channel (the web form, a mail reply,
an MMS) attaches files the same way.
"""
