"""Writing the article history: versions, tombstones, raw pages, quarantine, failed fetches.

Every function receives the session of the batch it belongs to and never
commits: the archive stage commits a batch as one transaction, so a crash
leaves either all of a batch or none of it.

The crawl's writes (record_article, record_gone) decide per article, in item
order, exactly as one article at a time, and leave what they write to their
`Batch` (pipeline/archive/batch.py), which writes it set-wise: the closed
versions with one UPDATE, the new ones with one INSERT, the fingerprints with
one DELETE and one INSERT. Called without a batch, an item is a batch of its
own. The history edits of reparse and the WARC import (record_reextraction,
record_capture) write row by row: the open version is closed (valid_to set and
flushed) before its successor is inserted, so the partial unique index "one
open version per article" holds at every statement either way.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.archive.batch import Batch, page_of
from pipeline.archive.dedupe import index_paragraphs, link_duplicates
from pipeline.archive.models import Article, ArticleVersion, FetchFailure, RawPage
from pipeline.archive.outcomes import Change, Status, Written
from pipeline.archive.rawpages import page_bytes
from pipeline.archive.rows import StoredPage, born
from pipeline.archive.search import index_versions, unindex_versions
from pipeline.reading.records import (
    ArticleGone,
    ArticleNotModified,
    CleanArticle,
    FetchFailed,
    Page,
    Rejected,
)

__all__ = ["Batch", "born", "page_of", "store_raw_page", "record_article", "record_gone", "record_not_modified",
           "record_quarantine", "record_fetch_failure", "record_reextraction", "record_capture", "change_kind"]


def store_raw_page(session: Session, page: Page, batch: Batch | None = None) -> StoredPage:
    """The page's bytes, stored once: the same bytes from the same URL reuse the earlier row. In a
    batch the new row is written with the batch's others (its `id` is set then); without one, now."""
    if batch is not None:
        return batch.raw_page(page)
    batch = Batch(session)
    stored = batch.raw_page(page)
    batch.flush_pending()
    return stored


def raw_page_bytes(page: RawPage) -> bytes:
    return page_bytes(page)


def _open_version(session: Session, article_id: int) -> ArticleVersion:
    return session.scalars(select(ArticleVersion).where(
        ArticleVersion.article_id == article_id, ArticleVersion.valid_to.is_(None))).one()


