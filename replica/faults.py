"""Fault mode: the transient failures the portal shows now and then.

Each request to an article or list page (robots.txt, the home page and other
paths are never faulted) draws from (seed, request target, attempt), where
attempt is how many earlier requests the server counted for that exact
target. So the same URL can fail on its first attempt and succeed on a retry,
and a run that makes the same requests in the same per-URL order is faulted
identically for a seed, however requests to different URLs interleave.

This module decides and builds the bytes; the server (server.py) does what
needs the socket: sleeping, resetting, cutting a transfer short.
"""
from __future__ import annotations

from dataclasses import dataclass
from random import Random

from .render import HTML_TYPE, PAGE_FAULTS, Response

ALL_TRANSIENT = ("http500", "http502", "http503", "slow", "reset", "truncated",
                 "truncated_short", "empty200", "empty_page", "bad_bytes")
STATUS_FAULTS = {"http500": (500, "Internal Server Error"), "http502": (502, "Bad Gateway"),
                 "http503": (503, "Service Unavailable")}
# Faults that replace the page, not the transfer; `slow` and `reset` are
# handled by the server, `truncated` sends the normal headers then half a body.
assert set(PAGE_FAULTS) <= set(ALL_TRANSIENT)

# Body containers by layout, and where each ends: truncated_short cuts inside
# one so the page ends mid-body. Mirrors templates.py and redesign.py.
BODY_CONTAINERS = ((b'id="article-content"', b"<!-- content end -->"),
                   (b'class="news-body"', b"<!-- /news-body -->"),
                   (b'<ul class="e2">', b"</ul>"))


@dataclass(frozen=True)
class FaultPlan:
    rate: float  # probability that one request is faulted
    seed: int
    kinds: tuple[str, ...] = ALL_TRANSIENT
    slow_seconds: float = 3.0
    # At most this many faults per request target (attempts beyond are clean),
    # so a client retrying that often is sure to get every page; None: no cap.
    max_per_target: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "kinds", tuple(self.kinds))
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, not {self.rate}")
        unknown = set(self.kinds) - set(ALL_TRANSIENT)
        if unknown or not self.kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(ALL_TRANSIENT)}")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must not be negative")

    def decide(self, target: str, attempt: int) -> str | None:
        """The fault for the `attempt`-th (0-based) request of `target`, or None."""
        if self.max_per_target is not None and attempt >= self.max_per_target:
            return None
        rng = Random(f"fault:{self.seed}:{target}:{attempt}")
        return rng.choice(self.kinds) if rng.random() < self.rate else None


def parse_kinds(value: str) -> tuple[str, ...]:
    """"a,b,c" as given on the command line."""
    return tuple(kind.strip() for kind in value.split(",") if kind.strip())


def without_validators(response: Response) -> Response:
    """A faulty answer carries no ETag/Last-Modified: a client must not keep
    validators taken from a broken page, and no 304 may stand in for it."""
    kept = tuple((k, v) for k, v in response.headers if k not in ("ETag", "Last-Modified"))
    return Response(response.status, kept, response.body)


def error_response(kind: str) -> Response:
    status, reason = STATUS_FAULTS[kind]
    body = f"<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body></html>\n"
    return Response(status, (("Content-Type", HTML_TYPE),), body.encode("ascii"))


def empty_response() -> Response:
    return Response(200, (("Content-Type", HTML_TYPE),), b"")


def short_cut(body: bytes) -> int:
    """Where truncated_short ends the page: before the `</p>` nearest the
    middle of the page inside the body container, so the container, <body>
    and <html> stay unclosed. Without a container (or any `</p>` in it), at
    the first `<` from the middle on. A `<` is always a character boundary in
    GB18030 (no trail byte is below 0x40), so no character is split."""
    middle = len(body) // 2
    for start_mark, end_mark in BODY_CONTAINERS:
        start = body.find(start_mark)
        if start < 0:
            continue
        end = body.find(end_mark, start)
        end = len(body) if end < 0 else end
        ends, at = [], body.find(b"</p>", start, end)
        while at >= 0:
            ends.append(at)
            at = body.find(b"</p>", at + 1, end)
        if ends:
            return min(ends, key=lambda position: abs(position - middle))
    at = body.find(b"<", middle)
    return at if at > 0 else middle


def apply(kind: str | None, response: Response, rerender) -> tuple[str | None, Response]:
    """The answer for fault `kind` given the normal `response`, and the kind
    actually injected (None when the fault cannot apply to this answer).

    `rerender(kind)` renders the page variant for PAGE_FAULTS. Page faults
    apply only to 200 pages they change (a no_body article has no body to
    spoil); the truncations only to answers with a body. `slow` and `reset`
    keep the normal answer: the server delays or drops it.
    """
    if kind is None or kind in ("slow", "reset"):
        return kind, response
    if kind in STATUS_FAULTS:
        return kind, error_response(kind)
    if kind == "empty200":
        return kind, empty_response()
    if kind in PAGE_FAULTS:
        if response.status != 200:
            return None, response
        altered = rerender(kind)
        return (kind, without_validators(altered)) if altered.body != response.body else (None, response)
    if not response.body:
        return None, response
    if kind == "truncated_short":
        cut = short_cut(response.body)
        return kind, without_validators(Response(response.status, response.headers, response.body[:cut]))
    return kind, without_validators(response)  # truncated: the server sends half of it
