"""Crawling past one machine: a shared Redis frontier (scrapy-redis) and any number of workers.

`portal-archive crawl --distributed` (or `backfill --distributed`) opens a
run, takes the archive's crawl lease, pushes the run's seeds to Redis and
coordinates: it waits until the frontier is drained and no worker is alive,
then closes the run with the workers' counts and deletes the run's keys, so
the Redis memory a run used is released and the next run can revisit every
page. `portal-archive worker` joins the current run (or waits for one),
crawls from the shared queue, writes to the archive through the same
pipeline as a local crawl, and leaves after an idle time.

Keys (all under portal-archive:run:<id>:): seeds (list), requests (the
scrapy-redis queue), dupefilter (set), workers:<worker> (a heartbeat with a
TTL), stats (hash of summed counters), budget (the requests all workers sent,
counted against the run's allowance). portal-archive:current names the run.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import redis

from ops.config import ConfigError, Settings
from ops.crawl import (
    CrawlPlan,
    _validators,
    current_dictionary,
    maintain_dictionaries,
    plan_run,
    reader_processes,
    run_allowance,
    scrapy_settings,
)
from ops.lease import Heartbeat, acquire, holder_id, mark_abandoned, release
from pipeline import stats as stats_keys
from pipeline.archive import runs
from pipeline.archive.db import open_archive
from pipeline.archive.runs import RunSummary
from pipeline.reading.profile import load_profile
from spiders.distributed import DistributedPortalSpider
from spiders.run import run_spider

log = logging.getLogger("portal_archive.distributed")
CURRENT = "portal-archive:current"
WORKER_TTL = 10  # seconds a worker counts as alive after its last heartbeat
BEAT = 2.0


def keys(run_id: int) -> dict[str, str]:
    base = f"portal-archive:run:{run_id}"
    return ({k: f"{base}:{k}" for k in ("seeds", "requests", "dupefilter", "stats", "budget")}
            | {"workers": f"{base}:workers:"})


def connect(settings: Settings) -> redis.Redis:
    if not settings.redis:
        raise ConfigError("a distributed crawl needs PORTAL_ARCHIVE_REDIS (redis://host:port/db)")
    client = redis.Redis.from_url(settings.redis)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"cannot reach Redis: {exc}") from None
    return client


def _seeds(settings: Settings, plan: CrawlPlan, engine, now: datetime, visits):
    profile = load_profile(settings.profile)
    channels = [profile.channel(c) for c in plan.channels] if plan.channels else list(profile.channels)
    if plan.walk.mode != "none":
        for channel in channels:
            yield {"kind": "list", "url": profile.list_page_url(settings.base_url, channel, plan.walk.first_page()),
                   "page": plan.walk.first_page()}
    for url in visits.failed_lists:
        yield {"kind": "list", "url": url, "budget": "retry"}
    for target in visits.visits:
        url = target.url or profile.mobile_article_url(settings.base_url, target.aid)
        yield {"kind": "article", "url": url, "etag": target.etag, "last_modified": target.last_modified,
               "probe": target.kind == "probe", "budget": target.kind}
    for aid in plan.probe_aids:
        yield {"kind": "article", "url": profile.mobile_article_url(settings.base_url, aid), "probe": True,
               "budget": "probe"}


def coordinate(settings: Settings, plan: CrawlPlan, poll: float = 1.0, echo=print) -> RunSummary:
    """Open a distributed run, seed it, wait for the workers to drain it, close it."""
    client = connect(settings)
    engine = open_archive(settings.db, auto_upgrade=settings.is_default_db)
    ttl = timedelta(seconds=settings.lease_ttl_seconds)
    holder = holder_id()
    acquire(engine, holder, plan.job or f"{plan.kind} --distributed", ttl)
    try:
        mark_abandoned(engine, stale_after=ttl * 3)
        run_id = runs.start_run(engine, plan.kind, settings.base_url, {**plan.options(), "distributed": True},
                                job=plan.job, backfill_id=plan.backfill_id)
        k = keys(run_id)
        now = datetime.now(timezone.utc)
        allowance = run_allowance(engine, settings, run_id, now, plan.period)
        names = [load_profile(settings.profile).channel(c).name for c in plan.channels] if plan.channels else None
        visits = plan_run(engine, settings, plan, now, allowance, names)
        pushed = 0
        batch = []
        for seed in _seeds(settings, plan, engine, now, visits):
            batch.append(json.dumps(seed))
            if len(batch) >= 500:
                pushed += client.rpush(k["seeds"], *batch) and len(batch)
                batch = []
        if batch:
            client.rpush(k["seeds"], *batch)
            pushed += len(batch)
        client.set(CURRENT, json.dumps({"run_id": run_id, "base_url": settings.base_url, "plan": plan.options(),
                                        "backfill_id": plan.backfill_id, "allowance": allowance}))
        echo(f"run {run_id}: {pushed} seeds pushed to Redis; waiting for workers (portal-archive worker)")
        with Heartbeat(engine, holder, ttl, run_id=run_id):
            _wait_until_drained(client, k, settings.worker_idle_seconds, poll)
        stats = {key.decode(): int(value) for key, value in client.hgetall(k["stats"]).items()}
        error = None
        if not stats.get("downloader/response_count"):
            error = "no worker fetched anything for this run"
        stats = {**stats, **visits.stats, "distributed/seeds": pushed}
        if allowance is not None:
            stats["budget/allowance"] = allowance
        run = runs.finish_run_patiently(engine, run_id, "failed" if error else "succeeded", stats, error)
        if not error:
            maintain_dictionaries(engine, settings)
        client.delete(CURRENT, k["seeds"], k["requests"], k["dupefilter"], k["stats"], k["budget"])
        return RunSummary.of(run)
    finally:
        release(engine, holder)
        engine.dispose()


def _alive_workers(client: redis.Redis, k: dict) -> int:
    return sum(1 for _ in client.scan_iter(match=k["workers"] + "*", count=100))


def _wait_until_drained(client: redis.Redis, k: dict, idle_seconds: float, poll: float) -> None:
    """Until nothing is queued and no worker has been alive for a while (workers that joined
    have left after their idle time, and a killed one's heartbeat has expired)."""
    quiet_since = None
    while True:
        pending = client.llen(k["seeds"]) + client.zcard(k["requests"])
        alive = _alive_workers(client, k)
        if pending or alive:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > max(2 * poll, 1.0) and client.hlen(k["stats"]):
            return
        time.sleep(poll)


def run_worker(settings: Settings, wait_seconds: float | None = None) -> dict:
    """Join the current distributed run and crawl until idle. Runs the reactor: once per process."""
    client = connect(settings)
    wait_seconds = settings.worker_idle_seconds if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait_seconds
    current = client.get(CURRENT)
    while current is None and time.monotonic() < deadline:
        time.sleep(0.5)
        current = client.get(CURRENT)
    if current is None:
        return {"joined": None}
    run = json.loads(current)
    run_id = run["run_id"]
    k = keys(run_id)
    settings = settings.replace(base_url=run["base_url"])
    engine = open_archive(settings.db, auto_upgrade=False)
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    plan = CrawlPlan(revisit="none", probe_gaps=False, backfill_id=run.get("backfill_id"))
    scrapy_conf = scrapy_settings(settings, run_id, plan, run.get("allowance")) | {
        # The run's allowance is shared: every worker's requests are counted in one Redis counter.
        "PORTAL_ARCHIVE_BUDGET_REDIS_KEY": k["budget"],
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "SCHEDULER_PERSIST": True,  # a worker leaving must not clear the shared frontier
        "SCHEDULER_QUEUE_KEY": k["requests"],
        "SCHEDULER_DUPEFILTER_KEY": k["dupefilter"],
        "DUPEFILTER_CLASS": "spiders.distributed.AidDupeFilter",
        "SCHEDULER_DUPEFILTER_CLASS": "spiders.distributed.AidDupeFilter",
        "REDIS_URL": settings.redis,
    }
    beat = _WorkerBeat(client, k, worker)
    try:
        run_spider(scrapy_conf, DistributedPortalSpider, reader_processes(settings), on_start=beat.start,
                   dictionary=current_dictionary(engine),
                   base_url=settings.base_url, profile=settings.profile, seeds_key=k["seeds"],
                   idle_seconds=settings.worker_idle_seconds, known_aids=_validators(engine, True),
                   frontier_size=lambda: client.zcard(k["requests"]))
    finally:
        beat.stop()
        engine.dispose()
    return {"joined": run_id, "worker": worker, "stats": beat.totals}


class _WorkerBeat:
    """Keeps the worker's heartbeat key alive and adds its counters to the run's stats hash."""

    COUNTED = stats_keys.SUMMED_BY_WORKERS

    def __init__(self, client, k, worker):
        self.client, self.k, self.worker = client, k, worker
        self.stats = None  # the crawler's stats collector, once the crawl starts
        self.sent: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="worker-heartbeat")

    def start(self, stats):
        self.stats = stats
        self.client.set(self.k["workers"] + self.worker, "1", ex=WORKER_TTL)
        self._thread.start()

    def stop(self):
        if self.stats is None:
            return
        self._stop.set()
        self._thread.join()
        self._flush()
        self.client.delete(self.k["workers"] + self.worker)

    def _loop(self):
        while not self._stop.wait(BEAT):
            self.client.set(self.k["workers"] + self.worker, "1", ex=WORKER_TTL)
            self._flush()

    def _flush(self):
        stats = self.stats.get_stats()
        pipe = self.client.pipeline()
        for key, value in list(stats.items()):
            if isinstance(value, int) and key.startswith(self.COUNTED):
                delta = value - self.sent.get(key, 0)
                if delta:
                    pipe.hincrby(self.k["stats"], key, delta)
                    self.sent[key] = value
        pipe.execute()
        self.totals = dict(self.sent)
