"""The archive's side of one crawl: what a run asks of the archive before its first request and
after its last.

Before: the database checked and brought to head, the lease taken, the run opened, what the
request budget allows it, its plan (failed fetches, revisits, gap probes), the aids the archive
holds and the raw-page dictionary (`open_run`). After: the run's health judged, the run closed
with its counts, the dictionaries kept up, the lease given back (`finish_run`).

With an archive writer process (spiders/helpers.py; the default with a second core) these
run there, and so does the heartbeat that keeps the lease: the crawl's own process imports
Scrapy meanwhile and never imports SQLAlchemy (ops/crawl.py). Without one they run in the
crawl's process. Either way they are the same calls in the same order; what they hold between
`open_run` and `finish_run` (the engine, the heartbeat, the disk reserve) is kept in the
process that opened the run.
"""
from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ops.config import ConfigError, Settings
from ops.crawl import CrawlPlan, Opened, Refused
from ops.lease import Heartbeat, LeaseHeld, acquire, holder_id, mark_abandoned, release, this_process
from ops.reserve import DiskReserve
from pipeline import stats as keys
from pipeline.archive import budget, health, rawpages, revisit, runs
from pipeline.archive.db import ArchiveError, check_database, first_line, make_engine, open_archive, session_scope
from pipeline.archive.models import BackfillArticle, CrawlRun
from pipeline.archive.queries import archived_aids
from pipeline.archive.summary import RunSummary
from pipeline.reading.compression import Dictionary
from pipeline.reading.profile import ProfileError, load_profile
from spiders.walk import SortedAids

FINISH_STATUS = {"finished": "succeeded", "shutdown": "interrupted"}
log = logging.getLogger(__name__)


@dataclass
class _Held:
    """What an open run holds in the process that opened it, until finish_run or close_run."""

    engine: Engine
    heartbeat: Heartbeat | None
    reserve: DiskReserve


_held: _Held | None = None  # one run a process: the Twisted reactor runs once


