"""`portal-archive extract`: one saved page or one URL, read and cleaned as a crawl would, printed.

The tool for a page that comes out wrong: it shows what the profile (or the
fallback) reads, with the export's keys, without touching the archive.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from ops.config import Settings
from pipeline.reading.chain import read_page
from pipeline.reading.dates import DateParseError, parse_portal_date
from pipeline.reading.html import clean_body
from pipeline.reading.profile import Profile
from pipeline.reading.records import EXPORT_KEYS, Rejected


class PageUnavailable(ValueError):
    """The file cannot be read or the URL cannot be fetched."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def load(source: str, settings: Settings, url: str | None = None) -> tuple[bytes, str, dict, int, datetime]:
    """(bytes, URL, headers, HTTP status, fetched at) of a saved page or a URL."""
    if is_url(source):
        return _fetch(source, settings)
    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PageUnavailable(f"cannot read {source}: {exc.strerror or exc}") from None
    fetched = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    # A saved page's links (its canonical one first) resolve against the portal's address.
    return raw, url or settings.base_url.rstrip("/") + "/", {}, 200, fetched


def _fetch(url: str, settings: Settings) -> tuple[bytes, str, dict, int, datetime]:
    request = urllib.request.Request(url, headers={"User-Agent": settings.user_agent})
    try:
        with urllib.request.urlopen(request, timeout=settings.download_timeout) as response:
            raw = response.read(settings.max_page_bytes + 1)
            headers = {k: v for k, v in response.headers.items()
                       if k in ("Content-Type", "Content-Length", "ETag", "Last-Modified")}
            status, final = response.status, response.url
    except urllib.error.HTTPError as exc:
        raise PageUnavailable(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PageUnavailable(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from None
    if len(raw) > settings.max_page_bytes:
        raise PageUnavailable(f"{url} is larger than max_page_bytes ({settings.max_page_bytes})")
    return raw, final, headers, status, datetime.now(timezone.utc)


def extract_page(profile: Profile, raw: bytes, url: str, *, headers: dict | None = None, http_status: int = 200,
                 fetched_at: datetime, method: str = "auto") -> dict:
    """The export's keys for the page, plus `published` (the date as the page gives it, in its own
    offset), `method` (how it was read), `problem` (why it could not be archived, or null) and
    `profile_miss` (what made `auto` fall back, or null).

    A page that could not be archived still shows every field that was read, so the reason
    can be checked against what the page says.
    """
    read = read_page(profile, raw, url=url, http_status=http_status, headers=headers, fetched_at=fetched_at,
                     method=method)
    out = dict.fromkeys(EXPORT_KEYS)
    if isinstance(read, Rejected):
        fields = read.fields
        out.update(aid=read.aid, method=fields.get("extraction"), problem=read.reason,
                   profile_miss=fields.get("profile_miss"), url=fields.get("canonical"),
                   title=fields.get("title") or fields.get("head_title"), published=_published(fields, profile),
                   body=_body_text(fields.get("body_html")), channel=fields.get("channel"),
                   lede=fields.get("lede"), editor=fields.get("editor"), source=fields.get("source"),
                   tags=fields.get("tags"), fetched_at=read.fetched_at.isoformat())
        return out
    tz = ZoneInfo(profile.timezone)
    out.update(
        aid=read.aid or None, method=read.extraction, problem=None, profile_miss=read.profile_miss,
        url=read.url, channel=read.channel, status="live", title=read.title,
        published_at=read.published_at.astimezone(tz).isoformat(), published=read.published_at.isoformat(),
        lede=read.lede, body=read.body_text, editor=read.editor, source=read.source,
        origin_source=read.origin_source, tags=read.tags, content_hash=read.content_hash,
        fetched_at=read.fetched_at.isoformat(),
    )
    return out


def _published(fields: dict, profile: Profile) -> str | None:
    """The date read, as a moment when it is one, else as the page wrote it."""
    try:
        return parse_portal_date(fields.get("published"), profile.timezone).isoformat()
    except DateParseError:
        return fields.get("published")


def _body_text(body_html: str | None) -> str | None:
    if not body_html:
        return None
    try:
        return clean_body(body_html)[1] or None
    except Exception:  # the text as read, however damaged, is what the user asked to see
        return body_html
