"""What the stages pass along after the spider: a cleaned article, or a rejected page."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class CleanArticle:
    aid: int
    url: str  # canonical desktop URL
    fetched_from: str  # the URL actually fetched (mobile, desktop, ...)
    http_status: int
    fetched_at: datetime
    raw: bytes
    headers: dict
    encoding: str | None
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
    # Filled in by the dedupe stage.
    content_hash: str = ""
    body_hash: str = ""
    paragraph_hashes: list[int] = field(default_factory=list)

    def content_fields(self) -> dict:
        return {
            "channel": self.channel, "title": self.title, "published_at": self.published_at,
            "lede": self.lede, "body_text": self.body_text, "body_html": self.body_html,
            "editor": self.editor, "source": self.source, "origin_source": self.origin_source,
            "tags": self.tags,
        }


@dataclass
class Rejected:
    """A page that cannot become a version; it goes to quarantine with its reason."""

    url: str
    aid: int | None
    reason: str
    http_status: int | None
    fetched_at: datetime
    raw: bytes = b""
    headers: dict = field(default_factory=dict)
    encoding: str | None = None
