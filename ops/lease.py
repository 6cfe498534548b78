"""A lease in the archive itself: one crawl at a time per archive, across processes and hosts.

APScheduler's max_instances only knows its own process. The lease is a row
that a holder claims while it is free or expired and renews while it works;
a holder killed with SIGKILL stops renewing, so after `ttl` anyone may take
over. Claiming is one conditional UPDATE (or an INSERT guarded by the
primary key), so two claimants can never both win.

On the holder's own host there is no need to wait for the ttl: a holder whose
process is gone is taken over at once (one more conditional UPDATE, on the
dead holder's token), and its runs are marked abandoned. "Gone" is decided by
`process_gone`, which the abandoned-run check uses too: the pid, and the
process start stored with it, so a reused pid is not taken for the holder.
Across hosts nothing can be seen of the holder, and the expiry stays.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from pipeline.archive.db import session_scope
from pipeline.archive.models import CrawlRun, Lease

CRAWL_LEASE = "crawl"
DEFAULT_TTL = timedelta(seconds=60)
log = logging.getLogger(__name__)


class LeaseHeld(RuntimeError):
    """Someone else holds the lease; the message says who and until when."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def this_process(pid: int | None = None) -> tuple[str, int, str | None]:
    """This process (or process `pid` of this host: the crawl whose archive writer asks) as runs
    record their owner (runs.start_run, runs.claim_run): host, pid, start."""
    pid = os.getpid() if pid is None else pid
    return socket.gethostname(), pid, process_start(pid)


def holder_id(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}:{uuid.uuid4().hex[:8]}"


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


def process_start(pid: int) -> str | None:
    """Who process `pid` is, beyond its number: `<boot id> <pid namespace> <start ticks>` (the start
    time since boot, /proc/<pid>/stat field 22), or None where /proc cannot say (not Linux, gone).

    The boot id and the pid namespace say whether our view of a pid is the same one the recorder
    had: another boot, or another container with the same host name, sees other processes."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return f"{boot} {namespace} {stat.rsplit(')', 1)[1].split()[19]}"


def process_gone(host: str | None, pid: int | None, started: str | None) -> bool:
    """Whether the process that recorded itself as host:pid (started as `started`) is certainly dead.

    Only its own host can tell; elsewhere this is False and the caller waits for an expiry or a
    stale heartbeat. With a start recorded, a live process with that pid and another start is a
    stranger that reused the pid: the recorder is gone. A record from another boot or pid
    namespace cannot be judged here (False). Without a start (rows written before revision 0005,
    or off Linux) the pid alone decides, as it always did.
    """
    if host != socket.gethostname() or pid is None:
        return False
    if not _alive(pid):
        return True
    if started is None:
        return False
    now = process_start(pid)
    if now is None:
        return False
    mine, theirs = now.rsplit(" ", 1), started.rsplit(" ", 1)
    return mine[0] == theirs[0] and mine[1] != theirs[1]


def _holder_process(holder: str) -> tuple[str, int | None]:
    host, pid = (holder.split(":") + ["", ""])[:2]
    return host, int(pid) if pid.isdigit() else None


def current_holder(engine: Engine, name: str = CRAWL_LEASE, *, alive: bool = False) -> LeaseInfo | None:
    """Who holds the lease, unexpired; with `alive`, only if that process is not gone from this host
    (the next claimant would take such a lease over at once)."""
    with session_scope(engine) as session:
        lease = session.get(Lease, name)
        if lease is None or lease.expires_at <= _now():
            return None
        if alive and process_gone(*_holder_process(lease.holder), lease.holder_started):
            return None
        return LeaseInfo(lease.name, lease.holder, lease.job, lease.acquired_at, lease.expires_at)


def try_acquire(engine: Engine, holder: str, job: str, ttl: timedelta = DEFAULT_TTL,
                name: str = CRAWL_LEASE) -> bool:
    """Claim the lease if it is free, expired, already ours, or held by a process gone from this host.

    `holder` is this process's (holder_id()): its start is recorded with it."""
    now = _now()
    claim = {"holder": holder, "job": job, "acquired_at": now, "expires_at": now + ttl,
             "holder_started": process_start(os.getpid())}
    with session_scope(engine) as session:
        claimed = session.execute(
            update(Lease).where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
            .values(**claim)
        ).rowcount
        if claimed:
            return True
    try:
        with session_scope(engine) as session:
            session.add(Lease(name=name, **claim))
        return True
    except IntegrityError:
        pass
    return _take_over(engine, name, claim, ttl)


def _take_over(engine: Engine, name: str, claim: dict, ttl: timedelta) -> bool:
    """Take the lease from a holder whose process is gone from this host; record it in the log and
    on the dead holder's runs (marked abandoned). The UPDATE names the dead holder's token, so of two
    claimants seeing the same corpse only one wins."""
    with session_scope(engine) as session:
        lease = session.get(Lease, name)
        if lease is None or not process_gone(*_holder_process(lease.holder), lease.holder_started):
            return False
        dead = LeaseInfo(lease.name, lease.holder, lease.job, lease.acquired_at, lease.expires_at)
        taken = session.execute(update(Lease).where(Lease.name == name, Lease.holder == dead.holder)
                                .values(**claim)).rowcount
    if not taken:
        return False
    host, pid = _holder_process(claim["holder"])
    abandoned = mark_abandoned(engine, stale_after=ttl * 3,
                               why=f"its lease {name!r} was taken over by pid {pid} on {host}")
    log.warning("lease %r taken over at once from %s: that process is gone%s", name, dead.describe(),
                f"; run {', '.join(map(str, abandoned))} marked abandoned" if abandoned else "")
    return True


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


def mark_abandoned(engine: Engine, stale_after: timedelta = DEFAULT_TTL * 3, why: str | None = None) -> list[int]:
    """Runs left `running` by a process that is gone: on this host a dead process (process_gone),
    anywhere a stale heartbeat. `why` adds to the recorded reason (a lease taken over)."""
    now, abandoned = _now(), []
    with session_scope(engine) as session:
        for run in session.scalars(select(CrawlRun).where(CrawlRun.status == "running")):
            beat = run.heartbeat_at or run.started_at
            if process_gone(run.hostname, run.pid, run.pid_started) or beat < now - stale_after:
                run.status = "abandoned"
                run.finished_at = now
                run.error = (f"process {run.hostname}:{run.pid} died without closing the run "
                             f"(last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)" + (f"; {why}" if why else ""))
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
