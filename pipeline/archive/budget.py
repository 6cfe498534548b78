"""The request budget: how many requests a run may send to the portal.

A live portal is crawled under a politeness budget (`requests_per_day`, and
optionally `requests_per_run`). The ledger is the crawl_runs table: every run
records the requests it sent (a run that died before it could count is charged
its whole allowance), so the budget holds across runs, processes and restarts:

- no run brings the requests of the last 24 hours above `requests_per_day`;
- a scheduled run takes its job's share of the day: requests_per_day x the
  job's period / 24 hours (a job every 5 minutes spends 1/288 of the day's
  budget per run, so revisits are spread over the day instead of flooding
  the portal at night). A missed run's share is not carried over;
- a manual crawl or a backfill takes what the last 24 hours leave;
- `requests_per_run`, if set, caps every run.

0 means no limit. Inside a crawl the allowance is enforced request by
request (spiders.middlewares.RequestBudget), in an order that puts list
pages, new articles and failed fetches first, then the revisits and probes
the policy values most (pipeline/revisit.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.archive.models import CrawlRun

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Budget:
    per_day: int = 0  # 0: no limit
    per_run: int = 0

    @property
    def limited(self) -> bool:
        return self.per_day > 0 or self.per_run > 0


def spent(session: Session, since: datetime, now: datetime) -> int:
    """Requests charged to runs started in (since, now]: what they sent, or, for a run that never
    counted (killed, still running), its whole allowance."""
    charged = func.coalesce(CrawlRun.requests, CrawlRun.allowance, 0)
    return int(session.scalar(select(func.coalesce(func.sum(charged), 0)).where(
        CrawlRun.started_at > since, CrawlRun.started_at <= now)) or 0)


def allowance(session: Session, budget: Budget, now: datetime, period: timedelta | None = None) -> int | None:
    """What a run starting now may send (None: no limit). `period` is a scheduled job's period:
    the run then takes the job's share of the day."""
    if not budget.limited:
        return None
    limits = []
    if budget.per_day > 0:
        limits.append(max(0, budget.per_day - spent(session, now - DAY, now)))
        if period is not None:
            limits.append(max(1, int(budget.per_day * period / DAY)))
    if budget.per_run > 0:
        limits.append(budget.per_run)
    return min(limits)


def pace(delay: float, per_day: int) -> float | None:
    """Requests per second the settings allow at most (None: no pacing at all): one request per
    `delay` (Scrapy waits that long between two requests to one host, whatever the concurrency),
    and the day's budget spread evenly."""
    rates = []
    if delay > 0:
        rates.append(1.0 / delay)
    if per_day > 0:
        rates.append(per_day / DAY.total_seconds())
    return min(rates) if rates else None


def duration(requests: int, rate: float | None) -> str:
    """How long `requests` take at `rate` requests per second, in words."""
    if rate is None:
        return "as fast as the portal answers"
    seconds = requests / rate
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} minutes"
    if seconds < 36 * 3600:
        return f"about {seconds / 3600:.1f} hours"
    return f"about {seconds / 86400:.1f} days"
