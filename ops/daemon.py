"""The daemon: APScheduler keeps the archive current, one crawl at a time, each in a child process.

Job state lives in the archive (SQLAlchemy job store), so a restarted daemon
keeps its schedule and sees the slots it missed: one missed by less than the
grace period runs once (coalesced), older ones are recorded as skipped runs.
Two leases in the archive keep this safe with several daemons: the daemon
lease makes one daemon the scheduler (APScheduler 3's job store must not be
shared by two live schedulers) while the others wait on hot standby and take
over when it expires; the crawl lease means no daemon, manual crawl or
backfill crawls at the same time as another (the loser records who held it).
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import MetaData

from ops import notify
from ops.child import CrawlChild
from ops.config import Settings
from ops.crawl import CrawlPlan
from ops.lease import (
    Heartbeat,
    current_holder,
    holder_id,
    mark_abandoned,
    release,
    this_process,
    try_acquire,
)
from ops.schedule import JobSpec, Schedule
from pipeline.archive import runs
from pipeline.archive.db import open_archive
from spiders.walk import ListWalk

log = logging.getLogger("portal_archive.daemon")
POLL_SECONDS = 0.5
DAEMON_LEASE = "daemon"
_ACTIVE: "Daemon | None" = None


def run_scheduled_job(name: str) -> None:
    """The scheduler's job function (stored by reference in the job store)."""
    if _ACTIVE is None:
        raise RuntimeError("no daemon is running in this process")
    _ACTIVE.run_job(name)


