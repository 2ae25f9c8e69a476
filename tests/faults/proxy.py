"""A TCP proxy in front of a real server that fails on cue, the way a server hangs or dies."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["silent", "refuse"]
METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ")


class FailingProxy:
    """Relays ``127.0.0.1:port`` to ``upstream_port`` until it fails, then fails for good.

    ``silent``: connections are still accepted and nothing is answered any more, on open
    connections or new ones (a server stuck on a lock, a host whose replies are dropped).
    ``refuse``: the port is closed and open connections are cut, as when the server's process
    is killed; the kernel refuses every later connection.

    It fails on the first request whose request line contains ``fail_on``, which is then the
    first request the server does not answer, or at once with :meth:`fail`; without an
    upstream it is silent from the start. ``failed_at`` is ``time.monotonic()`` at the switch.
    """

    def __init__(
        self, upstream_port: int | None, *, mode: Mode = "silent", fail_on: str | None = None
    ) -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.fail_on = fail_on.encode() if fail_on else None
        self.failed_at: float | None = None
        self.failed_request: str | None = None
        self._failed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        if upstream_port is None:
            self.fail()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, request: str | None = None) -> None:
        """Stop answering (or close the port) from now on."""
        with self._lock:
            if self._failed.is_set():
                return
            self.failed_at = time.monotonic()
            self.failed_request = request
            self._failed.set()
            if self.mode == "refuse":
                _cut(self._listener)
                for sock in self._sockets:
                    _cut(sock)

    def close(self) -> None:
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                _cut(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed: refusing, or the test is over
                return
            with self._lock:
                self._sockets.append(client)
                failed = self._failed.is_set()
            if failed or self.upstream_port is None:
                # Held open and read, never answered: the connection attempt itself succeeds.
                threading.Thread(target=self._pump, args=(client, None, True), daemon=True).start()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets.append(upstream)
            for source, sink, from_client in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, from_client), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                if sink is not None and not self._failed.is_set():
                    _shutdown_write(sink)
                return
            if from_client and self.fail_on is not None and data.startswith(METHODS):
                # A client sends the next request once the last answer is in: a request
                # line starts a segment.
                line = data.split(b"\r\n", 1)[0]
                if self.fail_on in line:
                    self.fail(line.decode(errors="replace"))
            if self._failed.is_set() or sink is None:
                continue  # swallowed: the server never sees it, the client never hears back
            try:
                sink.sendall(data)
            except OSError:
                return


def _shutdown_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already cut
        sock.shutdown(socket.SHUT_WR)


def _cut(sock: socket.socket) -> None:
    # shutdown wakes a thread blocked in accept() or recv() on it; a zero linger makes the close
    # a reset, as the kernel sends for the sockets of a killed process.
    with contextlib.suppress(OSError):  # already cut
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
