"""Run a crawl in a child process.

The Twisted reactor cannot be restarted in one process, and a crash or leak
in one crawl must not take its parent (the demo, the daemon) down. The child
dies with its parent (PR_SET_PDEATHSIG) so a SIGKILLed daemon leaves no
orphan crawl behind, and runs in its own process group so a terminal's
Ctrl-C reaches only the parent, which then stops the child exactly once.
"""
from __future__ import annotations

import multiprocessing
import os
import signal

from ops.config import Settings
from ops.crawl import run_crawl
from pipeline.archive.runs import RunSummary
from spiders.helpers import die_with_parent


def _child(settings: Settings, kwargs: dict, conn, parent_pid: int) -> None:
    os.setpgrp()
    die_with_parent(parent_pid)
    try:
        conn.send(("ok", run_crawl(settings, **kwargs)))
    except BaseException as exc:  # report anything, then die
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class CrawlChild:
    def __init__(self, settings: Settings, **kwargs):
        ctx = multiprocessing.get_context("spawn")
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
