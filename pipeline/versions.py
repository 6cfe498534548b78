"""Writing the article history: versions, tombstones, raw pages, quarantine, failed fetches.

Every function receives the session of the batch it belongs to and never
commits: the archive stage commits a batch as one transaction, so a crash
leaves either all of a batch or none of it. The open version is closed
(valid_to set and flushed) before its successor is inserted, so the partial
unique index "one open version per article" holds at every statement.
"""
from __future__ import annotations

import hashlib
import zlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.dedupe import index_paragraphs, link_duplicates
from pipeline.models import Article, ArticleVersion, FetchFailure, Quarantine, RawPage
from pipeline.records import CleanArticle, Rejected
from spiders.items import ArticleGone, ArticleNotModified, FetchFailed

RAW_COMPRESSION_LEVEL = 6  # zlib: ~4x on these pages at a fraction of level 9's CPU


def store_raw_page(session: Session, url: str, fetched_at: datetime, status: int, headers: dict,
                   encoding: str | None, raw: bytes) -> RawPage:
    """The page's bytes, stored once: the same bytes from the same URL reuse the earlier row."""
    digest = hashlib.sha256(raw).hexdigest()
    known = session.scalars(select(RawPage).where(RawPage.sha256 == digest, RawPage.url == url)
                            .limit(1)).first()
    if known is not None:
        return known
    page = RawPage(url=url, fetched_at=fetched_at, http_status=status, headers=headers,
                   encoding=encoding, sha256=digest, size=len(raw),
                   body=zlib.compress(raw, RAW_COMPRESSION_LEVEL))
    session.add(page)
    return page


def raw_page_bytes(page: RawPage) -> bytes:
    return zlib.decompress(page.body)


def _open_version(session: Session, article_id: int) -> ArticleVersion:
    return session.scalars(select(ArticleVersion).where(
        ArticleVersion.article_id == article_id, ArticleVersion.valid_to.is_(None))).one()


def _close(session: Session, version: ArticleVersion, at: datetime) -> None:
    version.valid_to = max(at, version.valid_from)
    session.flush()


def _new_version(session: Session, article: Article, number: int, change: str, run_id: int,
                 fetched_at: datetime, raw_page: RawPage, fields: dict) -> ArticleVersion:
    version = ArticleVersion(article=article, version=number, change=change, crawl_run_id=run_id,
                             valid_from=fetched_at, fetched_at=fetched_at, raw_page=raw_page, **fields)
    session.add(version)
    article.current_version = number
    article.last_changed_at = fetched_at
    return version


def _fields(item: CleanArticle) -> dict:
    return {
        "content_hash": item.content_hash, "extraction": item.extraction,
        "canonical_url": item.url, "channel": item.channel, "title": item.title,
        "published_at": item.published_at, "lede": item.lede, "body_html": item.body_html,
        "body_text": item.body_text, "editor": item.editor, "source": item.source,
        "origin_source": item.origin_source, "tags": item.tags, "related": item.related,
        "context": item.context,
    }


def record_article(session: Session, run_id: int, item: CleanArticle) -> tuple[str, bool]:
    """Archive one fetched article.

    Returns the outcome (new, edited, restored or unchanged) and whether the
    article was just found to be a copy of an earlier one.
    """
    article = session.scalars(select(Article).where(Article.aid == item.aid)).one_or_none()
    etag, last_modified = item.headers.get("ETag"), item.headers.get("Last-Modified")
    if article is None:
        article = Article(aid=item.aid, canonical_url=item.url, channel=item.channel, status="live",
                          first_seen_at=item.fetched_at, last_checked_at=item.fetched_at,
                          last_changed_at=item.fetched_at, current_version=1, missing_count=0,
                          published_at=item.published_at,
                          content_hash=item.content_hash, body_hash=item.body_hash,
                          etag=etag, last_modified=last_modified)
        session.add(article)
        session.flush()
        raw = store_raw_page(session, item.fetched_from, item.fetched_at, item.http_status,
                             item.headers, item.encoding, item.raw)
        _new_version(session, article, 1, "created", run_id, item.fetched_at, raw, _fields(item))
        index_paragraphs(session, article, item.paragraph_hashes)
        return "new", link_duplicates(session, article, item) is not None

    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    article.missing_count = 0
    article.etag, article.last_modified = etag, last_modified
    if article.status == "live" and article.content_hash == item.content_hash:
        return "unchanged", False
    change = "restored" if article.status == "taken_down" else "edited"
    _close(session, _open_version(session, article.id), item.fetched_at)
    raw = store_raw_page(session, item.fetched_from, item.fetched_at, item.http_status,
                         item.headers, item.encoding, item.raw)
    _new_version(session, article, article.current_version + 1, change, run_id, item.fetched_at,
                 raw, _fields(item))
    body_changed = article.body_hash != item.body_hash
    article.status = "live"
    article.canonical_url, article.channel = item.url, item.channel
    article.content_hash, article.body_hash = item.content_hash, item.body_hash
    article.published_at = item.published_at
    linked = False
    if body_changed:
        index_paragraphs(session, article, item.paragraph_hashes)
        linked = link_duplicates(session, article, item) is not None
    return change, linked


def record_gone(session: Session, run_id: int, item: ArticleGone, confirmations: int) -> str:
    """A 404/410 or redirect-to-channel answer: a tombstone once confirmed on enough runs."""
    article = session.scalars(select(Article).where(Article.aid == item.aid)).one_or_none()
    if article is None:
        return "gone_unknown"
    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    if article.status == "taken_down":
        return "still_gone"
    article.missing_count += 1
    if article.missing_count < confirmations:
        return "gone_unconfirmed"
    current = _open_version(session, article.id)
    _close(session, current, item.fetched_at)
    raw = store_raw_page(session, item.url, item.fetched_at, item.http_status, item.headers, None,
                         item.raw)
    fields = {c: getattr(current, c) for c in (
        "content_hash", "extraction", "canonical_url", "channel", "title", "published_at", "lede",
        "body_html", "body_text", "editor", "source", "origin_source", "tags", "related", "context")}
    _new_version(session, article, article.current_version + 1, "taken_down", run_id,
                 item.fetched_at, raw, fields)
    article.status = "taken_down"
    return "taken_down"


def record_not_modified(session: Session, item: ArticleNotModified) -> str:
    """A 304 to a conditional revisit: checked, unchanged, nothing versioned."""
    article = session.scalars(select(Article).where(Article.aid == item.aid)).one_or_none()
    if article is None:
        return "not_modified_unknown"
    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    if article.status == "live":
        article.missing_count = 0
    return "not_modified"


def record_quarantine(session: Session, run_id: int, item: Rejected) -> None:
    raw = None
    if item.raw:
        raw = store_raw_page(session, item.url, item.fetched_at, item.http_status or 0, item.headers,
                             item.encoding, item.raw)
    session.add(Quarantine(crawl_run_id=run_id, url=item.url, aid=item.aid, reason=item.reason,
                           http_status=item.http_status, raw_page=raw, created_at=item.fetched_at))


def record_fetch_failure(session: Session, run_id: int, item: FetchFailed) -> None:
    session.add(FetchFailure(crawl_run_id=run_id, url=item.url, aid=item.aid, reason=item.reason,
                             http_status=item.http_status, created_at=item.fetched_at))