def open_run(settings: Settings, plan: CrawlPlan, crawler_pid: int, run_id: int | None = None,
             lease_held: bool = False) -> Opened | Refused:
    """Open the run of the crawl in process `crawler_pid` (its lease and its run are that
    process's: it dies with its writer). `run_id` and `lease_held` are for a parent (the daemon)
    that opened the run and holds the lease itself."""
    global _held
    holder = None if lease_held else holder_id(crawler_pid)
    ttl = timedelta(seconds=settings.lease_ttl_seconds)
    engine = None
    try:
        check_database(settings.db, create=True)
        engine = open_archive(settings.db, auto_upgrade=settings.is_default_db,
                              busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        if holder is not None:
            acquire(engine, holder, plan.job or plan.kind, ttl)
        _held = _Held(engine, None, DiskReserve(settings.db))  # from here on, close_run undoes it
        mark_abandoned(engine, stale_after=ttl * 3)
        owner = this_process(crawler_pid)
        if run_id is None:
            run_id = runs.start_run(engine, plan.kind, settings.base_url, plan.options(), job=plan.job,
                                    backfill_id=plan.backfill_id, owner=owner)
        else:  # opened by the daemon, which answered for it until now
            runs.claim_run(engine, run_id, *owner)
        _held.reserve.take()
        if holder is not None:
            _held.heartbeat = Heartbeat(engine, holder, ttl, run_id=run_id).__enter__()
        return _plan(settings, plan, engine, Opened(run_id=run_id, holder=holder))
    except BaseException as exc:
        if _held is not None:
            close_run(settings, holder)
        elif engine is not None:
            engine.dispose()
        refused = _refused(exc)
        if refused is None:
            raise
        return refused


def _refused(exc: BaseException) -> Refused | None:
    """What the command line says of `exc` (ops/cli's `problems`), as the crawl's process receives
    it; None for an error that is not a refusal."""
    if isinstance(exc, LeaseHeld):
        return Refused(str(exc), busy=True)
    if isinstance(exc, (ArchiveError, ConfigError, ProfileError)):
        return Refused(str(exc))
    if isinstance(exc, SQLAlchemyError):
        return Refused(f"database error: {first_line(exc)}")
    return None


def _plan(settings: Settings, plan: CrawlPlan, engine: Engine, opened: Opened) -> Opened:
    now = datetime.now(timezone.utc)
    opened.allowance = allowance = run_allowance(engine, settings, opened.run_id, now, plan.period)
    if allowance == 0:
        with session_scope(engine) as session:
            spent = budget.spent(session, now - budget.DAY, now)
        reason = (f"request budget spent: {spent} requests in the last 24 hours of {settings.requests_per_day} "
                  f"a day (requests_per_day)")
        run = runs.finish_run_patiently(engine, opened.run_id, "skipped", {keys.BUDGET_ALLOWANCE: 0}, reason)
        opened.skipped = RunSummary.of(run)
        close_run(settings, opened.holder)
        return opened
    profile = load_profile(settings.profile)
    channel_names = [profile.channel(c).name for c in plan.channels] if plan.channels else None
    visits = plan_run(engine, settings, plan, now, allowance, channel_names)
    opened.visits, opened.failed_lists, opened.visit_stats = list(visits.visits), visits.failed_lists, visits.stats
    with session_scope(engine) as session:
        opened.known_aids = archived_aids(session)
        if plan.backfill_id:
            # What this backfill archived in its earlier runs; what it archives now is the crawl's own.
            opened.skip_aids = array("q", sorted(session.scalars(select(BackfillArticle.aid).where(
                BackfillArticle.backfill_id == plan.backfill_id))))
        opened.dictionary = rawpages.current(session)
    skipped = SortedAids(opened.skip_aids)(plan.probe_aids) if opened.skip_aids is not None else set()
    opened.probes = [aid for aid in plan.probe_aids if aid not in skipped]
    return opened


def finish_run(settings: Settings, opened: Opened, stats: dict, error: str | None, listed_new: set[int]) -> RunSummary:
    """Judge the crawl and close its run with its counts; then keep the dictionaries up and give the
    lease back. In the process that opened the run, or in the crawl's if that one is gone."""
    held = _holding(settings)
    engine = held.engine
    try:
        stats.update(opened.visit_stats)
        stats[keys.GAPS_PROBED] = keys.count(stats, keys.SPENT + "probe")
        stats[keys.RETRY_FAILED_LISTS] = len(opened.failed_lists)
        if opened.allowance is not None:
            stats[keys.BUDGET_ALLOWANCE] = opened.allowance
        reason = stats.get(keys.FINISH_REASON)
        error = error or stats.get(keys.ARCHIVE_ERROR) or keys.callbacks_raised(stats)
        failed = keys.count(stats, keys.FETCH_FAILED)
        if (not error and reason == "finished" and not keys.answered(stats) and not keys.total(stats, keys.LEFT)
                and (failed or not keys.count(stats, keys.LIST_PAGES))):
            # Every request failed: a run that could not see the portal did not succeed.
            error = f"no page could be fetched from {settings.base_url} ({failed} failed fetches)"
        status = "failed" if error else FINISH_STATUS.get(reason, "failed")
        if status == "failed" and not error:
            error = f"crawl ended with reason {reason!r}"
        stats[keys.LISTED_NEW] = len(listed_new)
        try:
            broken = health.known_broken(engine, opened.run_id)
        except OperationalError:  # the database is away (often why the crawl stopped): judge without it
            broken = 0
        figures = health.run_health(stats, len(listed_new), broken)
        report = health.assess(figures, health.Thresholds.from_settings(settings))
        if status == "succeeded":
            error = health.unarchived_news(engine, opened.run_id, listed_new, stats)
            status = "failed" if error else health.DEGRADED if report["degraded"] else status
        held.reserve.release()  # the room to close the run in, should the crawl have filled the disk
        run = runs.finish_run_patiently(engine, opened.run_id, status, stats, error, health=report)
        if status != "failed":
            maintain_dictionaries(engine, settings)
        return RunSummary.of(run)
    finally:
        close_run(settings, opened.holder)


def _holding(settings: Settings) -> _Held:
    """The open run's hold; in the crawl's process, its writer gone, a fresh one to close it with."""
    global _held
    if _held is None:
        _held = _Held(make_engine(settings.db, settings.sqlite_busy_timeout_ms), None, DiskReserve(settings.db))
    return _held


def close_run(settings: Settings, holder: str | None) -> None:
    """Stop the heartbeat, give back the disk reserve and the lease (held by `holder`; None: the
    caller's), close the engine. Also after a crawl that failed before it could be finished."""
    global _held
    held, _held = _holding(settings), None
    if held.heartbeat is not None:
        held.heartbeat.__exit__(None, None, None)
    held.reserve.release()
    try:
        if holder is not None:
            release(held.engine, holder)
    finally:
        held.engine.dispose()


# --- also used by the distributed coordinator and the WARC import ------------------------
def aids_in(engine: Engine, query_for):
    """A predicate over a list page's aids, answered by one short query per page."""
    def check(aids: list[int]) -> set[int]:
        with session_scope(engine) as session:
            return set(session.scalars(query_for(aids)))
    return check


def current_dictionary(engine: Engine) -> Dictionary | None:
    """The dictionary the crawl's readers compress pages with: the archive's newest."""
    with session_scope(engine) as session:
        return rawpages.current(session)


def maintain_dictionaries(engine: Engine, settings: Settings) -> str | None:
    """After a run: train the archive's first raw-page dictionary, or a new one when the portal's
    template changed (pipeline/archive/rawpages.py); what it did, or None. A failure here costs
    compression only, never the run: it is logged and tried again after the next run."""
    try:
        with session_scope(engine) as session:
            said = rawpages.maintain(session, after_pages=settings.dictionary_after_pages,
                                     window=settings.dictionary_window)
    except Exception:
        log.exception("raw-page dictionary maintenance failed")
        return None
    if said:
        log.info("raw pages: %s", said)
    return said


def run_allowance(engine: Engine, settings: Settings, run_id: int, now: datetime,
                  period: timedelta | None) -> int | None:
    """What the request budget allows this run (pipeline/budget.py), recorded on the run at once:
    a run that dies before it can count is charged all of it."""
    with session_scope(engine) as session:
        allowed = budget.allowance(session, budget.Budget(settings.requests_per_day, settings.requests_per_run),
                                   now, period)
        session.get(CrawlRun, run_id).allowance = allowed
    return allowed


def plan_run(engine: Engine, settings: Settings, plan: CrawlPlan, now: datetime, allowance: int | None,
             channel_names: list[str] | None):
    """The run's article requests beside its list walk: failed fetches, revisits, gap probes."""
    return revisit.plan_visits(
        engine, plan.revisit, now, allowance, channels=channel_names, conditional=plan.conditional,
        probe_gaps=plan.probe_gaps, retry_failures=plan.kind == "crawl",
        floor=timedelta(days=settings.revisit_floor_days) if settings.revisit_floor_days else None,
        strategy=settings.revisit_strategy)
