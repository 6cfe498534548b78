"""What the writes of one batch share, and the rows they write, set-wise.

A batch is written with a few statements, not a few per article: its new articles are created
with one INSERT … ON CONFLICT DO NOTHING; every article it touches is read and locked with one
SELECT … FOR UPDATE in aid order; the open versions of the articles it may give a new version
are read with one query; raw pages and copy candidates are looked up once. The decisions stay
per article (pipeline.archive.versions, in item order), but what they write is kept here and
written together by `flush_pending` (pipeline.archive.rows: in order, ids back):

1. the new raw pages, one INSERT, then the quarantine rows that point at them, one INSERT;
2. the archive's open versions that the batch closes, one UPDATE (executemany), and taken
   out of the search index;
3. the new versions, one INSERT in the order they were decided (so their ids are those the
   row-at-a-time path gave them), the open ones added to the search index;
4. the paragraph fingerprints: one DELETE of the replaced articles' rows, one INSERT.

The closes come before the new versions, so the "one open version per article" index holds
after every statement. A version decided and closed again inside one batch (an article edited
twice) is inserted closed and never enters the search index. Anything that reads these tables
inside the batch (the copy lookup) calls `flush_pending` first.
"""
from __future__ import annotations

import math
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from pipeline.archive.dedupe import link_duplicates
from pipeline.archive.models import Article, ArticleCheck, ArticleVersion, ParagraphFingerprint, Quarantine, RawPage
from pipeline.archive.outcomes import CHANGES, Outcome, Status
from pipeline.archive.rows import StoredPage, chunks, insert_absent, insert_pages, insert_versions
from pipeline.archive.search import index_versions, unindex_versions
from pipeline.reading.fingerprint import CANDIDATE_PARAGRAPH_SHARE
from pipeline.reading.records import ArticleGone, CleanArticle, Page

VERSIONS = ArticleVersion.__table__
_CLOSE = (update(VERSIONS).where(VERSIONS.c.id == bindparam("closed_id"))
          .values(valid_to=bindparam("closed_at")))