def _new_version(session: Session, article: Article, number: int, change: str, run_id: int,
                 fetched_at: datetime, raw_page: RawPage | StoredPage, fields: dict,
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
        unindex_versions(session, [previous])
    version = ArticleVersion(article=article, version=number, change=change, crawl_run_id=run_id,
                             valid_from=valid_from, fetched_at=fetched_at, raw_page_id=raw_page.id, **fields)
    session.add(version)
    session.flush()  # its id, which the search index is keyed by
    index_versions(session, [version])
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


# A tombstone keeps the fields of the version it ends (and a version current again, its own).
_KEPT = ("content_hash", "extraction", "canonical_url", "channel", "title", "published_at", "lede", "body_html",
         "body_text", "editor", "source", "origin_source", "tags", "related", "context")


def _kept_fields(version: ArticleVersion) -> dict:
    return {c: getattr(version, c) for c in _KEPT}


def change_kind(open_extraction: str | None, new_extraction: str) -> str:
    """`edited`, or `reextracted` when the content was read by another method than the open version's.

    A page read by the profile and the same page read by the fallback differ
    in small ways (whitespace, a label, a line of furniture) that say nothing
    about the portal, so the difference cannot be attributed to the portal:
    it is recorded, with its own kind, never as the portal's edit. The hash
    itself stays exact; see the README, "When the portal changes its layout".
    """
    return Change.EDITED if (open_extraction or "profile") == new_extraction else Change.REEXTRACTED


def record_article(session: Session, run_id: int, item: CleanArticle,
                   batch: Batch | None = None) -> tuple[str, bool]:
    """Archive one fetched article.

    Returns the outcome (new, edited, reextracted, restored or unchanged) and
    whether the article was just found to be a copy of an earlier one.
    Without a `batch` the article is a batch of its own.
    """
    if batch is None:
        batch = Batch.prepare(session, [item])
        try:
            return record_article(session, run_id, item, batch)
        finally:
            batch.finish()
    article = batch.articles[item.aid]
    raw_page = lambda: store_raw_page(session, item.page, batch)  # noqa: E731
    if item.aid in batch.created:  # _insert_absent set its current_version and last_changed_at
        batch.created.discard(item.aid)
        batch.add_version(article, raw_page(), {
            "version": 1, "change": Change.CREATED, "crawl_run_id": run_id, "valid_from": item.fetched_at,
            "fetched_at": item.fetched_at, **_fields(item)})
        return Written.NEW, batch.index(article, item, replace=False)

    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    article.missing_count = 0
    article.etag, article.last_modified = item.headers.get("ETag"), item.headers.get("Last-Modified")
    if article.status == Status.LIVE and article.content_hash == item.content_hash:
        return Written.UNCHANGED, False
    current = batch.open_version(article)
    change = Change.RESTORED if article.status == Status.TAKEN_DOWN else change_kind(current["extraction"],
                                                                                     item.extraction)
    _next_version(batch, article, change, run_id, item.fetched_at, raw_page(), _fields(item))
    body_changed = article.body_hash != item.body_hash
    article.status = Status.LIVE
    article.canonical_url, article.channel = item.url, item.channel
    article.content_hash, article.body_hash = item.content_hash, item.body_hash
    article.published_at = item.published_at
    linked = batch.index(article, item, replace=True) if body_changed else False
    return Written(change), linked


def record_gone(session: Session, run_id: int, item: ArticleGone, confirmations: int,
                batch: Batch | None = None) -> str:
    """A 404/410 or redirect-to-channel answer: a tombstone once confirmed on enough runs.
    Without a `batch` the answer is a batch of its own."""
    if batch is None:
        batch = Batch.prepare(session, [item])
        try:
            return record_gone(session, run_id, item, confirmations, batch)
        finally:
            batch.finish()
    article = batch.articles.get(item.aid)
    if article is None:
        return Written.GONE_UNKNOWN
    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    if article.status == Status.TAKEN_DOWN:
        return Written.STILL_GONE
    article.missing_count += 1
    if article.missing_count < confirmations:
        return Written.GONE_UNCONFIRMED
    current = batch.open_version(article)
    raw = store_raw_page(session, page_of(item), batch)
    _next_version(batch, article, Change.TAKEN_DOWN, run_id, item.fetched_at, raw,
                  {c: current[c] for c in _KEPT})
    article.status = Status.TAKEN_DOWN
    return Written.TAKEN_DOWN


def _next_version(batch: Batch, article: Article, change: str, run_id: int, fetched_at: datetime,
                  raw_page: StoredPage, fields: dict) -> None:
    """The article's next version, kept in the batch; its open version is closed where it starts.

    Both ends use the same instant, never earlier than the open version's
    start (a clock that stepped back must not make validity periods overlap).
    """
    number = article.current_version + 1
    valid_from = max(fetched_at, batch.open_version(article)["valid_from"])
    batch.add_version(article, raw_page, {"version": number, "change": change, "crawl_run_id": run_id,
                                          "valid_from": valid_from, "fetched_at": fetched_at, **fields})
    article.current_version = number
    article.last_changed_at = fetched_at


def record_not_modified(session: Session, item: ArticleNotModified, batch: Batch | None = None) -> str:
    """A 304 to a conditional revisit: checked, unchanged, nothing versioned."""
    batch = batch or Batch.prepare(session, [item])
    article = batch.articles.get(item.aid)
    if article is None:
        return Written.NOT_MODIFIED_UNKNOWN
    article.last_checked_at = max(item.fetched_at, article.last_checked_at)
    if article.status == Status.LIVE:
        article.missing_count = 0
    return Written.NOT_MODIFIED


def record_quarantine(session: Session, run_id: int, item: Rejected, batch: Batch | None = None) -> None:
    """A page that cannot be archived, kept with its reason and raw page (written with the batch's
    other rows; without a batch, now)."""
    if batch is None:
        batch = Batch(session)
        record_quarantine(session, run_id, item, batch)
        batch.flush_pending()
        return
    raw = batch.raw_page(item.page) if item.page is not None else None
    batch.quarantine(raw, dict(crawl_run_id=run_id, url=item.url, aid=item.aid, reason=item.reason,
                               http_status=item.http_status, created_at=item.fetched_at))


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
    if article.status != Status.LIVE or article.content_hash == item.content_hash:
        return Written.UNCHANGED
    version = _new_version(session, article, article.current_version + 1, Change.REEXTRACTED, run_id, at,
                           raw_page, _fields(item), previous=_open_version(session, article.id))
    version.fetched_at = item.fetched_at
    body_changed = article.body_hash != item.body_hash
    article.canonical_url, article.channel = item.url, item.channel
    article.content_hash, article.body_hash = item.content_hash, item.body_hash
    article.published_at = item.published_at
    if body_changed:
        index_paragraphs(session, article, item.paragraph_hashes)
        link_duplicates(session, article, item)
    return Written.REEXTRACTED


def record_capture(session: Session, run_id: int, item: CleanArticle | ArticleGone) -> str:
    """A capture taken at `item.fetched_at` (a WARC import), put where it belongs in the timeline.

    A capture at or after the article's last look goes the crawl's way
    (record_article, record_gone: one observation is enough for a takedown,
    the capture being the portal's recorded answer). An older one is history:

    - the same content as the version true at that moment: nothing to write;
    - the same content as the version after it: that version began earlier,
      and both ends move to the capture;
    - before the first version: its start moves back to the capture if the
      content is the same, else the capture becomes version 1 (`created`)
      and the old first an `edited` one;
    - inside a version's validity: the capture is a version from its moment
      to where the next begins (or, inside the open version, to the last look,
      after which the open version's content is current again, as that look
      saw it). A takedown's answer is such a version too (`taken_down`, with
      the fields of the version it ends).

    Versions after the insertion are renumbered, so numbers stay gapless and
    in time order, and every validity period ends where the next begins.
    """
    at = item.fetched_at
    article = session.scalars(select(Article).where(Article.aid == item.aid)).one_or_none()
    if article is None or at >= article.last_checked_at:
        if isinstance(item, CleanArticle):
            return record_article(session, run_id, item)[0]
        return record_gone(session, run_id, item, confirmations=1)
    versions = list(session.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article.id)
                                    .order_by(ArticleVersion.version)))
    gone = isinstance(item, ArticleGone)
    before = [v for v in versions if v.valid_from <= at]
    if not before:
        first = versions[0]
        if gone:
            return Written.GONE_UNKNOWN  # nothing archived yet to say was taken down
        if first.change != Change.TAKEN_DOWN and first.content_hash == item.content_hash:
            first.valid_from = at
            article.first_seen_at = min(article.first_seen_at, at)
            return Written.EARLIER
        version = _insert_version(session, article, versions, 0, at, first.valid_from, Change.CREATED, run_id,
                                  item.fetched_at, store_raw_page(session, item.page), _fields(item))
        first.change = change_kind(version.extraction, first.extraction)
        article.first_seen_at = min(article.first_seen_at, at)
        article.born_at = born(item.published_at, at)
        return Written.HISTORY
    containing = before[-1]
    position = versions.index(containing) + 1
    following = versions[position] if position < len(versions) else None
    if _agrees(containing, item):
        return Written.STILL_GONE if gone else Written.UNCHANGED
    if containing.valid_from == at:
        return Written.UNCHANGED  # two answers at one instant: the archive's stands
    if following is not None and _agrees(following, item):
        containing.valid_to = following.valid_from = at
        return Written.EARLIER
    if gone:
        change, raw, fields = Change.TAKEN_DOWN, store_raw_page(session, page_of(item)), _kept_fields(containing)
    else:
        change = Change.RESTORED if containing.change == Change.TAKEN_DOWN else \
            change_kind(containing.extraction, item.extraction)
        raw, fields = store_raw_page(session, item.page), _fields(item)
    until = following.valid_from if following is not None else article.last_checked_at
    version = _insert_version(session, article, versions, position, at, until, change, run_id, item.fetched_at,
                              raw, fields)
    if following is not None:
        following.change = _after(version, following)
    else:  # the last look saw the open version's content: it is current again from then
        kind = Change.TAKEN_DOWN if containing.change == Change.TAKEN_DOWN else Change.EDITED
        again = _insert_version(session, article, [*versions[:position], version], position + 1, until, None,
                                kind, containing.crawl_run_id, containing.fetched_at,
                                containing.raw_page, _kept_fields(containing))
        again.change = _after(version, again)
    return Written.HISTORY


