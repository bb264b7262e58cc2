"""gunicorn's sync worker, with each answer sent in one segment and the connection closed promptly.

The sync worker answers one request per connection. Stock, it then writes the answer's
headers and body in two sends (two segments on the wire, two wake-ups of the client) and,
after the FIN, lingers until the client closes its side too (``gunicorn.util.close_graceful``:
RFC 9112 section 9.6, so that unread request bytes cannot turn the close into a reset). For
that client round trip the worker serves nobody. ``bench/worker_close.py`` measures both.

This worker corks the socket while the app runs (``TCP_CORK``: the headers, the body and the
FIN leave together) and, when the request was read to its end and nothing more is waiting
in the socket, closes it at once: there is nothing left to reset. In every other case (an
unread body, a client that sent more, a failed request) gunicorn's graceful close runs as
before. ``app/gunicorn.conf.py`` selects it unless ``THREADS`` > 1.
"""

from __future__ import annotations

import contextlib
import socket

from gunicorn.http.body import LengthReader
from gunicorn.workers.sync import SyncWorker

_CORK = getattr(socket, "TCP_CORK", None)  # Linux; elsewhere the answer goes out as stock


def read_to_end(req) -> bool:
    """Whether gunicorn's request object ``req`` has no body bytes left to read."""
    reader = req.body.reader
    return isinstance(reader, LengthReader) and reader.length == 0


def nothing_pending(client: socket.socket) -> bool:
    """Whether the kernel holds no unread bytes from the client (or the client has closed)."""
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return True
    except (OSError, ValueError):  # ValueError: a TLS socket takes no recv flags
        return False


def close_promptly(req, client: socket.socket) -> bool:
    """Send the FIN and close now when no request byte is left unread; True when closed.

    Args:
        req: gunicorn's parsed request, after its answer was written.
        client: the connection.
    """
    if not (read_to_end(req) and nothing_pending(client)):
        return False
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_WR)  # flushes the corked answer with the FIN
    client.close()
    return True


class PromptSyncWorker(SyncWorker):
    """``SyncWorker`` with one segment per answer and no linger after a clean request."""

    def load_wsgi(self):
        """The app, wrapped so the connection is corked while it answers."""
        super().load_wsgi()
        if _CORK is None:
            return
        wsgi = self.wsgi

        def corked(environ, start_response):
            # After gunicorn's own "100 Continue" (sent before the app runs), so only the
            # answer is held back; the close (or the 200 ms cork limit) lets it go.
            sock = environ.get("gunicorn.socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
            return wsgi(environ, start_response)

        self.wsgi = corked

    def handle_request(self, listener, req, client, addr):
        """Answer as the sync worker does, then close at once when that is clean.

        The sync worker's own graceful close that follows finds the socket closed and does
        nothing more.
        """
        super().handle_request(listener, req, client, addr)
        if not self.cfg.is_ssl:  # TLS closes with its own alert: gunicorn's way
            close_promptly(req, client)
