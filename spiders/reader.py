"""Reading article pages beside the crawl: decoding, extraction and cleaning in a reader process.

Scrapy runs in one thread, and reading an article page (decoding it, parsing
it, running the profile's selectors) costs about as much CPU as Scrapy's own
work for the fetch, and cleaning it (pipeline.clean) a third as much again.
Done in the crawl's process all of it queues behind one core; handed to a
reader process it runs on two (bench: README "Performance"). The spider
sends the reader its pages, the cleaning stage its raw fields.

A reader is a helper process (pipeline/helpers.py). It only gets
bytes and returns plain values (the page's encoding, its raw fields, what is
wrong with it), so what the spider does with them is the same whether the
page was read here or there. A reader that dies (killed, out of memory, a
crash in a C library) is replaced and the pages it held are read again by its
successor; a page that takes the successor down too is given up as a failed
fetch, which the next run fetches again.
"""
from __future__ import annotations

import os
import pickle

from pipeline.helpers import HelperDied, HelperProcess
from spiders.profile import load_profile
from spiders.reading import read_bytes

Reading = tuple[str | None, dict, str | None]  # (encoding, raw fields, problem)


def read_page(profile_name: str, raw: bytes, content_type: str | None, url: str, method: str) -> Reading:
    """spiders.reading.read_bytes by profile name: what the spider sends a reader process."""
    return read_bytes(load_profile(profile_name), raw, content_type, url, method)


class ReadError(RuntimeError):
    """Reading or cleaning the page raised (a bug, or a page no rule foresaw): the page goes to
    quarantine with this as its reason."""


class ReaderGone(RuntimeError):
    """The page was fetched, but every reader process given it died before reading it."""


class PageReader:
    """Runs the crawl's page work (reading, cleaning) in `processes` reader processes, or in the
    caller's process if 0."""

    def __init__(self, processes: int):
        self.restarts = 0
        self.on_restart = None  # called after a dead reader was replaced
        # Started now, so their imports overlap the crawl's start-up.
        self.readers = [HelperProcess("reader") for _ in range(processes)]

    async def run(self, function, *args):
        """function(*args) in a reader process (or here, without one). The function must be a
        module-level one (it travels by name) of plain values in and out."""
        if not self.readers:
            try:
                return function(*args)
            except Exception as exc:
                raise ReadError(f"{type(exc).__name__}: {exc}") from exc
        payload = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        for attempt in (1, 2):
            reader = min(self.readers, key=lambda r: len(r.pending))
            try:
                status, value = await reader.request(payload)
            except HelperDied:
                self._replace(reader)
                continue
            if status == "error":
                raise ReadError(value)
            return value
        raise ReaderGone(f"the reader process died twice running {function.__name__}")

    def _replace(self, dead: HelperProcess) -> None:
        if dead in self.readers:  # the first of the pages it held to notice
            self.readers[self.readers.index(dead)] = HelperProcess("reader")
            dead.close()
            self.restarts += 1
            if self.on_restart:
                self.on_restart()

    def close(self) -> None:
        readers, self.readers = self.readers, []
        for reader in readers:
            reader.close()


def default_processes() -> int:
    """One reader process when there is a second core to run it on, else read in-process."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0
