"""A TCP forwarder on 127.0.0.1 that a test can switch off and on: a real outage of a real server.

Tests of the store's outage handling put it between flowbook and the real PostgreSQL server::

    with TcpProxy(5432) as proxy:          # listening, forwarding
        dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        proxy.down()                        # connections refused, open ones cut
        ...
        proxy.up()                          # the same port accepts and forwards again

While down, the port refuses connections (nothing listens) and every forwarded connection is
closed, which is what a client sees when the database host goes away.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forward ``127.0.0.1:port`` (an ephemeral port unless given) to ``target_host:target_port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", port: int = 0,
                 start_up: bool = True) -> None:
        self.target = (target_host, target_port)
        if port == 0:
            with socket.socket() as s:  # reserve an ephemeral port number
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self.accepted = 0
        if start_up:
            self.up()

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        """Listen and forward."""
        with self._lock:
            if self._listener is not None:
                return
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", self.port))
            ls.listen(64)
            self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), name="tcpproxy-accept", daemon=True).start()

    def down(self) -> None:
        """Stop listening and cut every forwarded connection."""
        with self._lock:
            ls, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if ls is not None:
            with contextlib.suppress(OSError):
                ls.shutdown(socket.SHUT_RDWR)
            ls.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    close = down

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return  # closed by down()
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not ls:  # went down meanwhile
                    client.close()
                    server.close()
                    return
                self._conns.update((client, server))
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), name="tcpproxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:  # each socket is the source of exactly one pump, which closes it
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns.discard(src)
            src.close()