class Daemon:
    def __init__(self, settings: Settings, schedule: Schedule):
        self.settings = settings
        self.schedule = schedule
        self.jobs = {job.name: job for job in schedule.jobs}
        self.stopping = threading.Event()
        self.ttl = timedelta(seconds=settings.lease_ttl_seconds)
        self.engine = None
        self.scheduler = None

    # --- lifecycle --------------------------------------------------------
    def run(self) -> None:
        global _ACTIVE
        _ACTIVE = self
        self.engine = open_archive(self.settings.db, auto_upgrade=self.settings.is_default_db)
        self._install_signals()
        me = holder_id()
        try:
            while not self.stopping.is_set():
                if not try_acquire(self.engine, me, "scheduler", self.ttl, DAEMON_LEASE):
                    info = current_holder(self.engine, DAEMON_LEASE)
                    log.info("standby: another daemon schedules this archive (%s)",
                             info.describe() if info else "just taken")
                    self.stopping.wait(self.ttl.total_seconds() / 3)
                    continue
                with Heartbeat(self.engine, me, self.ttl, name=DAEMON_LEASE) as beat:
                    self._schedule(beat)
        finally:
            release(self.engine, me, DAEMON_LEASE)
            self.engine.dispose()
            _ACTIVE = None
            log.info("daemon stopped")

    def _schedule(self, beat: Heartbeat) -> None:
        for run_id in mark_abandoned(self.engine, stale_after=self.ttl * 3):
            log.warning("run %s was left running by a dead process: marked abandoned", run_id)
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine, metadata=MetaData())},
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.jobs)))},
            job_defaults=self._job_options(),
            timezone=self.schedule.tz,
        )
        scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
        self.scheduler = scheduler
        scheduler.start(paused=True)
        self._sync_jobs(scheduler)
        scheduler.resume()
        log.info("daemon started: %s", ", ".join(
            f"{j.id} next at {j.next_run_time:%Y-%m-%d %H:%M:%S %Z}" for j in scheduler.get_jobs()))
        try:
            while not self.stopping.wait(POLL_SECONDS):
                if beat.lost:
                    log.error("lost the daemon lease (stalled longer than its ttl): back to standby")
                    break
        finally:
            log.info("daemon stopping: no new runs; waiting for the running crawl")
            scheduler.shutdown(wait=True)

    def _job_options(self) -> dict:
        """The options every job is stored with: one crawl at a time, missed slots coalesced into one run."""
        return {"coalesce": True, "max_instances": 1,
                "misfire_grace_time": int(self.schedule.misfire_grace_seconds)}

    def _sync_jobs(self, scheduler) -> None:
        """Bring the stored jobs in line with the config.

        A stored job keeps the options it was added with, so comparing the trigger alone would leave a
        changed grace period unapplied. A job whose trigger changed is replaced (its slots start afresh);
        one whose only options changed is modified in place, so its next run time, and with it any slot
        missed while the daemon was down, stays as it was.
        """
        options = self._job_options()
        for spec in self.jobs.values():
            trigger = spec.trigger(self.schedule.tz)
            stored = scheduler.get_job(spec.name)
            if stored is None or str(stored.trigger) != str(trigger):
                scheduler.add_job(run_scheduled_job, trigger, args=[spec.name], id=spec.name, name=spec.name,
                                  replace_existing=True, **options)
                continue
            changed = {key: value for key, value in options.items() if getattr(stored, key) != value}
            if changed:
                log.info("job %s: options changed in the config, updated: %s", spec.name,
                         ", ".join(f"{key} {getattr(stored, key)} -> {value}" for key, value in changed.items()))
                scheduler.modify_job(spec.name, **changed)
        for stored in scheduler.get_jobs():
            if stored.id not in self.jobs:
                stored.remove()

    def _install_signals(self) -> None:
        def stop(signum, _frame):
            log.info("received %s", signal.Signals(signum).name)
            self.stopping.set()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _on_event(self, event) -> None:
        if event.code == EVENT_JOB_MISSED:
            at = event.scheduled_run_time.astimezone(timezone.utc)
            log.warning("job %s missed its slot at %s: older than the grace period, skipped",
                        event.job_id, at)
            # The grace that decided is the job's own (stored with it), which need not be the config's.
            job = self.scheduler.get_job(event.job_id, event.jobstore) if self.scheduler else None
            grace = (f"the {job.misfire_grace_time} s grace period" if job and job.misfire_grace_time is not None
                     else "its grace period")
            runs.record_skipped(self.engine, "crawl", self.settings.base_url, event.job_id,
                                f"missed its slot at {at:%Y-%m-%d %H:%M:%S} UTC (daemon not running); "
                                f"older than {grace}")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("job %s is still running: this slot is not started twice", event.job_id)
        elif event.code == EVENT_JOB_ERROR:
            log.error("job %s raised %r", event.job_id, event.exception)

    # --- one job ------------------------------------------------------------
    def run_job(self, name: str) -> None:
        spec = self.jobs[name]
        if self.stopping.is_set():
            return
        holder = holder_id()
        if not try_acquire(self.engine, holder, name, self.ttl):
            info = current_holder(self.engine)
            who = info.describe() if info else "another process"
            log.info("job %s not started: the archive is being crawled by %s", name, who)
            runs.record_skipped(self.engine, "crawl", self.settings.base_url, name, f"lease held by {who}")
            return
        try:
            mark_abandoned(self.engine, stale_after=self.ttl * 3)
            plan = self._plan(spec)
            run_id = runs.start_run(self.engine, "crawl", self.settings.base_url, plan.options(), job=name,
                                    owner=this_process())
            log.info("job %s: run %s started", name, run_id)
            with Heartbeat(self.engine, holder, self.ttl, run_id=run_id):
                self._supervise(spec, run_id, CrawlChild(self.settings, plan=plan, run_id=run_id,
                                                         lease_held=True))
        finally:
            release(self.engine, holder)
        self._notify(name, run_id)

    def _notify(self, name: str, run_id: int) -> None:
        """Tell the configured command or URL about a run that needs a person (degraded, failed)."""
        try:
            summary = notify.run_summary(self.engine, run_id)
            if not notify.wanted(self.settings, summary["status"]):
                return
            for result in notify.notify(self.settings, summary):
                log.info("job %s: run %s %s: %s", name, run_id, summary["status"], result)
        except Exception as exc:  # telling someone must never stop the daemon
            log.error("job %s: run %s: notification failed: %s", name, run_id, exc)

    def _plan(self, spec: JobSpec) -> CrawlPlan:
        return CrawlPlan(job=spec.name, walk=ListWalk(mode=spec.walk, slack=spec.slack), revisit=spec.revisit,
                         conditional=spec.conditional, probe_gaps=spec.probe_gaps,
                         period=spec.period(self.schedule.tz, now_utc()))

    def _supervise(self, spec: JobSpec, run_id: int, child: CrawlChild) -> None:
        deadline = time.monotonic() + spec.timeout_seconds
        stop_deadline = None
        while not child.wait(POLL_SECONDS):
            now = time.monotonic()
            if self.stopping.is_set() and stop_deadline is None:
                log.info("job %s: asking run %s to stop (grace %.0f s)", spec.name, run_id,
                         self.schedule.stop_grace_seconds)
                child.terminate()
                stop_deadline = now + self.schedule.stop_grace_seconds
            if stop_deadline is not None and now > stop_deadline:
                child.kill()
                runs.close_run(self.engine, run_id, "interrupted", "stopped by signal; killed after the grace period")
                log.warning("job %s: run %s killed after the grace period", spec.name, run_id)
                return
            if now > deadline:
                child.kill()
                runs.close_run(self.engine, run_id, "failed", f"timed out after {spec.timeout_seconds:.0f} s")
                log.error("job %s: run %s timed out", spec.name, run_id)
                return
        try:
            summary = child.result()
            log.info("job %s: run %s %s: %s new, %s versions, %s unchanged, %s taken down, %s failed fetches",
                     spec.name, run_id, summary.status, summary.articles_new, summary.versions_written,
                     summary.unchanged, summary.taken_down, summary.fetch_failures)
        except RuntimeError as exc:
            if stop_deadline is not None:
                # Asked to stop before its crawl could answer a signal (still starting): SIGTERM's
                # default ended it. That is the stop the daemon asked for, not a failure.
                if runs.close_run(self.engine, run_id, "interrupted", f"stopped by signal while starting ({exc})"):
                    log.warning("job %s: run %s stopped while starting", spec.name, run_id)
            elif runs.close_run(self.engine, run_id, "failed", str(exc)):
                log.error("job %s: run %s failed: %s", spec.name, run_id, exc)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
