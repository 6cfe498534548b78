"""The daemon's schedule: jobs with cron expressions (or a seconds interval) in a time zone.

Read from the `[daemon]` section of the settings file. The default is one
frequent light job: every five minutes it reads the channels' first list
pages, fetches what is new, and spends the rest of its share of the request
budget (1/288 of a day's) on the revisits and gap probes the policy values
most. A nightly revisit of everything cannot finish under a polite budget on
a large portal, and spends most of its requests on pages that did not change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ops.config import ConfigError, Settings

DEFAULT_JOBS = {
    # slack 0: a channel's walk stops at its first page without anything new. Five minutes after
    # the last run that page still shows articles the archive holds, unless the channel published
    # 20 since (then the walk goes on); an article missed anyway is found by the gap probes.
    "frequent": {"every_seconds": 300, "walk": "incremental", "slack": 0, "revisit": "policy",
                 "timeout_seconds": 3600},
}
JOB_KEYS = {"cron", "every_seconds", "walk", "slack", "revisit", "timeout_seconds", "conditional", "probe_gaps"}


@dataclass(frozen=True)
class JobSpec:
    name: str
    cron: str | None = None
    every_seconds: float | None = None
    walk: str = "incremental"
    slack: int = 1  # an incremental walk's pages without anything new before it stops a channel
    revisit: str = "policy"
    timeout_seconds: float = 1800
    conditional: bool = True
    probe_gaps: bool = True

    def trigger(self, tz: ZoneInfo):
        if self.every_seconds:
            return IntervalTrigger(seconds=self.every_seconds, timezone=tz)
        return CronTrigger.from_crontab(self.cron, timezone=tz)

    def period(self, tz: ZoneInfo, now: datetime) -> timedelta:
        """How far apart its runs are (a cron job's: from its next two slots): its run's share of
        the day's request budget."""
        if self.every_seconds:
            return timedelta(seconds=self.every_seconds)
        trigger = self.trigger(tz)
        first = trigger.get_next_fire_time(None, now)
        second = trigger.get_next_fire_time(first, first) if first else None
        return (second - first) if first and second else timedelta(days=1)


@dataclass(frozen=True)
class Schedule:
    timezone: str = "Asia/Shanghai"
    # A slot missed by less than this (daemon down, machine asleep) still runs, once.
    misfire_grace_seconds: float = 600
    # On SIGTERM/SIGINT, how long the running crawl may take to finish before it is killed.
    stop_grace_seconds: float = 30
    jobs: tuple[JobSpec, ...] = field(default_factory=tuple)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_runs(self, count: int, now: datetime) -> dict[str, list[datetime]]:
        out = {}
        for job in self.jobs:
            trigger, times, prev = job.trigger(self.tz), [], None
            moment = now
            for _ in range(count):
                nxt = trigger.get_next_fire_time(prev, moment)
                if nxt is None:
                    break
                times.append(nxt)
                prev, moment = nxt, nxt
            out[job.name] = times
        return out


def load_schedule(settings: Settings) -> Schedule:
    section = dict(settings.extra.get("daemon", {}))
    jobs_conf = section.pop("jobs", None) or DEFAULT_JOBS
    unknown = set(section) - {"timezone", "misfire_grace_seconds", "stop_grace_seconds"}
    if unknown:
        raise ConfigError(f"unknown [daemon] settings: {', '.join(sorted(unknown))}")
    jobs = []
    for name, conf in jobs_conf.items():
        bad = set(conf) - JOB_KEYS
        if bad:
            raise ConfigError(f"unknown settings for daemon job {name!r}: {', '.join(sorted(bad))}")
        if bool(conf.get("cron")) == bool(conf.get("every_seconds")):
            raise ConfigError(f"daemon job {name!r} needs exactly one of cron or every_seconds")
        if conf.get("walk", "incremental") not in ("incremental", "full"):
            raise ConfigError(f"daemon job {name!r}: walk must be incremental or full")
        if conf.get("revisit", "policy") not in ("policy", "due", "all", "none"):
            raise ConfigError(f"daemon job {name!r}: revisit must be policy, all or none")
        if conf.get("revisit") == "due":  # the name it had before the policy learned
            conf = {**conf, "revisit": "policy"}
        spec = JobSpec(name=name, **conf)
        try:
            spec.trigger(ZoneInfo(section.get("timezone", "Asia/Shanghai")))
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"daemon job {name!r}: bad schedule: {exc}") from None
        jobs.append(spec)
    return Schedule(jobs=tuple(jobs), **section)
