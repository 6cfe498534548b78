"""A lease in the archive itself: one crawl at a time per archive, across processes and hosts.

APScheduler's max_instances only knows its own process. The lease is a row
that a holder claims while it is free or expired and renews while it works;
a holder killed with SIGKILL stops renewing, so after `ttl` anyone may take
over. Claiming is one conditional UPDATE (or an INSERT guarded by the
primary key), so two claimants can never both win.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from pipeline.archive.db import session_scope
from pipeline.archive.models import CrawlRun, Lease

CRAWL_LEASE = "crawl"
DEFAULT_TTL = timedelta(seconds=60)


class LeaseHeld(RuntimeError):
    """Someone else holds the lease; the message says who and until when."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class LeaseInfo:
    name: str
    holder: str
    job: str
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        host, pid, _ = (self.holder.split(":") + ["", "", ""])[:3]
        return (f"job {self.job!r} on host {host}, pid {pid}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
                f"lease expires {self.expires_at:%H:%M:%S} UTC")


def current_holder(engine: Engine, name: str = CRAWL_LEASE) -> LeaseInfo | None:
    with session_scope(engine) as session:
        lease = session.get(Lease, name)
        if lease is None or lease.expires_at <= _now():
            return None
        return LeaseInfo(lease.name, lease.holder, lease.job, lease.acquired_at, lease.expires_at)


def try_acquire(engine: Engine, holder: str, job: str, ttl: timedelta = DEFAULT_TTL,
                name: str = CRAWL_LEASE) -> bool:
    now = _now()
    with session_scope(engine) as session:
        claimed = session.execute(
            update(Lease).where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
            .values(holder=holder, job=job, acquired_at=now, expires_at=now + ttl)
        ).rowcount
        if claimed:
            return True
    try:
        with session_scope(engine) as session:
            session.add(Lease(name=name, holder=holder, job=job, acquired_at=now, expires_at=now + ttl))
        return True
    except IntegrityError:
        return False


def acquire(engine: Engine, holder: str, job: str, ttl: timedelta = DEFAULT_TTL,
            name: str = CRAWL_LEASE) -> None:
    if not try_acquire(engine, holder, job, ttl, name):
        info = current_holder(engine, name)
        who = info.describe() if info else "another process (it just took it)"
        raise LeaseHeld(f"the archive is already being crawled: lease {name!r} held by {who}")


def renew(engine: Engine, holder: str, ttl: timedelta = DEFAULT_TTL, name: str = CRAWL_LEASE) -> bool:
    with session_scope(engine) as session:
        return bool(session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                                    .values(expires_at=_now() + ttl)).rowcount)


def release(engine: Engine, holder: str, name: str = CRAWL_LEASE) -> None:
    """Give the lease back. A database that is unreachable right now is not an error here:
    the lease then simply expires after its ttl, which is what it is for."""
    try:
        with session_scope(engine) as session:
            session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
    except OperationalError as exc:
        logging.getLogger(__name__).warning("could not release lease %r (%s); it will expire", name,
                                            str(exc).splitlines()[0])


class Heartbeat:
    """Renews a lease and a run's heartbeat from a background thread while work goes on."""

    def __init__(self, engine: Engine, holder: str, ttl: timedelta = DEFAULT_TTL,
                 run_id: int | None = None, name: str = CRAWL_LEASE):
        self.engine, self.holder, self.ttl, self.run_id, self.name = engine, holder, ttl, run_id, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)
        self.lost = False

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        interval = max(self.ttl.total_seconds() / 3, 0.2)
        while not self._stop.wait(interval):
            try:
                if not renew(self.engine, self.holder, self.ttl, self.name):
                    self.lost = True
                if self.run_id is not None:
                    with session_scope(self.engine) as session:
                        session.execute(update(CrawlRun).where(CrawlRun.id == self.run_id)
                                        .values(heartbeat_at=_now()))
            except Exception:  # a busy database must not kill the heartbeat; try again next beat
                continue


def mark_abandoned(engine: Engine, stale_after: timedelta = DEFAULT_TTL * 3) -> list[int]:
    """Runs left `running` by a process that is gone: on this host a dead pid, anywhere a stale heartbeat."""
    host, now, abandoned = socket.gethostname(), _now(), []
    with session_scope(engine) as session:
        for run in session.scalars(select(CrawlRun).where(CrawlRun.status == "running")):
            beat = run.heartbeat_at or run.started_at
            dead_here = run.hostname == host and run.pid is not None and not _alive(run.pid)
            if dead_here or beat < now - stale_after:
                run.status = "abandoned"
                run.finished_at = now
                run.error = (f"process {run.hostname}:{run.pid} died without closing the run "
                             f"(last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)")
                abandoned.append(run.id)
    return abandoned


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not alive either.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
