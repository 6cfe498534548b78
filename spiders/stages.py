"""Archive stage: writes items in batches, one transaction per batch.

A batch either lands whole or not at all, so a kill mid-crawl leaves the
archive consistent and the next run simply fetches the lost tail again.

With a writer process (the default on a machine with a second core) the
batches are written there (spiders/helpers.py; the run's own, ops/crawl.py), in the order they were
filled, while the crawl goes on fetching: writing costs about as much CPU per
article as Scrapy's own work for its fetch (bench --profile), and in the
crawl's process it held up every fetch behind it. At most WRITES_AHEAD
batches wait for the writer; a fuller queue holds the next item back, so
memory stays bounded when the database is slower than the portal. A writer
that fails or dies fails the run (the batch it held is fetched again next
run); nothing is written after a batch that failed.
"""
from __future__ import annotations

import asyncio
import logging

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro

from pipeline import stats
from pipeline.archive.defaults import BATCH_SIZE, SQLITE_BUSY_TIMEOUT_MS
from pipeline.reading.records import CleanArticle
from spiders.helpers import HelperDied, HelperProcess

log = logging.getLogger(__name__)
# Sent with `items` once the archive is done with them: their batch is committed, or they needed
# no write (a page already archived in this crawl). A distributed worker owns the requests behind
# items until then (spiders/frontier.py); a local crawl has no receiver.
ARCHIVED = object()
# Sent with `dictionary` when the writer has trained the archive's first raw-page dictionary mid-crawl
# (pipeline.archive.writer.ArchiveWriter.upkeep): the spider's readers compress the pages that
# follow with it.
DICTIONARY_TRAINED = object()
# The writer's functions, named for the writer process (spiders/helpers.py): the crawl's process
# imports no database module when it writes there.
WRITER = "pipeline.archive.writer:"
WRITE_ERROR = "ArchiveWriteError"  # its exception for a batch that could not be written
# Batches handed to the writer process and not yet written: one being written, one waiting.
WRITES_AHEAD = 2


