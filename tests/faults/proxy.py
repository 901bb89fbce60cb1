"""A TCP proxy that a test can cut, restore, freeze and thaw: faults between app and database.

Put it between FleetOS and PostgreSQL (``proxy.url_for(database_url)``) and:

* ``cut()``: every connection through it is closed and new ones are refused,
  as when PostgreSQL stops or restarts (``restore()`` listens again, same port);
* ``freeze()``: nothing moves any more, in either direction, and new
  connections are not answered (the kernel still completes their handshake),
  as when PostgreSQL is SIGSTOPped or a network path silently drops packets;
  ``thaw()`` lets everything held back through.

Each connection is two pump threads (one per direction) that forward whatever
arrives, unless the proxy is frozen.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from tests.mailserver import free_port

CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.connections_made = 0

    # -- the controls ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="proxy-accept", daemon=True
        )
        self._acceptor.start()
        return self

    def cut(self) -> None:
        """Close every connection and stop listening: clients see a reset, then refusals."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)
        if self._acceptor is not None:
            self._acceptor.join(5)

    def restore(self) -> None:
        """Listen again on the same port, as a restarted server does."""
        self.start()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def stop(self) -> None:
        self.thaw()
        self.cut()

    def url_for(self, database_url: str) -> str:
        """``database_url`` pointing at this proxy instead of the server."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    # -- the plumbing ---------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            # Frozen: leave new connections in the kernel's backlog, unanswered.
            while not self._flowing.wait(0.1):
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
                self.connections_made += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                self._flowing.wait()  # frozen: hold what arrived, read nothing more
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
