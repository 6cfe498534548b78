"""A batch's rows inserted set-wise, with their ids back in the order the rows were given.

The ids are those the row-at-a-time path gave the same rows (it inserted them in the same
order), so an archive written in batches is the same archive, row for row. PostgreSQL returns
the ids of one multi-row INSERT in parameter order (a sentinel column SQLAlchemy adds). SQLite
has no such sentinel, and a RETURNING in parameter order costs a statement a row there: the
rows go in as one executemany (each row gets the next rowid, in order: the batch's transaction
holds the write lock) and their ids are read back by a natural key.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from pipeline.archive.models import Article, ArticleVersion, RawPage
from pipeline.archive.outcomes import Status
from pipeline.reading.records import CleanArticle

# Statement size for the batch's IN (...) lookups: well inside SQLite's and PostgreSQL's parameter limits.
LOOKUP_CHUNK = 500
VERSIONS = ArticleVersion.__table__
PAGES = RawPage.__table__


class StoredPage:
    """A raw page as a batch knows it: its id, and until it is written (id None) its row."""

    __slots__ = ("id", "row")

    def __init__(self, id_: int | None, row: dict | None = None):
        self.id, self.row = id_, row


def chunks(values: list, size: int = LOOKUP_CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def insert_pages(session: Session, rows: list[dict]) -> list[int]:
    """INSERT the raw pages in their order; their ids (on SQLite by (sha256, url): a batch writes a
    page's (sha256, url) once, and only if the archive does not hold it)."""
    if session.get_bind().dialect.name != "sqlite":
        return list(session.scalars(insert(PAGES).returning(PAGES.c.id, sort_by_parameter_order=True), rows))
    session.execute(insert(PAGES), rows)
    ids: dict[tuple[str, str], int] = {}
    for chunk in chunks(sorted({row["sha256"] for row in rows})):
        for id_, digest, url in session.execute(select(PAGES.c.id, PAGES.c.sha256, PAGES.c.url)
                                                .where(PAGES.c.sha256.in_(chunk))):
            ids[(digest, url)] = max(id_, ids.get((digest, url), 0))
    return [ids[(row["sha256"], row["url"])] for row in rows]


def insert_versions(session: Session, rows: list[dict]) -> list[int]:
    """INSERT the version rows in their order; their ids (on SQLite by (article_id, version))."""
    if session.get_bind().dialect.name != "sqlite":
        return list(session.scalars(insert(VERSIONS).returning(VERSIONS.c.id, sort_by_parameter_order=True), rows))
    session.execute(insert(VERSIONS), rows)
    keys = [(row["article_id"], row["version"]) for row in rows]
    ids = {}
    for chunk in chunks(keys, LOOKUP_CHUNK // 2):
        ids.update(((article_id, version), id_) for id_, article_id, version in session.execute(
            select(VERSIONS.c.id, VERSIONS.c.article_id, VERSIONS.c.version)
            .where(tuple_(VERSIONS.c.article_id, VERSIONS.c.version).in_(chunk))))
    return [ids[key] for key in keys]


def insert_absent(session: Session, articles: list[CleanArticle]) -> set[int]:
    """INSERT … ON CONFLICT (aid) DO NOTHING for the batch's articles: the aids this call created.

    Concurrent writers of one new article never race a SELECT-then-INSERT:
    the database decides who creates it, and the others wait for that
    transaction, then find the row.
    """
    dialect = session.get_bind().dialect.name
    upsert = {"postgresql": pg_insert, "sqlite": sqlite_insert}[dialect]
    statement = (upsert(Article.__table__).on_conflict_do_nothing(index_elements=["aid"])
                 .returning(Article.__table__.c.aid))
    rows = [dict(
        aid=item.aid, canonical_url=item.url, channel=item.channel, status=Status.LIVE,
        first_seen_at=item.fetched_at, last_checked_at=item.fetched_at, last_changed_at=item.fetched_at,
        current_version=1, missing_count=0, published_at=item.published_at, duplicate_of_id=None,
        born_at=born(item.published_at, item.fetched_at),
        content_hash=item.content_hash, body_hash=item.body_hash, etag=item.headers.get("ETag"),
        last_modified=item.headers.get("Last-Modified")) for item in sorted(articles, key=lambda i: i.aid)]
    return set(session.scalars(statement, rows))


# A page often shows only the day it was published (pipeline.archive.revisit, `born`).
DATE_PRECISION = timedelta(days=1)


def born(published_at: datetime, first_seen_at: datetime) -> datetime:
    """When an article was published, as well as the archive can tell when it first sees it: the
    first sighting, kept between the page's publication time and a day after it (a page that shows
    only its day reads as midnight). Fixed at the first sighting: the revisit policy goes by it."""
    return min(max(first_seen_at, published_at), published_at + DATE_PRECISION)
