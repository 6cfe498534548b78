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
scheduler's queue, a sorted set), dupefilter (set), inflight:<worker> (what
the worker owns, spiders/frontier.py), owners (the workers that own or owned
something), workers:<worker> (a heartbeat with a TTL, worker_heartbeat_ttl),
stats (hash of summed counters), budget (the requests all workers sent,
counted against the run's allowance). portal-archive:current names the run.

A worker that dies (its heartbeat expires) loses nothing: every
frontier_reclaim_seconds each surviving worker, and the coordinator, put
what dead workers owned back into the queue, and the run goes on until it is
all done.
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
from sqlalchemy import select

from ops.config import ConfigError, Settings
from ops.crawl import CrawlPlan, scrapy_settings
from ops.crawl_archive import aids_in, current_dictionary, maintain_dictionaries, plan_run, run_allowance
from ops.lease import Heartbeat, acquire, holder_id, mark_abandoned, release, this_process
from pipeline import stats as stats_keys
from pipeline.archive import runs
from pipeline.archive.db import open_archive
from pipeline.archive.models import Article
from pipeline.archive.summary import RunSummary
from pipeline.reading.profile import load_profile
from spiders.distributed import DistributedPortalSpider
from spiders.frontier import Frontier
from spiders.reader import PageReader
from spiders.run import run_spider

log = logging.getLogger("portal_archive.distributed")
CURRENT = "portal-archive:current"
BEATS_PER_TTL = 4  # a worker renews its heartbeat this many times within its TTL


def keys(run_id: int) -> dict[str, str]:
    base = f"portal-archive:run:{run_id}"
    return ({k: f"{base}:{k}" for k in ("seeds", "requests", "dupefilter", "stats", "budget")}
            | {"workers": f"{base}:workers:", "base": base})


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
                                job=plan.job, backfill_id=plan.backfill_id, owner=this_process())
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
        error = stats_keys.callbacks_raised(stats)
        if not stats.get(stats_keys.RESPONSES):
            error = "no worker fetched anything for this run"
        stats = {**stats, **visits.stats, "distributed/seeds": pushed}
        if allowance is not None:
            stats["budget/allowance"] = allowance
        run = runs.finish_run_patiently(engine, run_id, "failed" if error else "succeeded", stats, error)
        if not error:
            maintain_dictionaries(engine, settings)
        client.delete(CURRENT, *client.scan_iter(match=k["base"] + ":*", count=1000))
        return RunSummary.of(run)
    finally:
        release(engine, holder)
        engine.dispose()


def _alive_workers(client: redis.Redis, k: dict) -> int:
    return sum(1 for _ in client.scan_iter(match=k["workers"] + "*", count=100))


def _reclaim(client: redis.Redis, k: dict, frontier: Frontier) -> int:
    moved = frontier.reclaim()
    if moved:
        client.hincrby(k["stats"], stats_keys.FRONTIER_RECLAIMED, moved)
        log.warning("%d requests of dead workers put back in the queue", moved)
    return moved


def _wait_until_drained(client: redis.Redis, k: dict, idle_seconds: float, poll: float) -> None:
    """Until nothing is queued or owned and no worker has been alive for a while (workers that
    joined have left after their idle time, and a killed one's heartbeat has expired). What dead
    workers owned is put back here too, in case no worker survives to do it."""
    frontier = Frontier(client, k["base"])
    quiet_since = None
    while True:
        _reclaim(client, k, frontier)
        pending = frontier.pending()
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
        # What a worker takes stays its own until done with, and goes back if it dies.
        "SCHEDULER_QUEUE_CLASS": "spiders.frontier.ReliableQueue",
        "PORTAL_ARCHIVE_FRONTIER": k["base"],
        "PORTAL_ARCHIVE_WORKER": worker,
        "SCHEDULER_DUPEFILTER_KEY": k["dupefilter"],
        "DUPEFILTER_CLASS": "spiders.distributed.AidDupeFilter",
        "SCHEDULER_DUPEFILTER_CLASS": "spiders.distributed.AidDupeFilter",
        "REDIS_URL": settings.redis,
    }
    beat = _WorkerBeat(client, k, worker, settings.worker_heartbeat_ttl, settings.frontier_reclaim_seconds)
    try:
        run_spider(scrapy_conf, DistributedPortalSpider,
                   PageReader(settings.reader_processes(), current_dictionary(engine)), on_start=beat.start,
                   base_url=settings.base_url, profile=settings.profile, seeds_key=k["seeds"],
                   idle_seconds=settings.worker_idle_seconds, known_aids=aids_in(
                       engine, lambda aids: select(Article.aid).where(Article.aid.in_(aids))))
    finally:
        beat.stop()
        engine.dispose()
    return {"joined": run_id, "worker": worker, "stats": beat.totals}


class _WorkerBeat:
    """Keeps the worker's heartbeat key alive, puts back what dead workers owned, and adds the
    worker's counters to the run's stats hash.

    A thread, not the reactor: the heartbeat says the process is alive, so a reactor busy with
    a long callback must not make it look dead."""

    COUNTED = stats_keys.SUMMED_BY_WORKERS

    def __init__(self, client, k, worker, ttl: float, reclaim_every: float):
        self.client, self.k, self.worker = client, k, worker
        self.frontier = Frontier(client, k["base"], worker)
        self.key = self.frontier.heartbeat_of(worker)
        self.ttl_ms = max(1, int(ttl * 1000))
        self.beat = ttl / BEATS_PER_TTL
        self.reclaim_every = reclaim_every
        self.stats = None  # the crawler's stats collector, once the crawl starts
        self.sent: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="worker-heartbeat")

    def start(self, stats):
        self.stats = stats
        self.client.set(self.key, "1", px=self.ttl_ms)
        self._thread.start()

    def stop(self):
        if self.stats is None:
            return
        self._stop.set()
        self._thread.join()
        self._flush()
        # Anything still owned (a batch the archive refused, a crawl stopped short) is the others' now.
        given_back = self.frontier.release()
        if given_back:
            self.client.hincrby(self.k["stats"], stats_keys.FRONTIER_GIVEN_BACK, given_back)
            log.warning("worker %s gave %d unfinished requests back to the run", self.worker, given_back)
        self.client.delete(self.key)

    def _loop(self):
        last_reclaim = time.monotonic()
        while not self._stop.wait(self.beat):
            try:
                self.client.set(self.key, "1", px=self.ttl_ms)
                self._flush()
                if time.monotonic() - last_reclaim >= self.reclaim_every:
                    last_reclaim = time.monotonic()
                    _reclaim(self.client, self.k, self.frontier)
            except redis.RedisError as exc:  # Redis away for a moment: beat again next time
                log.warning("worker heartbeat: %s", exc)

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
