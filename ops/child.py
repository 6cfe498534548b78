"""Run a crawl in a child process.

The Twisted reactor cannot be restarted in one process, and a crash or leak
in one crawl must not take its parent (the demo, the daemon) down. The child
dies with its owner so a SIGKILLed daemon leaves no orphan crawl behind, and
runs in its own process group so a terminal's Ctrl-C reaches only the
parent, which then stops the child exactly once.

Children come from the standard library's fork server, which has imported
the crawl's code (Scrapy, SQLAlchemy, the reading layer) once: a fresh
process for every crawl without a second of start-up each, which a daemon
running every few minutes would otherwise pay every run.
"""
from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time

from ops.config import Settings
from ops.crawl import run_crawl
from pipeline.archive.summary import RunSummary


_CONTEXT = multiprocessing.get_context("forkserver")
# ops.crawl imports Scrapy and the archive's side only when a crawl starts (so that a one-off
# `crawl` overlaps them with the archive writer's start): named here, the fork server has them.
_CONTEXT.set_forkserver_preload(["ops.child", "ops.crawl_archive", "spiders.portal", "spiders.run"])


def _die_with(owner_pid: int) -> None:
    """SIGKILL this process when the owner (the daemon, the demo) exits. The owner is not this
    process's parent (the fork server is, and it stays while any child of its lives), so the
    kernel's parent-death signal cannot say it: a thread waits on a pidfd of the owner."""
    try:
        fd = os.pidfd_open(owner_pid)
    except ProcessLookupError:  # the owner died while this crawl was starting
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux ≥ 5.3): look once a second
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _alive(owner_pid):
                time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="portal-archive-owner-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _child(settings: Settings, kwargs: dict, conn, owner_pid: int) -> None:
    os.setpgrp()
    _die_with(owner_pid)
    try:
        conn.send(("ok", run_crawl(settings, **kwargs)))
    except BaseException as exc:  # report anything, then die
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class CrawlChild:
    def __init__(self, settings: Settings, **kwargs):
        ctx = _CONTEXT
        self._conn, child_end = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_child, args=(settings, kwargs, child_end, os.getpid()),
                                   name="portal-archive-crawl")
        self.process.start()
        child_end.close()
        self._result = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float | None) -> bool:
        """True once the child has finished (its result, if any, is read)."""
        if self._result is None and self._conn.poll(timeout):
            try:
                self._result = self._conn.recv()
            except EOFError:
                self._result = ("error", "the crawl process died without a result")
        self.process.join(0 if self._result is None else None)
        if self._result is None and not self.process.is_alive():
            self._result = ("error", f"the crawl process died (exit code {self.process.exitcode})")
        return self._result is not None

    def terminate(self) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()

    def result(self) -> RunSummary:
        kind, value = self._result
        if kind == "error":
            raise RuntimeError(value)
        return value


def crawl_in_child(settings: Settings, timeout: float | None = None, **kwargs) -> RunSummary:
    child = CrawlChild(settings, **kwargs)
    if not child.wait(timeout):
        child.kill()
        raise TimeoutError(f"crawl did not finish within {timeout} s")
    return child.result()
