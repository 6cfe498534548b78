"""What the spider hands to the pipeline: one item per fetched article URL outcome."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Revisit:
    """An article to fetch besides the list walk: a known one again, with the validators the
    portal last sent for it; a failed fetch again; or, without a URL, an aid to probe."""

    url: str | None
    etag: str | None = None
    last_modified: str | None = None
    # What the request is spent on, in the request budget's words (pipeline/budget.py):
    # revisit, retry (a fetch that failed in an earlier run) or probe.
    kind: str = "revisit"
    aid: int | None = None  # a probe's aid


@dataclass
class ArticlePage:
    """An article page that answered 200, with the fields as found on the page."""

    url: str  # the URL requested (already cleaned of tracking parameters)
    aid: int
    http_status: int
    fetched_at: datetime
    raw: bytes
    headers: dict
    encoding: str | None = None
    # Raw field values as the page shows them (labels, indents and all); None
    # when the selector found nothing. Empty when the page could not be decoded.
    fields: dict = field(default_factory=dict)
    # Why the page could not be read at all (undecodable bytes, ...), if so.
    problem: str | None = None
    # Requested to fill a gap in the aid sequence.
    probe: bool = False


@dataclass
class ArticleGone:
    """An article URL that answered 404/410 or redirected to its channel."""

    url: str
    aid: int
    http_status: int
    fetched_at: datetime
    reason: str
    raw: bytes = b""
    headers: dict = field(default_factory=dict)
    probe: bool = False


@dataclass
class ArticleNotModified:
    """A conditional revisit answered 304: the article was checked and is unchanged."""

    url: str
    aid: int
    fetched_at: datetime


@dataclass
class FetchFailed:
    """A request that still failed after retries (timeout, 5xx, reset): never a takedown."""

    url: str
    aid: int | None
    reason: str
    http_status: int | None
    fetched_at: datetime