class ArchiveStage:
    def __init__(self, db_url: str, run_id: int, batch_size: int, takedown_confirmations: int, crawler,
                 backfill_id: int | None = None, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
                 write_process: bool = False, train_after: int = 0):
        self.db_url = db_url
        self.busy_timeout_ms = busy_timeout_ms
        self.backfill_id = backfill_id
        self.run_id = run_id
        self.batch_size = batch_size
        self.confirmations = takedown_confirmations
        self.crawler = crawler
        self.stats = crawler.stats
        self.write_process = write_process
        self.train_after = train_after
        self.buffer: list = []
        self.archived: set[int] = set()
        self.failed: str | None = None
        self.writes: list[asyncio.Future] = []  # handed to the writer process, not yet written
        self.waiting: list[asyncio.Future] = []  # told when one of them is

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        if not s.get("PORTAL_ARCHIVE_DB") or not s.getint("PORTAL_ARCHIVE_RUN_ID"):
            raise NotConfigured("the archive stage needs PORTAL_ARCHIVE_DB and PORTAL_ARCHIVE_RUN_ID")
        stage = cls(s["PORTAL_ARCHIVE_DB"], s.getint("PORTAL_ARCHIVE_RUN_ID"),
                    s.getint("PORTAL_ARCHIVE_BATCH_SIZE", BATCH_SIZE),
                    s.getint("PORTAL_ARCHIVE_TAKEDOWN_CONFIRMATIONS", 1), crawler,
                    s.getint("PORTAL_ARCHIVE_BACKFILL_ID") or None,
                    s.getint("PORTAL_ARCHIVE_SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS),
                    s.getbool("PORTAL_ARCHIVE_WRITE_PROCESS"),
                    s.getint("PORTAL_ARCHIVE_TRAIN_AFTER_PAGES"))
        crawler.signals.connect(stage.spider_idle, signal=signals.spider_idle)
        return stage

    def spider_idle(self):
        """Nothing left to fetch for now: write the partial batch instead of holding it until the
        crawl closes (a distributed worker waits for a frontier that others may still fill, and
        the pages behind these items stay its own until they are written)."""
        if self.write_process:
            if self.buffer and not self.failed:
                self._hand_over()
        else:
            self.flush()

    def open_spider(self):
        if self.write_process:
            # The run's own writer process (ops/crawl.py opened the run in it), or one of the stage's.
            self.writer_process = getattr(self.crawler.spider, "archive_writer", None)
            self.own_writer = self.writer_process is None
            if self.own_writer:
                self.writer_process = HelperProcess("archive-writer")
            self.target = (self.db_url, self.busy_timeout_ms, self.run_id, self.confirmations, self.backfill_id,
                           self.train_after)
            return
        # Written here: the database's modules are imported now, not by a crawl that writes elsewhere.
        from pipeline.archive.db import make_engine, session_factory
        from pipeline.archive.writer import ArchiveWriteError, ArchiveWriter

        self.write_error = ArchiveWriteError
        self.engine = make_engine(self.db_url, self.busy_timeout_ms, writer=True)
        self.session = session_factory(self.engine)()
        self.writer = ArchiveWriter(self.session, self.run_id, self.confirmations, self.backfill_id,
                                    self.train_after)

    def close_spider(self):
        if self.write_process:
            return self._close_writer_process()
        try:
            self.flush()
        finally:
            self.session.close()
            self.engine.dispose()

    def process_item(self, item):
        if self.failed:
            return item
        if self.write_process and len(self.buffer) >= self.batch_size:
            return self._when_room(item)  # the writer's queue is full: wait for a batch to be written
        if isinstance(item, CleanArticle):
            # The spider asks for each aid once a crawl; a page that still arrives twice (a
            # redirect to an article already read) is archived once.
            if item.aid in self.archived:
                self.stats.inc_value(stats.REPEATED)
                self._archived([item])
                return item
            self.archived.add(item.aid)
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size:
            if self.write_process:
                self._hand_over()
            else:
                self.flush()
        return item

    def flush(self) -> None:
        if not self.buffer or self.failed:
            return
        batch, self.buffer = self.buffer, []
        try:
            outcomes = self.writer.write(batch)
        except self.write_error as exc:
            return self._fail(exc)
        dictionary = self.writer.upkeep(outcomes)
        self._count(outcomes)
        self._archived(batch)
        self._trained(dictionary)

    # --- with a writer process ------------------------------------------------
    def _hand_over(self) -> None:
        """Send the full buffer to the writer, if fewer than WRITES_AHEAD batches wait there; else
        it stays full, and the items that follow wait in _when_room (so does Scrapy, with them)."""
        if len(self.writes) < WRITES_AHEAD:
            batch, self.buffer = self.buffer, []
            write = asyncio.ensure_future(self._write_there(batch))
            self.writes.append(write)
            write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future) -> None:
        self.writes.remove(write)
        if len(self.buffer) >= self.batch_size and not self.failed:
            self._hand_over()
        waiting, self.waiting = self.waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)

    async def _a_write_done(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        await waiter

    async def _when_room(self, item):
        while len(self.buffer) >= self.batch_size and not self.failed:
            await self._a_write_done()
        return self.process_item(item)

    async def _write_there(self, batch: list) -> None:
        try:
            status, value = await self.writer_process.call(WRITER + "write_batch", self.target, batch)
        except HelperDied:
            status, value = "error", f"the archive writer process died (exit code {self.writer_process.process.poll()})"
        except Exception as exc:  # the batch could not be sent (it would not pickle): never lost quietly
            status, value = "error", f"{type(exc).__name__}: {exc}"
        if self.failed:  # an earlier batch failed: this one's outcome is not counted either way
            return
        if status == "error":
            return self._fail(value.removeprefix(f"{WRITE_ERROR}: "))
        outcomes, dictionary = value
        self._count(outcomes)
        self._archived(batch)
        self._trained(dictionary)

    async def _close_writer_process(self) -> None:
        try:
            while self.buffer and not self.failed:  # the last, partial batch, once there is room
                self._hand_over()
                if self.buffer:
                    await self._a_write_done()
            while self.writes:
                await self._a_write_done()
            if not self.writer_process.dead:
                status, cpu_s = await self.writer_process.call(WRITER + "close_writers")
                if status == "ok":
                    self.stats.set_value(stats.WRITER_CPU, round(cpu_s, 3))
        except HelperDied:
            pass
        finally:
            if self.own_writer:
                self.writer_process.close()
            else:  # the run's: it closes the run after the crawl
                self.writer_process.detach()

    # --------------------------------------------------------------------------
    def _count(self, counts) -> None:
        """What the writer did, counted under the keys it gives (pipeline/stats.py)."""
        for key, count in counts.items():
            if count:
                self.stats.inc_value(key, count)

    def _archived(self, items: list) -> None:
        self.crawler.signals.send_catch_log(ARCHIVED, items=items)

    def _trained(self, dictionary) -> None:
        if dictionary is not None:
            self.stats.set_value(stats.DICTIONARY_TRAINED, dictionary.id)
            self.crawler.signals.send_catch_log(DICTIONARY_TRAINED, dictionary=dictionary)

    def _fail(self, exc: Exception | str) -> None:
        self.failed = f"archive write failed: {exc}"
        log.error(self.failed)
        self.crawler.stats.set_value(stats.ARCHIVE_ERROR, self.failed)
        self._stop_crawl("archive_error")

    def _stop_crawl(self, reason: str) -> None:
        engine = self.crawler.engine
        if hasattr(engine, "close_spider_async"):  # Scrapy >= 2.14
            deferred_from_coro(engine.close_spider_async(reason=reason))
        else:
            engine.close_spider(self.crawler.spider, reason)
