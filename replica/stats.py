"""What the server answered, counted under one lock.

Handler threads count while a test reads, so every reader gets a copy.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

CONDITIONAL_KEYS = ("if_none_match", "if_modified_since", "not_modified")


class ServerStats:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        # Fault attempts are request counts, so a crawl after a reset is
        # faulted as on a fresh server.
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._ok: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._fault_log: list[tuple[str, str]] = []
            self._conditional: Counter[str] = Counter({key: 0 for key in CONDITIONAL_KEYS})
            self._user_agents: Counter[str] = Counter()
            self._in_flight = 0
            self._max_in_flight = 0
            self._arrivals: list[tuple[float, str]] = []

    def request(self, target: str) -> int:
        """Count a request; returns how many came before it for `target`."""
        with self._lock:
            attempt = self._requests[target]
            self._requests[target] = attempt + 1
            self._arrivals.append((time.monotonic(), target))
            return attempt

    def entered(self, user_agent: str | None) -> None:
        """A request is being answered (paired with left()): the most at once is kept."""
        with self._lock:
            self._user_agents[user_agent or ""] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def left(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def ok(self, target: str) -> None:
        with self._lock:
            self._ok[target] += 1

    def fault(self, target: str, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1
            self._fault_log.append((target, kind))

    def conditional(self, if_none_match: bool, if_modified_since: bool, not_modified: bool) -> None:
        with self._lock:
            self._conditional["if_none_match"] += if_none_match
            self._conditional["if_modified_since"] += if_modified_since
            self._conditional["not_modified"] += not_modified

    @property
    def arrivals(self) -> list[tuple[float, str]]:
        """Every request in arrival order, with its time (time.monotonic())."""
        with self._lock:
            return list(self._arrivals)

    @property
    def requests(self) -> Counter[str]:
        with self._lock:
            return Counter(self._requests)

    @property
    def oks(self) -> Counter[str]:
        with self._lock:
            return Counter(self._ok)

    @property
    def faults(self) -> Counter[str]:
        with self._lock:
            return Counter(self._faults)

    @property
    def fault_log(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._fault_log)

    @property
    def conditionals(self) -> Counter[str]:
        with self._lock:
            return Counter(self._conditional)

    @property
    def user_agents(self) -> Counter[str]:
        with self._lock:
            return Counter(self._user_agents)

    @property
    def max_in_flight(self) -> int:
        """The most requests the server was answering at one time."""
        with self._lock:
            return self._max_in_flight
