"""Reading pages beside the crawl: the whole reading chain in a reader process, one call a page.

Scrapy runs in one thread, and reading an article page (checking it is whole,
decoding it, parsing it, running the profile's selectors, cleaning, hashing,
compressing the page for the archive) costs more CPU than Scrapy's own work
for the fetch. Done in the crawl's process it all queues behind one core;
handed to a reader process it runs on two (bench: README "Performance"). The
spider sends the reader a page's bytes once and gets back the archive's
record (pipeline.reading.chain.read_page): the crawl's process decodes,
parses and hashes nothing. List pages go the same way (read_list).

A reader is a helper process (spiders/helpers.py). It only gets bytes and
plain values and returns plain records, so what the spider does with them is
the same whether the page was read here or there. A reader that dies
(killed, out of memory, a crash in a C library) is replaced and the pages it
held are read again by its successor; a page that takes the successor down
too is given up as a failed fetch, which the next run fetches again.
"""
from __future__ import annotations

import pickle
from functools import lru_cache

from pipeline.reading.chain import ListPage, read_list, read_page
from pipeline.reading.profile import Profile, load_profile
from pipeline.reading.records import CleanArticle, Rejected
from spiders.helpers import HelperDied, HelperProcess


@lru_cache(maxsize=8)
def _profile(name: str) -> Profile:
    return load_profile(name)


def read_article_page(profile_name: str, raw: bytes, url: str, aid: int, http_status: int, headers: dict,
                      fetched_at, method: str, probe: bool) -> CleanArticle | Rejected:
    """read_page by profile name: what the spider sends a reader process for an article page."""
    return read_page(_profile(profile_name), raw, url=url, aid=aid, http_status=http_status, headers=headers,
                     fetched_at=fetched_at, method=method, probe=probe)


def read_list_page(profile_name: str, raw: bytes, url: str, headers: dict) -> ListPage:
    """read_list by profile name: what the spider sends a reader process for a list page."""
    return read_list(_profile(profile_name), raw, url=url, headers=headers)


class ReadError(RuntimeError):
    """The function raised in the reader (the reading chain keeps what it raises itself in its
    records, so this is a bug outside it)."""


class ReaderGone(RuntimeError):
    """The page was fetched, but every reader process given it died before reading it."""


class PageReader:
    """Runs the crawl's page reading in `processes` reader processes, or in the caller's process
    if 0."""

    def __init__(self, processes: int):
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
            if self.on_restart:
                self.on_restart()

    def close(self) -> None:
        readers, self.readers = self.readers, []
        for reader in readers:
            reader.close()
