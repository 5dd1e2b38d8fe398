"""A TCP proxy on loopback that tests switch between forwarding, refusing and hanging: a
database that goes away and comes back, a broker that accepts connections and never answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from enum import Enum


class Mode(Enum):
    FORWARD = "forward"  # bytes go both ways
    REFUSE = "refuse"  # every connection, open or new, is cut at once
    SILENT = "silent"  # connections are accepted, and nothing is ever answered


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, mode: Mode = Mode.FORWARD) -> None:
        self.target = (target_host, target_port)
        self.mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closed = True
        self._listener.close()
        self._cut_all()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode is not Mode.FORWARD:
            self._cut_all()

    def _cut_all(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _keep(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode is Mode.REFUSE:
                client.close()
            elif self.mode is Mode.SILENT:
                self._keep(client)  # held open, never read from or answered
            else:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                self._keep(client, upstream)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
