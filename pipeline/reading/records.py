"""The records that travel from a fetch to the archive: plain data, no behaviour beyond their shape.

A fetched article page is read once (pipeline.reading.chain.read_page) into a
CleanArticle or a Rejected page, both carrying the page itself as the archive
keeps it (a Page: compressed, hashed), so nothing after the reader decodes,
parses, hashes or compresses anything. The other outcomes of a request are an
article gone, an article not modified and a fetch that failed. A Visit is a
request the crawl plans besides its list walk.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter

from pipeline.reading import compression
from pipeline.reading.compression import Compressor

# The archive's public contract: the keys of every exported row (pipeline/archive/export.py), which
# `extract` prints for a single page too.
EXPORT_KEYS = (
    "aid", "url", "channel", "version", "valid_from", "valid_to", "status", "change", "title",
    "published_at", "lede", "body", "editor", "source", "origin_source", "tags", "duplicate_of",
    "content_hash", "fetched_at",
)
# The answer's headers the archive keeps with every raw page (the crawl's and a WARC import's).
KEPT_HEADERS = ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Location")
# Pages compressed without a trained dictionary (the archive has none yet; a takedown's answer).
PLAIN = Compressor()


@dataclass(frozen=True)
class Visit:
    """An article to fetch besides the list walk: a known one again, with the validators the
    portal last sent for it; a failed fetch again; or, without a URL, an aid to probe."""

    url: str | None
    etag: str | None = None
    last_modified: str | None = None
    # What the request is spent on, in the request budget's words (pipeline/archive/budget.py):
    # revisit, retry (a fetch that failed in an earlier run) or probe.
    kind: str = "revisit"
    aid: int | None = None  # a probe's aid


def pickled_by_values(cls):
    """Class decorator, over @dataclass: pickled as its fields' values in __init__'s order, not
    as a dict of names and values. An article's record crosses two process boundaries (reader →
    crawl → writer), and the names are written and read again each time (over 2,000 replica
    records: 35 → 29 µs to pickle one, 30 → 28 to unpickle)."""
    values = attrgetter(*[f.name for f in fields(cls) if f.init])

    def __reduce__(self):
        return cls, values(self)

    cls.__reduce__ = __reduce__
    return cls


@pickled_by_values
@dataclass
class Page:
    """A fetched page as the archive keeps it: its bytes compressed (pipeline.reading.compression:
    the codec, and the archive's dictionary if one was used), their SHA-256 and size (of the bytes
    as fetched), with the answer's status and headers."""

    url: str
    http_status: int
    headers: dict
    fetched_at: datetime
    body: bytes  # compressed
    sha256: str
    size: int
    encoding: str | None = None
    codec: str = compression.ZSTD
    dictionary_id: int | None = None

    @classmethod
    def of(cls, raw: bytes, *, url: str, http_status: int, headers: dict, fetched_at: datetime,
           encoding: str | None = None, compressor: Compressor | None = None) -> "Page":
        compressor = compressor or PLAIN
        return cls(url, http_status, dict(headers), fetched_at, compressor.compress(raw),
                   hashlib.sha256(raw).hexdigest(), len(raw), encoding, compression.ZSTD,
                   compressor.dictionary_id)

    def raw(self, dictionary: bytes | None = None) -> bytes:
        """The bytes as fetched (`dictionary`: the bytes of the one the page names, if any)."""
        return compression.decompress(self.codec, self.body, dictionary)


@pickled_by_values
@dataclass
class CleanArticle:
    """An article page read and cleaned: the archive's values, their fingerprints, and the page."""

    aid: int
    url: str  # canonical desktop URL
    page: Page  # the page as fetched (its url: the URL actually fetched, mobile, desktop, ...)
    channel: str
    title: str
    published_at: datetime
    lede: str | None
    body_html: str
    body_text: str
    editor: str | None
    source: str | None
    origin_source: str | None
    tags: list[str]
    related: list[dict] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    extraction: str = "profile"
    probe: bool = False
    content_hash: str = ""
    body_hash: str = ""
    paragraph_hashes: list[int] = field(default_factory=list)
    # What made `auto` reading fall back to the generic extractor, if it did (not archived).
    profile_miss: str | None = None
    # The articles it links to, (aid, URL), for the crawl to follow (not archived).
    links: list[tuple[int, str]] = field(default_factory=list)

    @property
    def fetched_at(self) -> datetime:
        return self.page.fetched_at

    @property
    def headers(self) -> dict:
        return self.page.headers

    def content_fields(self) -> dict:
        return {
            "channel": self.channel, "title": self.title, "published_at": self.published_at,
            "lede": self.lede, "body_text": self.body_text, "body_html": self.body_html,
            "editor": self.editor, "source": self.source, "origin_source": self.origin_source,
            "tags": self.tags,
        }


@dataclass
class Rejected:
    """A page that cannot become a version, with the reason. `broken` pages (cut short, empty,
    undecodable: most often a flaky portal) are fetched again before they are given up; the
    others are unarchivable as they are (no title, no date, no body): quarantined at once.
    `fields` are what could be read off the page, for a person looking at why."""

    url: str
    aid: int | None
    reason: str
    fetched_at: datetime
    page: Page | None = None
    broken: bool = False
    fields: dict = field(default_factory=dict)

    @property
    def http_status(self) -> int | None:
        return self.page.http_status if self.page is not None else None


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
    page: Page | None = None  # the answer as the archive keeps it, made by the archive's writer


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
