"""The replica over real HTTP on 127.0.0.1.

The server re-reads DIR/state.json whenever the file changes, so a mutation
saved by another process takes effect on a running server. Rendered pages are
cached per loaded generation: a crawl of thousands of pages costs one render
each.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from collections import Counter
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .index import SiteIndex, build_index
from .render import Response, http_date, route
from .state import STATE_FILE, SiteState, state_from_dict

CACHE_LIMIT = 50_000  # pages per generation; bounded against URL fuzzing
IDLE_TIMEOUT = 60  # seconds a keep-alive connection may sit idle


class LoadedSite:
    """One generation of the state file, with everything derived from it."""

    def __init__(self, state: SiteState, key: tuple):
        self.state = state
        self.key = key
        self.index: SiteIndex = build_index(state)
        self.http_now = http_date(state.now)
        self._cache: dict[tuple[str, str], Response] = {}

    def respond(self, path: str, query: str) -> Response:
        # Only the mobile view reads its query; elsewhere tracking parameters
        # map to the same page and share its cache entry.
        key = (path, query if path == "/m/view.php" else "")
        response = self._cache.get(key)
        if response is None:
            response = route(self.state, key[0], key[1], self.index)
            if response.status == 200 and len(self._cache) < CACHE_LIMIT:
                self._cache[key] = response
        return response


def load_site(state_path: Path) -> LoadedSite:
    with open(state_path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        data = json.loads(handle.read())
    return LoadedSite(state_from_dict(data), (stat.st_mtime_ns, stat.st_size, stat.st_ino))


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


class _Handler(BaseHTTPRequestHandler):
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
        replica._count(self.path)
        url = urlsplit(self.path)
        response = replica.site().respond(url.path, url.query)
        response = conditional(response, self.headers.get("If-None-Match"),
                               self.headers.get("If-Modified-Since"))
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 304:  # a 304 has no body to measure
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if send_body and response.body:
            self.wfile.write(response.body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, replica: "ReplicaServer"):
        self.replica = replica
        self.open_connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self._conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conn_lock:
            self.open_connections.discard(request)
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


class ReplicaServer:
    """Serve DIR/state.json on host:port (port 0 picks a free port)."""

    def __init__(self, state_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0):
        self.state_path = Path(state_dir) / STATE_FILE
        self._site = load_site(self.state_path)
        self._reload_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def state(self) -> SiteState:
        """The state as currently served (reloaded if the file changed)."""
        return self.site().state

    def site(self) -> LoadedSite:
        try:
            stat = os.stat(self.state_path)
        except FileNotFoundError:
            return self._site  # mid-replace or removed: keep serving what we have
        if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._site.key:
            with self._reload_lock:
                stat = os.stat(self.state_path)
                if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._site.key:
                    self._site = load_site(self.state_path)
        return self._site

    @property
    def request_counts(self) -> Counter[str]:
        """Requests so far by target (path and query), as a snapshot copy:
        handler threads keep counting while the caller reads it."""
        with self._count_lock:
            return Counter(self._counts)

    def _count(self, target: str) -> None:
        with self._count_lock:
            self._counts[target] += 1

    def reset_counts(self) -> None:
        with self._count_lock:
            self._counts.clear()

    def start(self) -> "ReplicaServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name=f"replica-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> "ReplicaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
