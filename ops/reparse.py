"""`portal-archive reparse`: read the stored raw pages again, after the profile or the cleaner was fixed.

Nothing is fetched: every version keeps the page it was read from, so the
open version of each live article is read again from its raw page, cleaned,
fingerprinted, and written as a new `reextracted` version only where the
content changed. Pages that went to quarantine are read again too; one that
now reads becomes its article's first version (`created`). It runs as a
crawl run of kind `reparse` under the crawl lease, one transaction per batch.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ops.config import Settings
from ops.lease import Heartbeat, acquire, holder_id, release, this_process
from pipeline.archive import health, runs
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.models import Article, ArticleVersion, Quarantine
from pipeline.archive.queries import article_aid
from pipeline.archive.versions import raw_page_bytes, record_article, record_reextraction
from pipeline.reading.chain import read_page
from pipeline.reading.profile import Profile, load_profile
from pipeline.reading.records import Rejected
from pipeline.stats import read_counts

KIND = "reparse"


@dataclass(frozen=True)
class ReparseRequest:
    channel: str | None = None  # slug or name
    since: date | None = None  # published on or after
    until: date | None = None  # published on or before
    article: str | None = None  # an aid or any URL of the article
    method: str = "auto"  # auto, profile, fallback
    quarantine: bool = True  # read quarantined pages again too

    def options(self) -> dict:
        return {"channel": self.channel or "", "since": str(self.since or ""), "until": str(self.until or ""),
                "article": self.article or "", "method": self.method, "quarantine": self.quarantine}


@dataclass
class ReparseSummary:
    run_id: int
    status: str
    articles_read: int = 0
    reextracted: int = 0
    unchanged: int = 0
    unreadable: int = 0
    quarantine_read: int = 0
    recovered: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class _Scope:
    channel: str | None
    start: datetime | None
    end: datetime | None
    aid: int | None

    def admits(self, clean) -> bool:
        return ((self.channel is None or clean.channel == self.channel)
                and (self.start is None or clean.published_at >= self.start)
                and (self.end is None or clean.published_at < self.end)
                and (self.aid is None or clean.aid == self.aid))


def run_reparse(settings: Settings, request: ReparseRequest, progress=None) -> ReparseSummary:
    """Read stored pages again into the archive. `progress(done, total)` is called as it goes."""
    profile = load_profile(settings.profile)
    engine = open_archive(settings.db, auto_upgrade=settings.is_default_db,
                          busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    holder, ttl = holder_id(), timedelta(seconds=settings.lease_ttl_seconds)
    try:
        with session_scope(engine) as session:
            scope = _scope(session, profile, settings, request)
        acquire(engine, holder, KIND, ttl)
        try:
            run_id = runs.start_run(engine, KIND, settings.base_url, request.options(), owner=this_process())
            summary = ReparseSummary(run_id, "running")
            stats: Counter = Counter()
            try:
                with Heartbeat(engine, holder, ttl, run_id=run_id):
                    _reparse(engine, settings, profile, request, scope, run_id, stats, summary, progress)
                summary.status = "succeeded"
            except Exception as exc:  # the run must never be left "running"
                summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
            report = health.run_health(dict(stats))
            runs.finish_run_patiently(engine, run_id, summary.status, dict(stats), summary.error, health=report)
            return summary
        finally:
            release(engine, holder)
    finally:
        engine.dispose()


def _scope(session: Session, profile: Profile, settings: Settings, request: ReparseRequest) -> _Scope:
    tz = ZoneInfo(profile.timezone)
    start = datetime.combine(request.since, time(), tz) if request.since else None
    end = datetime.combine(request.until + timedelta(days=1), time(), tz) if request.until else None
    aid = article_aid(profile, request.article, base_url=settings.base_url, session=session) \
        if request.article else None
    channel = profile.channel(request.channel).name if request.channel else None
    return _Scope(channel, start, end, aid)


def _targets(session: Session, scope: _Scope) -> list[int]:
    query = select(Article.id).where(Article.status == "live")
    if scope.channel:
        query = query.where(Article.channel == scope.channel)
    if scope.start:
        query = query.where(Article.published_at >= scope.start)
    if scope.end:
        query = query.where(Article.published_at < scope.end)
    if scope.aid is not None:
        query = query.where(Article.aid == scope.aid)
    return list(session.scalars(query.order_by(Article.aid)))


def _quarantined(session: Session, scope: _Scope) -> list[int]:
    """The newest quarantine row with a raw page of each aid the archive has no article for."""
    newest = (select(func.max(Quarantine.id)).where(Quarantine.aid.is_not(None), Quarantine.raw_page_id.is_not(None),
                                                    ~select(Article.id).where(Article.aid == Quarantine.aid).exists())
              .group_by(Quarantine.aid))
    if scope.aid is not None:
        newest = newest.where(Quarantine.aid == scope.aid)
    return list(session.scalars(select(Quarantine.id).where(Quarantine.id.in_(newest)).order_by(Quarantine.aid)))


def _reparse(engine, settings: Settings, profile: Profile, request: ReparseRequest, scope: _Scope, run_id: int,
             stats: Counter, summary: ReparseSummary, progress) -> None:
    with session_scope(engine) as session:
        articles = _targets(session, scope)
        quarantined = _quarantined(session, scope) if request.quarantine else []
    total, done = len(articles) + len(quarantined), 0
    if progress:
        progress(0, total)
    for kind, ids in (("article", articles), ("quarantine", quarantined)):
        for at in range(0, len(ids), settings.batch_size):
            with session_scope(engine) as session:  # one transaction per batch
                for row_id in ids[at:at + settings.batch_size]:
                    if kind == "article":
                        _article(session, profile, request.method, run_id, row_id, stats, summary)
                    else:
                        _quarantine(session, profile, request.method, run_id, row_id, scope, stats, summary)
            done += len(ids[at:at + settings.batch_size])
            if progress:
                progress(done, total)


def _read(profile: Profile, raw_page, aid: int, method: str, counts: Counter):
    """The stored page read again, as a crawl reads it: (CleanArticle or None, why not)."""
    read = read_page(profile, raw_page_bytes(raw_page), url=raw_page.url, headers=raw_page.headers,
                     http_status=raw_page.http_status, fetched_at=raw_page.fetched_at, method=method, aid=aid)
    counts["reparse/pages"] += 1
    if isinstance(read, Rejected):
        counts.update(read_counts(read.fields.get("extraction"), None))
        return None, read.reason
    counts.update(read_counts(read.extraction, read.content_fields()))
    return read, None


def _article(session: Session, profile: Profile, method: str, run_id: int, article_id: int, stats: Counter,
             summary: ReparseSummary) -> None:
    article = session.get(Article, article_id)
    version = session.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article_id,
                                                          ArticleVersion.valid_to.is_(None))).one()
    summary.articles_read += 1
    clean, problem = _read(profile, version.raw_page, article.aid, method, stats)
    if clean is None:
        # The archived reading stays: a fix that cannot read an archived page needs a look, not a tombstone.
        summary.unreadable += 1
        stats["reparse/unreadable"] += 1
        summary.problems.append(f"article {article.aid}: {problem}")
        return
    clean.page.fetched_at = version.fetched_at
    outcome = record_reextraction(session, run_id, article, clean, version.raw_page, datetime.now(timezone.utc))
    stats[f"archive/{outcome}"] += 1
    if outcome == "reextracted":
        summary.reextracted += 1
    else:
        summary.unchanged += 1


def _quarantine(session: Session, profile: Profile, method: str, run_id: int, row_id: int, scope: _Scope,
                stats: Counter, summary: ReparseSummary) -> None:
    row = session.get(Quarantine, row_id)
    summary.quarantine_read += 1
    clean, _problem = _read(profile, row.raw_page, row.aid, method, stats)
    if clean is None or not scope.admits(clean):
        return
    outcome, linked = record_article(session, run_id, clean)
    stats[f"archive/{outcome}"] += 1
    stats["archive/duplicates"] += int(linked)
    if outcome == "new":
        summary.recovered += 1
