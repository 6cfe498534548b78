"""One crawl run as everything reports it (`crawl` and `backfill` print it, `status` and the
daemon's notifications carry it, the runs API answers it), made from a `crawl_runs` row.

Plain values only, and no database import: the crawl's own process receives its run's summary
from the archive writer (ops/crawl.py) without importing SQLAlchemy."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from pipeline import stats as keys


@dataclass
class RunSummary:
    """A run's summary; `of` reads it off its `crawl_runs` row."""

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
    def of(cls, run) -> "RunSummary":
        counters = run.stats or {}
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        counts = {name: getattr(run, name) or 0 for name in (
            "pages_fetched", "articles_seen", "articles_new", "versions_written", "unchanged", "taken_down",
            "restored", "duplicates", "quarantined", "fetch_failures")}
        return cls(id=run.id, kind=run.kind, job=run.job, status=run.status, base_url=run.base_url,
                   started_at=run.started_at, finished_at=run.finished_at, duration_seconds=duration,
                   requests=run.requests, allowance=run.allowance, **counts, edits=edits_of(run),
                   gaps_probed=keys.count(counters, keys.GAPS_PROBED),
                   gaps_found=keys.count(counters, keys.GAPS_FOUND),
                   error=run.error, health=run.health if isinstance(run.health, dict) else {},
                   budget=budget_report(counters))

    def to_json(self) -> dict:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def edits_of(run) -> int:
    """Edits are the versions a run wrote that were neither new, nor takedowns, nor restorations."""
    return max(0, (run.versions_written or 0) - (run.articles_new or 0) - (run.taken_down or 0)
               - (run.restored or 0))


def budget_report(stats: dict) -> dict:
    """Where a run's requests went and what its budget left undone, from its stats."""
    def by_kind(prefix: str) -> dict:
        return {key.removeprefix(prefix): int(value) for key, value in stats.items()
                if key.startswith(prefix) and isinstance(value, (int, float))}
    return {"spent": by_kind(keys.SPENT), "left": by_kind(keys.LEFT),
            "revisit": {key.removeprefix(keys.REVISIT): value for key, value in stats.items()
                        if key.startswith(keys.REVISIT)}}
