"""The daemon's schedule: jobs with cron expressions (or a seconds interval) in a time zone.

Read from the `[daemon]` section of the settings file; the defaults are a
light incremental crawl every 15 minutes and a deep revisit every night.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.config import ConfigError, Settings

DEFAULT_JOBS = {
    "incremental": {"cron": "*/15 * * * *", "walk": "incremental", "revisit": "due", "timeout_seconds": 1800},
    "deep": {"cron": "30 2 * * *", "walk": "full", "revisit": "all", "timeout_seconds": 4 * 3600},
}
JOB_KEYS = {"cron", "every_seconds", "walk", "revisit", "timeout_seconds", "conditional", "probe_gaps"}


@dataclass(frozen=True)
class JobSpec:
    name: str
    cron: str | None = None
    every_seconds: float | None = None
    walk: str = "incremental"
    revisit: str = "due"
    timeout_seconds: float = 1800
    conditional: bool = True
    probe_gaps: bool = True

    def trigger(self, tz: ZoneInfo):
        if self.every_seconds:
            return IntervalTrigger(seconds=self.every_seconds, timezone=tz)
        return CronTrigger.from_crontab(self.cron, timezone=tz)


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
        if conf.get("revisit", "due") not in ("due", "all", "none"):
            raise ConfigError(f"daemon job {name!r}: revisit must be due, all or none")
        spec = JobSpec(name=name, **conf)
        try:
            spec.trigger(ZoneInfo(section.get("timezone", "Asia/Shanghai")))
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"daemon job {name!r}: bad schedule: {exc}") from None
        jobs.append(spec)
    return Schedule(jobs=tuple(jobs), **section)
