"""Backfill: walk the portal's history on demand, resumably.

A backfill is identified by its normalized options. Every article it has
archived is recorded in the same transaction as the article itself, so a
backfill killed at any point (SIGKILL included) and started again with the
same options skips what it already did and never writes a version twice.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select

from ops.config import Settings
from ops.crawl import CrawlPlan, run_crawl
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.models import Backfill
from pipeline.archive.summary import RunSummary
from spiders.walk import ListWalk


@dataclass(frozen=True)
class BackfillRequest:
    channels: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    pages: tuple[int, int] | None = None
    aids: tuple[int, int] | None = None

    def options(self) -> dict:
        return {"channels": sorted(self.channels), "since": str(self.since or ""),
                "until": str(self.until or ""), "pages": list(self.pages or ()), "aids": list(self.aids or ())}

    def key(self, base_url: str) -> str:
        data = json.dumps({"base_url": base_url, **self.options()}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()

    def plan(self, backfill_id: int, progress: bool) -> CrawlPlan:
        if self.aids:
            walk = ListWalk(mode="none")
            probes = list(range(self.aids[1], self.aids[0] - 1, -1))
        else:
            walk = ListWalk(mode="full", since=self.since, until=self.until, pages=self.pages)
            probes = []
        return CrawlPlan(kind="backfill", channels=list(self.channels) or None, walk=walk, revisit="none",
                         probe_gaps=False, probe_aids=probes, follow_links=False,
                         backfill_id=backfill_id, progress=progress)


def open_backfill(settings: Settings, request: BackfillRequest, restart: bool = False) -> tuple[int, bool]:
    """(backfill id, whether it was already done). The same options resume the same backfill."""
    engine = open_archive(settings.db, auto_upgrade=settings.is_default_db)
    key = request.key(settings.base_url)
    try:
        with session_scope(engine) as session:
            backfill = session.scalars(select(Backfill).where(Backfill.key == key)).one_or_none()
            if backfill is None:
                backfill = Backfill(key=key, options=request.options(), status="running",
                                    created_at=datetime.now(timezone.utc))
                session.add(backfill)
                session.flush()
            elif restart:
                backfill.status, backfill.finished_at = "running", None
                session.execute(_forget(backfill.id))
            return backfill.id, backfill.status == "done"
    finally:
        engine.dispose()


def _forget(backfill_id: int):
    from sqlalchemy import delete

    from pipeline.archive.models import BackfillArticle

    return delete(BackfillArticle).where(BackfillArticle.backfill_id == backfill_id)


def run_backfill(settings: Settings, request: BackfillRequest, progress: bool = True,
                 restart: bool = False, distributed: bool = False,
                 announce=lambda: None) -> tuple[RunSummary | None, int]:
    """Run (or resume) the backfill; `announce` is called once it is open and about to crawl."""
    backfill_id, done = open_backfill(settings, request, restart)
    if done:
        return None, backfill_id
    announce()
    if distributed:
        from ops.distributed import coordinate

        summary = coordinate(settings, request.plan(backfill_id, progress=False), echo=lambda _line: None)
    else:
        summary = run_crawl(settings, request.plan(backfill_id, progress))
    if summary.status in ("succeeded", "degraded") and summary.fetch_failures == 0:
        engine = open_archive(settings.db, auto_upgrade=False)
        with session_scope(engine) as session:
            backfill = session.get(Backfill, backfill_id)
            backfill.status, backfill.finished_at = "done", datetime.now(timezone.utc)
        engine.dispose()
    return summary, backfill_id
