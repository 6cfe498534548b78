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

Pages are compressed here with the archive's current dictionary, which the
crawl's runner reads from the archive before the crawl and gives the
PageReader: each reader process is sent its bytes once, before its first
page (`use_dictionary`), and each page then names it by its key, so a page
is always compressed with the dictionary its record names, whichever
process read it, a replacement included.
"""
from __future__ import annotations

import asyncio
import pickle
from functools import lru_cache

from pipeline.reading.chain import ListPage, read_list, read_page
from pipeline.reading.compression import Compressor, Dictionary
from pipeline.reading.profile import Profile, load_profile
from pipeline.reading.records import CleanArticle, Rejected
from spiders.helpers import HelperDied, HelperProcess


@lru_cache(maxsize=8)
def _profile(name: str) -> Profile:
    return load_profile(name)


# The dictionaries this process was given, by key (Dictionary.key): a crawl uses one.
_compressors: dict[str, Compressor] = {}


def use_dictionary(dictionary: Dictionary) -> None:
    """Keep the archive's dictionary in this process for the pages that name it."""
    if dictionary.key not in _compressors:
        _compressors.clear()
        _compressors[dictionary.key] = Compressor(dictionary)


def read_article_page(profile_name: str, raw: bytes, url: str, aid: int, http_status: int, headers: dict,
                      fetched_at, method: str, probe: bool, dictionary_key: str | None = None
                      ) -> CleanArticle | Rejected:
    """read_page by profile name: what the spider sends a reader process for an article page;
    the page is compressed with the dictionary `dictionary_key` names (given by use_dictionary)."""
    compressor = None
    if dictionary_key is not None:
        compressor = _compressors.get(dictionary_key)
        if compressor is None:  # never compress with another dictionary than the record will name
            raise LookupError(f"this reader was not given dictionary {dictionary_key}")
    return read_page(_profile(profile_name), raw, url=url, aid=aid, http_status=http_status, headers=headers,
                     fetched_at=fetched_at, method=method, probe=probe, compressor=compressor)


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

    def __init__(self, processes: int, dictionary: Dictionary | None = None):
        self.on_restart = None  # called after a dead reader was replaced
        # Started now, so their imports overlap the crawl's start-up.
        self.readers = [HelperProcess("reader") for _ in range(processes)]
        self.dictionary = dictionary
        self._given: dict[HelperProcess, asyncio.Future] = {}  # readers sent the dictionary
        if dictionary is not None and not self.readers:
            use_dictionary(dictionary)

    def use(self, dictionary: Dictionary) -> None:
        """Compress the pages read from now on with `dictionary` (the archive's first, trained
        during this crawl): each reader is sent it before its next page. Pages already sent name
        the dictionary they were sent with, and are compressed with that one."""
        self.dictionary = dictionary
        self._given.clear()
        if not self.readers:
            use_dictionary(dictionary)

    @property
    def dictionary_key(self) -> str | None:
        """What read_article_page is given to compress with the crawl's dictionary."""
        return self.dictionary.key if self.dictionary is not None else None

    async def _give_dictionary(self, reader: HelperProcess) -> None:
        """Send the reader the dictionary before its first page (once; its pages wait for it)."""
        if self.dictionary is None:
            return
        given = self._given.get(reader)
        if given is None:
            payload = pickle.dumps((use_dictionary, (self.dictionary,)), pickle.HIGHEST_PROTOCOL)
            given = self._given[reader] = asyncio.ensure_future(reader.request(payload))
        status, value = await asyncio.shield(given)
        if status == "error":
            raise ReadError(value)

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
                await self._give_dictionary(reader)
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
            self._given.pop(dead, None)
            dead.close()
            if self.on_restart:
                self.on_restart()

    def close(self) -> None:
        readers, self.readers = self.readers, []
        for reader in readers:
            reader.close()
