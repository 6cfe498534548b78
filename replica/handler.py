"""HTTP for the replica: one request handler and a server that can close
its connections, the graceful way or abruptly.

The handler answers from ReplicaServer's current site and applies, when
switched on, the fault plan (faults.py) and the list shift (shift.py).
"""
from __future__ import annotations

import select
import socket
import struct
import threading
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import faults
from .render import Response, page_kind

if TYPE_CHECKING:
    from .server import ReplicaServer

IDLE_TIMEOUT = 60  # seconds a keep-alive connection may sit idle


def conditional(response: Response, if_none_match: str | None,
                if_modified_since: str | None) -> Response:
    """Turn a 200 into a 304 when the client's validators still hold.

    If-None-Match wins over If-Modified-Since, as RFC 9110 requires.
    """
    headers = dict(response.headers)
    tag = headers.get("ETag")
    if response.status != 200 or tag is None:
        return response
    if if_none_match is not None:
        candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
        fresh = "*" in candidates or tag in candidates
    elif if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
            fresh = since >= parsedate_to_datetime(headers["Last-Modified"])
        except (TypeError, ValueError):
            fresh = False  # an unparseable date is ignored, per RFC 9110
    else:
        fresh = False
    if not fresh:
        return response
    kept = tuple((k, v) for k, v in response.headers if k in ("ETag", "Last-Modified"))
    return Response(304, kept, b"")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    # Headers and body go out in two writes; without this, Nagle plus delayed
    # ACKs stall every keep-alive response by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass  # quiet by design; the request counter is the record

    def version_string(self) -> str:
        return "Apache"  # what a DedeCMS host says; no Python version leak

    def date_time_string(self, timestamp=None):
        return self.server.replica.site().http_now  # the replica's clock, never the real one

    def do_GET(self):
        self._answer(send_body=True)

    def do_HEAD(self):
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        replica: ReplicaServer = self.server.replica
        url = urlsplit(self.path)
        attempt = replica.stats.request(self.path)
        replica.stats.entered(self.headers.get("User-Agent"))
        self._in_flight = True
        try:
            self._respond(replica, url.path, url.query, attempt, send_body)
        finally:
            self._answered()

    def _answered(self) -> None:
        """The request stops counting as in flight: just before its answer goes out, since a
        client may send its next request the moment it has the answer (before this thread
        would get to count it done)."""
        if self._in_flight:
            self._in_flight = False
            self.server.replica.stats.left()

    def _respond(self, replica: "ReplicaServer", path: str, query: str, attempt: int,
                 send_body: bool) -> None:
        site, drift = replica.site(), replica.drift
        response = site.respond(path, query, drift)
        if path == "/robots.txt" and replica.robots is not None:
            response = Response(200, (("Content-Type", "text/plain"),), replica.robots.encode())
        kind = None
        if replica.faults is not None and page_kind(path) is not None:
            kind, response = faults.apply(replica.faults.decide(self.path, attempt), response,
                                          lambda variant: site.respond(path, query, drift, variant))
        if kind is not None:
            replica.stats.fault(self.path, kind)
        if kind == "reset":
            return self._reset()
        if kind == "slow" and not self._still_wanted(replica, replica.faults.slow_seconds):
            self.close_connection = True  # the client gave up: nothing to answer
            return
        if_none_match = self.headers.get("If-None-Match")
        if_modified_since = self.headers.get("If-Modified-Since")
        response = conditional(response, if_none_match, if_modified_since)
        replica.stats.conditional(if_none_match is not None, if_modified_since is not None,
                                  response.status == 304)
        body = response.body
        if kind == "truncated":  # the full length announced, half of it sent
            body = body[:len(body) // 2]
        if kind in ("truncated", "truncated_short"):
            self.close_connection = True  # the page ends where the connection does
        # Counted before sending: a client that has read the answer must find
        # it counted, and a shift fired by this answer already in place.
        if kind in (None, "slow") and response.status == 200:
            replica.stats.ok(self.path)
        if replica.shift is not None and page_kind(path) == "list":
            replica.shift.list_answered()
        self._answered()
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 304:  # a 304 has no body to measure
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no response at all."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.abort(self.connection)
        self.close_connection = True

    def _still_wanted(self, replica: "ReplicaServer", seconds: float) -> bool:
        """Sleep `seconds`; False if the server stops meanwhile or the client
        has hung up (it timed out), so ok_counts only counts answers received."""
        if replica.stopping.wait(seconds):
            return False
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, replica: "ReplicaServer"):
        self.replica = replica
        self.open_connections: set[socket.socket] = set()
        self._aborted: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self._conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def abort(self, request) -> None:
        with self._conn_lock:
            self._aborted.add(request)

    def shutdown_request(self, request):
        with self._conn_lock:
            self.open_connections.discard(request)
            aborted = request in self._aborted
            self._aborted.discard(request)
        if aborted:
            # No shutdown(SHUT_WR) first: that would send a FIN, a clean end.
            # With SO_LINGER 0, close() alone sends the RST.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_connections(self) -> None:
        """Keep-alive connections would otherwise outlive the server."""
        with self._conn_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
