"""Run a crawl in a child process: the Twisted reactor cannot be restarted in one process,
and a crash or leak in one crawl must not take its parent (the demo, the daemon) down."""
from __future__ import annotations

import multiprocessing

from pipeline.config import Settings
from pipeline.crawl import CrawlSummary, run_crawl


def _child(settings: Settings, kwargs: dict, conn) -> None:
    try:
        conn.send(("ok", run_crawl(settings, **kwargs)))
    except BaseException as exc:  # report anything, then die
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def crawl_in_child(settings: Settings, timeout: float | None = None, **kwargs) -> CrawlSummary:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(settings, kwargs, child), name="portal-archive-crawl")
    process.start()
    child.close()
    if not parent.poll(timeout):
        process.kill()
        process.join()
        raise TimeoutError(f"crawl did not finish within {timeout} s")
    kind, value = parent.recv()
    process.join()
    if kind == "error":
        raise RuntimeError(f"crawl process failed: {value}")
    return value
