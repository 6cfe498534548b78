"""Which known articles to fetch again: recent ones often, older ones less often.

Edits happen to old articles too, so every live article is revisited on a
schedule that goes by its age (its publication time); the deep revisit
takes everything. The tiers are settings; the defaults were chosen for a
portal that mostly corrects an article in its first days.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from pipeline.db import session_scope
from pipeline.models import Article, CrawlRun
from spiders.items import Revisit

# (articles up to this many days old, are revisited every this many hours); None = any age.
DEFAULT_TIERS: tuple[tuple[float | None, float], ...] = ((2, 1), (14, 6), (90, 24), (None, 168))
CHUNK = 500


@dataclass(frozen=True)
class RevisitPolicy:
    tiers: tuple[tuple[float | None, float], ...] = DEFAULT_TIERS

    def due_clause(self, now: datetime):
        """SQL condition: the article's tier interval has passed since it was last checked."""
        clauses, younger_than = [], None
        for max_age_days, every_hours in self.tiers:
            age = [] if younger_than is None else [Article.published_at < now - timedelta(days=younger_than)]
            if max_age_days is not None:
                age.append(Article.published_at >= now - timedelta(days=max_age_days))
            clauses.append(and_(*age, Article.last_checked_at < now - timedelta(hours=every_hours)))
            if max_age_days is None:
                break
            younger_than = max_age_days
        return or_(*clauses)


def _selection(mode: str, policy: RevisitPolicy, now: datetime, channels: list[str] | None):
    query = select(Article.id, Article.canonical_url, Article.etag, Article.last_modified)
    if mode == "due":
        # Taken-down articles are looked at again only by the deep revisit ("all").
        query = query.where(Article.status == "live", policy.due_clause(now))
    if channels:
        query = query.where(Article.channel.in_(channels))
    return query


def revisits(engine: Engine, mode: str, policy: RevisitPolicy, now: datetime,
             channels: list[str] | None = None, conditional: bool = True) -> Iterator[Revisit]:
    """Known articles to fetch again, read in short chunks while the crawl writes."""
    if mode == "none":
        return
    last_id = 0
    while True:
        with session_scope(engine) as session:
            query = _selection(mode, policy, now, channels).where(Article.id > last_id)
            rows = session.execute(query.order_by(Article.id).limit(CHUNK)).all()
        if not rows:
            return
        last_id = rows[-1].id
        for row in rows:
            yield Revisit(row.canonical_url, row.etag if conditional else None,
                          row.last_modified if conditional else None)


def count_due(session, policy: RevisitPolicy, now: datetime) -> int:
    query = _selection("due", policy, now, None).subquery()
    return session.scalar(select(func.count()).select_from(query)) or 0


# Failed fetches and quarantined pages are tried again by the next runs for this long.
RETRY_FAILURES_WITHIN = timedelta(days=7)


def unresolved_failures(session, now: datetime) -> tuple[list[str], list[str]]:
    """(article URLs, list page URLs) that failed or were quarantined recently and not fetched since.

    A timeout, a 5xx or a broken page proves nothing about the article, so
    it is fetched again on the next runs until it is archived (or the
    failure is a week old, when the regular walks and revisits take over).
    """
    from pipeline.models import FetchFailure, Quarantine

    since = now - RETRY_FAILURES_WITHIN
    articles: dict[str, None] = {}
    for table in (FetchFailure, Quarantine):
        settled = select(Article.id).where(Article.aid == table.aid, Article.last_checked_at > table.created_at)
        rows = session.execute(select(table.url).where(table.created_at > since, table.aid.is_not(None),
                                                       ~settled.exists()).distinct())
        articles.update(dict.fromkeys(url for (url,) in rows))
    last_good = session.scalar(select(func.max(CrawlRun.started_at)).where(
        CrawlRun.status.in_(("succeeded", "degraded")), CrawlRun.fetch_failures == 0))
    lists = session.scalars(select(FetchFailure.url).where(
        FetchFailure.created_at > max(since, last_good or since), FetchFailure.aid.is_(None)).distinct())
    return list(articles), list(lists)