class Batch:
    """What the writes of one batch share, looked up once instead of once per article.

    `articles` holds every article the batch touches, read and locked (on
    PostgreSQL) in aid order, so concurrent writers lock rows in the same order;
    `created` the aids this batch inserted. `bodies` and `paragraphs` map the
    body and paragraph hashes the archive held before the batch, plus those the
    batch has written since, to the articles that hold them: an article whose
    hashes no other article holds cannot be a copy of anything, and skips the
    copy queries. `open_versions` holds the open version of each article the
    batch may version, as a row (a dict with its `id`) or as a version this batch
    decided and has not written yet (no `id`).
    """

    def __init__(self, session: Session):
        self.session = session
        self.articles: dict[int, Article] = {}
        self.created: set[int] = set()
        self.raw_pages: dict[tuple[str, str], StoredPage] = {}
        self.looked_up: set[str] = set()  # digests whose raw pages are all in raw_pages
        self.bodies: dict[str, set[int]] = {}
        self.paragraphs: dict[int, set[int]] = {}
        self.open_versions: dict[int, dict] = {}
        self.checks: list[dict] = []  # article_checks rows, inserted with one statement at the end
        # Kept for flush_pending: raw pages to insert, versions to insert (raw page, row), archived
        # versions to close, fingerprints to insert by article id, articles whose archived
        # fingerprints go, quarantine rows (raw page, row).
        self.pages: list[StoredPage] = []
        self.versions: list[tuple[StoredPage, dict]] = []
        self.closed: list[dict] = []
        self.fingerprints: dict[int, list[int]] = {}
        self.replaced: set[int] = set()
        self.quarantined: list[tuple[StoredPage | None, dict]] = []

    @classmethod
    def prepare(cls, session: Session, items: list) -> "Batch":
        batch = cls(session)
        articles = [i for i in items if isinstance(i, CleanArticle)]
        batch._lookup_hashes(articles)
        batch.lookup_raw_pages([page.sha256 for page in map(page_of, items) if page is not None])
        if articles:
            batch.created = insert_absent(session, articles)
        # Every article the batch says anything about, failed looks included (they are recorded too).
        aids = sorted({i.aid for i in items if getattr(i, "aid", None) is not None})
        for chunk in chunks(aids):
            rows = session.scalars(select(Article).where(Article.aid.in_(chunk)).order_by(Article.aid)
                                   .with_for_update().execution_options(populate_existing=True))
            batch.articles.update((a.aid, a) for a in rows)
        batch._lookup_open_versions(items)
        return batch

    def _lookup_hashes(self, articles: list[CleanArticle]) -> None:
        session = self.session
        bodies = sorted({i.body_hash for i in articles})
        for chunk in chunks(bodies):
            for body_hash, article_id in session.execute(
                    select(Article.body_hash, Article.id).where(Article.body_hash.in_(chunk))):
                self.bodies.setdefault(body_hash, set()).add(article_id)
        paragraphs = sorted({h for i in articles for h in i.paragraph_hashes})
        for chunk in chunks(paragraphs):
            for paragraph_hash, article_id in session.execute(
                    select(ParagraphFingerprint.paragraph_hash, ParagraphFingerprint.article_id)
                    .where(ParagraphFingerprint.paragraph_hash.in_(chunk))):
                self.paragraphs.setdefault(paragraph_hash, set()).add(article_id)

    def lookup_raw_pages(self, digests: list[str]) -> None:
        digests = sorted(set(digests))
        for chunk in chunks(digests):
            for id_, digest, url in self.session.execute(
                    select(RawPage.id, RawPage.sha256, RawPage.url).where(RawPage.sha256.in_(chunk))):
                self.raw_pages.setdefault((digest, url), StoredPage(id_))
        self.looked_up.update(digests)

    def raw_page(self, page: Page) -> StoredPage:
        """The page's bytes, stored once: the same bytes from the same URL reuse the earlier row;
        a new one is written by flush_pending (its `id` is set then)."""
        if page.sha256 not in self.looked_up:
            self.lookup_raw_pages([page.sha256])
        key = (page.sha256, page.url)
        known = self.raw_pages.get(key)
        if known is None:
            known = self.raw_pages[key] = StoredPage(None, dict(
                url=page.url, fetched_at=page.fetched_at, http_status=page.http_status, headers=page.headers,
                encoding=page.encoding, sha256=page.sha256, size=page.size, body=page.body, codec=page.codec,
                dictionary_id=page.dictionary_id))
            self.pages.append(known)
        return known

    def quarantine(self, raw_page: StoredPage | None, row: dict) -> None:
        """A quarantine row, written by flush_pending after its raw page."""
        self.quarantined.append((raw_page, row))

    def _lookup_open_versions(self, items: list) -> None:
        """The open versions of the archived articles an item may give a new version: a changed
        content, a live article answering 404. Unchanged articles (most of a revisit) are not read."""
        wanted = set()
        for item in items:
            article = self.articles.get(getattr(item, "aid", None))
            if article is None or article.aid in self.created:
                continue
            if isinstance(item, CleanArticle) and (article.status != Status.LIVE
                                                   or article.content_hash != item.content_hash):
                wanted.add(article.id)
            elif isinstance(item, ArticleGone) and article.status == Status.LIVE:
                wanted.add(article.id)
        for chunk in chunks(sorted(wanted)):
            for row in self.session.execute(select(VERSIONS).where(
                    VERSIONS.c.article_id.in_(chunk), VERSIONS.c.valid_to.is_(None))).mappings():
                self.open_versions[row["article_id"]] = dict(row)

    def open_version(self, article: Article) -> dict:
        """The article's open version: as the batch left it, else as the archive holds it."""
        version = self.open_versions.get(article.id)
        if version is None:  # not foreseen by _lookup_open_versions
            version = self.open_versions[article.id] = dict(self.session.execute(select(VERSIONS).where(
                VERSIONS.c.article_id == article.id, VERSIONS.c.valid_to.is_(None))).mappings().one())
        return version

    def add_version(self, article: Article, raw_page: StoredPage, row: dict) -> None:
        """A new version of the article, written with the batch's others by flush_pending; the
        article's open version (if any) is closed where the new one starts, `row["valid_from"]`."""
        previous = self.open_versions.get(article.id)
        if previous is not None:
            previous["valid_to"] = row["valid_from"]
            if "id" in previous:  # archived: closed by an UPDATE; else inserted closed
                self.closed.append(previous)
        row = {**row, "article_id": article.id, "valid_to": None}
        self.open_versions[article.id] = row
        self.versions.append((raw_page, row))

    def may_have_copies(self, item: CleanArticle, article_id: int) -> bool:
        """False when no other article can share the item's body or enough of its paragraphs."""
        if self.bodies.get(item.body_hash, set()) - {article_id}:
            return True
        if not item.paragraph_hashes:
            return False
        needed = max(1, math.ceil(len(item.paragraph_hashes) * CANDIDATE_PARAGRAPH_SHARE))
        shared = sum(1 for h in item.paragraph_hashes if self.paragraphs.get(h, set()) - {article_id})
        return shared >= needed

    def index(self, article: Article, item: CleanArticle, replace: bool) -> bool:
        """Record the article's fingerprints (replacing those it had), link it to its copies;
        True if it is a copy."""
        if replace:
            self.fingerprints.pop(article.id, None)
            self.replaced.add(article.id)
        self.fingerprints[article.id] = list(dict.fromkeys(item.paragraph_hashes))
        linked = False
        if self.may_have_copies(item, article.id):
            self.flush_pending()
            linked = link_duplicates(self.session, article, item) is not None
        self.bodies.setdefault(item.body_hash, set()).add(article.id)
        for h in item.paragraph_hashes:
            self.paragraphs.setdefault(h, set()).add(article.id)
        return linked

    def flush_pending(self) -> None:
        """Write the versions, closes and fingerprints kept for later; call before reading any."""
        session = self.session
        if self.pages:
            for stored, id_ in zip(self.pages, insert_pages(session, [p.row for p in self.pages]), strict=True):
                stored.id, stored.row = id_, None
            self.pages = []
        if self.quarantined:
            session.execute(insert(Quarantine.__table__), [
                {**row, "raw_page_id": raw_page.id if raw_page is not None else None}
                for raw_page, row in self.quarantined])
            self.quarantined = []
        if self.closed:
            session.execute(_CLOSE, [{"closed_id": v["id"], "closed_at": v["valid_to"]} for v in self.closed])
            unindex_versions(session, [SimpleNamespace(**v) for v in self.closed])
            self.closed = []
        if self.versions:
            rows = [{**row, "raw_page_id": raw_page.id} for raw_page, row in self.versions]
            written = list(zip(insert_versions(session, rows), self.versions, strict=True))
            index_versions(session, [SimpleNamespace(id=id_, **row) for id_, (_, row) in written
                                     if row["valid_to"] is None])
            for id_, (_, row) in written:  # archived now: closing one later in the batch is an UPDATE
                row["id"] = id_
            self.versions = []
        if self.replaced:
            for chunk in chunks(sorted(self.replaced)):
                session.execute(delete(ParagraphFingerprint).where(ParagraphFingerprint.article_id.in_(chunk)))
            self.replaced = set()
        rows = [{"paragraph_hash": h, "article_id": article_id}
                for article_id, hashes in self.fingerprints.items() for h in hashes]
        if rows:
            session.execute(insert(ParagraphFingerprint.__table__), rows)
        self.fingerprints = {}

    def look(self, article: Article, run_id: int, at: datetime, previous: datetime | None,
             outcome: Outcome) -> None:
        """Record what a look at the article found (article_checks), for the revisit policy.

        `previous` is the article's last successful look before this one (None for its first);
        a failed look carries no interval: it tells nothing about the time in between.
        """
        interval = None
        if previous is not None and outcome != Outcome.FAILED:
            interval = max(0, round((at - previous).total_seconds()))
        if outcome in CHANGES:
            article.changes = (article.changes or 0) + 1
        self.checks.append({"article_id": article.id, "crawl_run_id": run_id, "at": round(at.timestamp()),
                            "interval": interval, "outcome": int(outcome)})

    def finish(self) -> None:
        """The writes kept for the end of the batch; call before committing."""
        self.flush_pending()
        if self.checks:
            self.session.execute(insert(ArticleCheck.__table__), self.checks)
            self.checks = []


def page_of(item) -> Page | None:
    """The page an item brings to the archive (a Page; a takedown's few raw bytes are made one
    here, in the writer), or None."""
    page = getattr(item, "page", None)
    if page is None and isinstance(item, ArticleGone):
        page = item.page = Page.of(item.raw, url=item.url, http_status=item.http_status, headers=item.headers,
                                   fetched_at=item.fetched_at)
    return page
