"""The crawl-runs table: a run is opened before the crawl and closed with its counts."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from pipeline import stats as stats_keys
from pipeline.archive import budget
from pipeline.archive.db import session_scope
from pipeline.archive.models import CrawlRun
from pipeline.archive.outcomes import Written

# Crawler stats keys → crawl_runs columns (the sums are pipeline.stats').
COUNTED = {
    stats_keys.archive(Written.NEW): "articles_new",
    stats_keys.archive(Written.TAKEN_DOWN): "taken_down",
    stats_keys.archive(Written.RESTORED): "restored",
    stats_keys.DUPLICATES: "duplicates",
    stats_keys.archive(Written.QUARANTINED): "quarantined",
    stats_keys.archive(Written.FETCH_FAILED): "fetch_failures",
    stats_keys.RESPONSES: "pages_fetched",
    stats_keys.REQUESTS: "requests",  # every request sent to the portal: the request budget's ledger
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def start_run(engine: Engine, kind: str, base_url: str, options: dict, job: str | None = None,
              backfill_id: int | None = None, owner: tuple[str, int, str | None] | None = None) -> int:
    """Open a run. `owner` (host, pid, process start) is the process answerable for it, written with
    the row: a run is never `running` without one, or a kill before it was claimed would leave it
    running until its heartbeat went stale instead of being seen dead at once (claim_run)."""
    hostname, pid, started = owner or (None, None, None)
    stamp = now()
    return _add_run(engine, kind=kind, job=job, status="running", started_at=stamp, base_url=base_url,
                    options=options, backfill_id=backfill_id, hostname=hostname, pid=pid, pid_started=started,
                    heartbeat_at=stamp if owner else None)


def record_skipped(engine: Engine, kind: str, base_url: str, job: str | None, why: str) -> int:
    """A slot that did not run, written closed in one transaction: never `running`, so never taken
    for a run whose process died."""
    stamp = now()
    return _add_run(engine, kind=kind, job=job, status="skipped", started_at=stamp, finished_at=stamp,
                    base_url=base_url, options={}, error=why)


def _add_run(engine: Engine, **columns) -> int:
    with session_scope(engine) as session:
        run = CrawlRun(stats={}, health={}, **columns)
        session.add(run)
        session.flush()
        return run.id


def finish_run_patiently(engine: Engine, run_id: int, status: str, stats: dict, error: str | None,
                         attempts: int = 10, wait_seconds: float = 3.0, health: dict | None = None) -> CrawlRun:
    """finish_run, tried again while the database is unavailable (locked, restarting).

    The crawl may have stopped precisely because the database went away; its
    run should still end up `failed` with the reason rather than `running`.
    """
    for attempt in range(attempts):
        try:
            return finish_run(engine, run_id, status, stats, error, health)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(wait_seconds)
    raise AssertionError("unreachable")


def claim_run(engine: Engine, run_id: int, hostname: str, pid: int, started: str | None = None) -> None:
    """Record which process works on the run (and when it started, so a reused pid is not taken
    for it), so a dead one can be told from a live one."""
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        run.hostname, run.pid, run.pid_started, run.heartbeat_at = hostname, pid, started, now()


def close_run(engine: Engine, run_id: int, status: str, error: str | None) -> bool:
    """Close a run from outside its process (timeout, kill); False if it had closed itself."""
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.status != "running":
            return False
        run.status, run.error, run.finished_at = status, error, now()
        return True


def finish_run(engine: Engine, run_id: int, status: str, stats: dict, error: str | None = None,
               health: dict | None = None) -> CrawlRun:
    with session_scope(engine) as session:
        run = session.get(CrawlRun, run_id)
        run.status = status
        run.finished_at = now()
        run.error = error
        for key, column in COUNTED.items():
            setattr(run, column, int(stats.get(key, 0)))
        run.unchanged = stats_keys.unchanged(stats)
        run.articles_seen = stats_keys.articles_seen(stats)
        run.versions_written = stats_keys.versions_written(stats)
        run.stats = {k: v if isinstance(v, (int, float, str)) else str(v) for k, v in stats.items()}
        if health is not None:
            run.health = health
        return run


@dataclass
class RunSummary:
    """One crawl run as everything reports it: `crawl` and `backfill` print it, `status` and the
    daemon's notifications carry it, the runs API answers it."""

    id: int
    kind: str
    job: str | None
    status: str
    base_url: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    requests: int | None  # sent to the portal; null while it runs or if it died before counting
    allowance: int | None  # what the request budget allowed it; null: no limit
    pages_fetched: int
    articles_seen: int
    articles_new: int
    versions_written: int
    edits: int
    unchanged: int
    taken_down: int
    restored: int
    duplicates: int
    quarantined: int
    fetch_failures: int
    gaps_probed: int
    gaps_found: int
    error: str | None
    health: dict = field(default_factory=dict)
    # spent: requests by what they were spent on; left: requests not sent for lack of budget;
    # revisit: the revisit plan's figures (planned, left for lack of budget, expected new versions)
    budget: dict = field(default_factory=dict)

    @classmethod
    def of(cls, run: CrawlRun) -> "RunSummary":
        counters = run.stats or {}
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        counts = {name: getattr(run, name) or 0 for name in (
            "pages_fetched", "articles_seen", "articles_new", "versions_written", "unchanged", "taken_down",
            "restored", "duplicates", "quarantined", "fetch_failures")}
        return cls(id=run.id, kind=run.kind, job=run.job, status=run.status, base_url=run.base_url,
                   started_at=run.started_at, finished_at=run.finished_at, duration_seconds=duration,
                   requests=run.requests, allowance=run.allowance, **counts, edits=edits_of(run),
                   gaps_probed=stats_keys.count(counters, stats_keys.GAPS_PROBED),
                   gaps_found=stats_keys.count(counters, stats_keys.GAPS_FOUND),
                   error=run.error, health=run.health if isinstance(run.health, dict) else {},
                   budget=budget.report(counters))

    def to_json(self) -> dict:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def edits_of(run: CrawlRun) -> int:
    """Edits are the versions a run wrote that were neither new, nor takedowns, nor restorations."""
    return max(0, (run.versions_written or 0) - (run.articles_new or 0) - (run.taken_down or 0)
               - (run.restored or 0))