def _agrees(version: ArticleVersion, item) -> bool:
    if isinstance(item, ArticleGone):
        return version.change == Change.TAKEN_DOWN
    return version.change != Change.TAKEN_DOWN and version.content_hash == item.content_hash


def _after(previous: ArticleVersion, version: ArticleVersion) -> str:
    """The kind of change `version` is, now that `previous` precedes it."""
    if version.change == Change.TAKEN_DOWN:
        return Change.TAKEN_DOWN
    if previous.change == Change.TAKEN_DOWN:
        return Change.RESTORED
    return change_kind(previous.extraction, version.extraction)




def _insert_version(session: Session, article: Article, versions: list[ArticleVersion], position: int,
                    valid_from: datetime, valid_to: datetime | None, change: str, run_id: int,
                    fetched_at: datetime, raw_page: RawPage | StoredPage, fields: dict) -> ArticleVersion:
    """A version inserted at `position` (0-based) of the article's ordered versions, valid from
    `valid_from` to `valid_to` (None: it becomes the open version); the versions from
    `position` on move up one number, and the one before it is closed at `valid_from`.

    Numbers move in two steps through negative ones, so (article, version) stays unique at
    every statement on either database; the open version, if it is the one before, is closed
    and leaves the search index before another is opened.
    """
    later = versions[position:]
    for v in later:
        v.version = -(v.version + 1)
    session.flush()
    for v in later:
        v.version = -v.version
    session.flush()
    if position > 0:
        previous = versions[position - 1]
        if previous.valid_to is None:
            previous.valid_to = valid_from
            session.flush()
            unindex_versions(session, [previous])
        else:
            previous.valid_to = valid_from
    version = ArticleVersion(article_id=article.id, version=position + 1, change=change, crawl_run_id=run_id,
                             valid_from=valid_from, valid_to=valid_to, fetched_at=fetched_at, raw_page_id=raw_page.id,
                             **fields)
    session.add(version)
    session.flush()
    article.current_version = len(versions) + 1
    if valid_to is None:
        index_versions(session, [version])
        article.content_hash = version.content_hash
        article.status = Status.TAKEN_DOWN if change == Change.TAKEN_DOWN else Status.LIVE
    return version
