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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


def _new_version(session: Session, article: Article, number: int, change: str, run_id: int,
                 fetched_at: datetime, raw_page: RawPage, fields: dict,
                 previous: ArticleVersion | None = None) -> ArticleVersion:
    """The article's next version; `previous` (the open one) is closed where the new one starts.

    Both ends use the same instant, never earlier than the previous version's
    start (a clock that stepped back must not make validity periods overlap),
    and the previous one is closed and flushed first, so the "one open
    version per article" index holds at every statement.
    """
    valid_from = fetched_at
    if previous is not None:
        valid_from = max(fetched_at, previous.valid_from)
        previous.valid_to = valid_from
        session.flush()
    version = ArticleVersion(article=article, version=number, change=change, crawl_run_id=run_id,
                             valid_from=valid_from, fetched_at=fetched_at, raw_page=raw_page, **fields)
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


def _insert_if_absent(session: Session, values: dict) -> bool:
    """INSERT … ON CONFLICT (aid) DO NOTHING: True when this call created the article.

    Concurrent writers of one new article never race a SELECT-then-INSERT:
    the database decides who creates it, and the others wait for that
    transaction, then find the row.
    """
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": pg_insert, "sqlite": sqlite_insert}[dialect]
    statement = insert(Article).values(**values).on_conflict_do_nothing(index_elements=["aid"])
    return session.execute(statement.returning(Article.id)).first() is not None


def _locked(session: Session, aid: int) -> Article | None:
    """The article row, locked for the rest of the transaction (PostgreSQL; SQLite's
    writer lock already serializes whole transactions)."""
    return session.scalars(select(Article).where(Article.aid == aid).with_for_update()
                           .execution_options(populate_existing=True)).one_or_none()


def change_kind(open_extraction: str | None, new_extraction: str) -> str:
    """`edited`, or `reextracted` when the content was read by another method than the open version's.

    A page read by the profile and the same page read by the fallback differ
    in small ways (whitespace, a label, a line of furniture) that say nothing
    about the portal, so the difference cannot be attributed to the portal:
    it is recorded, with its own kind, never as the portal's edit. The hash
    itself stays exact; see the README, "When the portal changes its layout".
    """
    return "edited" if (open_extraction or "profile") == new_extraction else "reextracted"


def record_article(session: Session, run_id: int, item: CleanArticle) -> tuple[str, bool]:
    """Archive one fetched article.

    Returns the outcome (new, edited, reextracted, restored or unchanged) and
    whether the article was just found to be a copy of an earlier one.
    """
    etag, last_modified = item.headers.get("ETag"), item.headers.get("Last-Modified")
    created = _insert_if_absent(session, dict(
        aid=item.aid, canonical_url=item.url, channel=item.channel, status="live",
        first_seen_at=item.fetched_at, last_checked_at=item.fetched_at, last_changed_at=item.fetched_at,
        current_version=1, missing_count=0, published_at=item.published_at,
        content_hash=item.content_hash, body_hash=item.body_hash, etag=etag, last_modified=last_modified))
    article = _locked(session, item.aid)
    if created:
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
    current = _open_version(session, article.id)
    change = "restored" if article.status == "taken_down" else change_kind(current.extraction, item.extraction)
    raw = store_raw_page(session, item.fetched_from, item.fetched_at, item.http_status,
                         item.headers, item.encoding, item.raw)
    _new_version(session, article, article.current_version + 1, change, run_id, item.fetched_at,
                 raw, _fields(item), previous=current)
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
    article = _locked(session, item.aid)
    if article is None:
        return "gone_unknown"
    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    if article.status == "taken_down":
        return "still_gone"
    article.missing_count += 1
    if article.missing_count < confirmations:
        return "gone_unconfirmed"
    current = _open_version(session, article.id)
    raw = store_raw_page(session, item.url, item.fetched_at, item.http_status, item.headers, None,
                         item.raw)
    fields = {c: getattr(current, c) for c in (
        "content_hash", "extraction", "canonical_url", "channel", "title", "published_at", "lede",
        "body_html", "body_text", "editor", "source", "origin_source", "tags", "related", "context")}
    _new_version(session, article, article.current_version + 1, "taken_down", run_id,
                 item.fetched_at, raw, fields, previous=current)
    article.status = "taken_down"
    return "taken_down"


def record_not_modified(session: Session, item: ArticleNotModified) -> str:
    """A 304 to a conditional revisit: checked, unchanged, nothing versioned."""
    article = _locked(session, item.aid)
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


def record_reextraction(session: Session, run_id: int, article: Article, item: CleanArticle,
                        raw_page: RawPage, at: datetime) -> str:
    """A stored page read again (`portal-archive reparse`): a `reextracted` version if the content changed.

    Nothing was fetched, so the new version keeps the open version's raw page
    and fetch time; it is valid from `at`, when it was read again, which keeps
    the validity chain in order and the old reading visible to --as-of.
    """
    if article.status != "live" or article.content_hash == item.content_hash:
        return "unchanged"
    version = _new_version(session, article, article.current_version + 1, "reextracted", run_id, at,
                           raw_page, _fields(item), previous=_open_version(session, article.id))
    version.fetched_at = item.fetched_at
    body_changed = article.body_hash != item.body_hash
    article.canonical_url, article.channel = item.url, item.channel
    article.content_hash, article.body_hash = item.content_hash, item.body_hash
    article.published_at = item.published_at
    if body_changed:
        index_paragraphs(session, article, item.paragraph_hashes)
        link_duplicates(session, article, item)
    return "reextracted"
