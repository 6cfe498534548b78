"""The replica over real HTTP on 127.0.0.1.

The server re-reads DIR/state.json whenever the file changes, so a mutation
saved by another process takes effect on a running server. Rendered pages are
cached per loaded generation: a crawl of thousands of pages costs one render
each.

Opt-in behaviours, all off by default: fault mode (faults.py), layout drift
(drift.py, redesign.py) and lists that shift mid-crawl (shift.py).
"""
from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path

from .drift import DriftPlan
from .faults import FaultPlan
from .handler import HTTPServer, conditional  # noqa: F401 - conditional: former home
from .index import SiteIndex, build_index
from .render import Response, http_date, route
from .shift import ListShift, ShiftPlan
from .state import STATE_FILE, SiteState, state_from_dict
from .stats import ServerStats

CACHE_LIMIT = 50_000  # pages per generation; bounded against URL fuzzing
POLL_SECONDS = 0.05  # how often the serving loop checks for stop()


class LoadedSite:
    """One generation of the state file, with everything derived from it."""

    def __init__(self, state: SiteState, key: tuple):
        self.state = state
        self.key = key
        self.index: SiteIndex = build_index(state)
        self.http_now = http_date(state.now)
        self._cache: dict[tuple, Response] = {}

    def respond(self, path: str, query: str, drift: DriftPlan | None = None,
                fault: str | None = None) -> Response:
        # Only the mobile view reads its query; elsewhere tracking parameters
        # map to the same page and share its cache entry.
        key = (path, query if path == "/m/view.php" else "", drift, fault)
        response = self._cache.get(key)
        if response is None:
            response = route(self.state, key[0], key[1], self.index, drift=drift, fault=fault)
            if response.status == 200 and len(self._cache) < CACHE_LIMIT:
                self._cache[key] = response
        return response


def load_site(state_path: Path) -> LoadedSite:
    with open(state_path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        data = json.loads(handle.read())
    return LoadedSite(state_from_dict(data), (stat.st_mtime_ns, stat.st_size, stat.st_ino))


class ReplicaServer:
    """Serve DIR/state.json on host:port (port 0 picks a free port).

    `faults`, `drift` and `shift` switch on the opt-in behaviours; without
    them the server answers exactly as the portal normally does.
    """

    def __init__(self, state_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, *,
                 faults: FaultPlan | None = None, drift: DriftPlan | None = None,
                 shift: ShiftPlan | None = None, robots: str | None = None):
        self.state_path = Path(state_dir) / STATE_FILE
        self._site = load_site(self.state_path)
        self._reload_lock = threading.Lock()
        self.stats = ServerStats()
        self.faults = faults
        self.drift = drift
        self.robots = robots  # a robots.txt to serve instead of the portal's
        self.shift = ListShift(shift, state_dir) if shift is not None else None
        self.stopping = threading.Event()
        self._httpd = HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None

    def set_drift(self, plan: DriftPlan | None) -> None:
        """Switch the layout drift at run time (None: the reference layout)."""
        self.drift = plan

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
        return self.stats.requests

    @property
    def ok_counts(self) -> Counter[str]:
        """Normal 200 answers by target (faulted answers are not counted; a
        `slow` one is, when the client was still there to receive it)."""
        return self.stats.oks

    @property
    def fault_counts(self) -> Counter[str]:
        """Faults injected, by kind."""
        return self.stats.faults

    @property
    def fault_log(self) -> list[tuple[str, str]]:
        """Every fault injected, in order, as (target, kind)."""
        return self.stats.fault_log

    @property
    def conditional_counts(self) -> Counter[str]:
        """Requests carrying If-None-Match / If-Modified-Since, and 304s sent:
        keys if_none_match, if_modified_since, not_modified."""
        return self.stats.conditionals

    @property
    def user_agents(self) -> Counter[str]:
        """Requests so far by User-Agent header."""
        return self.stats.user_agents

    @property
    def arrivals(self) -> list[tuple[float, str]]:
        """Every request since the last reset, in arrival order, as (time.monotonic(), target)."""
        return self.stats.arrivals

    @property
    def max_in_flight(self) -> int:
        """The most requests answered at one time since the last reset."""
        return self.stats.max_in_flight

    @property
    def shift_report(self) -> dict | None:
        """The report of the shift round once it has fired, else None."""
        return self.shift.report if self.shift is not None else None

    def reset_counts(self) -> None:
        """Clear every count; fault attempts start over with them."""
        self.stats.reset()

    def start(self) -> "ReplicaServer":
        # A short poll makes stop() quick: tests start and stop many servers.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(POLL_SECONDS,),
                                        name=f"replica-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers sleeping on a `slow` fault
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
