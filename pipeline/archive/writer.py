"""Writing a batch of crawl outcomes to the archive: one transaction, retried whole on conflict.

Plain Python (no Scrapy), so the archive stage, a distributed worker and the
concurrency tests share exactly one write path.
"""
from __future__ import annotations

import errno
import logging
import random
import resource
import time
from collections import Counter

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from pipeline import stats
from pipeline.archive import rawpages
from pipeline.archive.gaps import record_probe
from pipeline.archive.models import BackfillArticle
from pipeline.archive.outcomes import LOOK_OF, Written
from pipeline.archive.versions import (
    Batch,
    record_article,
    record_fetch_failure,
    record_gone,
    record_not_modified,
    record_quarantine,
)
from pipeline.reading.compression import Dictionary
from pipeline.reading.records import ArticleGone, ArticleNotModified, CleanArticle, FetchFailed, Rejected

log = logging.getLogger(__name__)
BATCH_ATTEMPTS = 6
BATCH_RETRY_PAUSE = 0.5  # seconds, times the attempt number, plus jitter so colliding writers part


class ArchiveWriteError(RuntimeError):
    pass


class ArchiveWriter:
    """Writes a crawl's batches. `train_after`: a crawl that started without a raw-page dictionary
    trains the archive's first once `train_after` article pages are in (after the batch that
    brings them), so its readers compress the rest of the crawl with it (`upkeep`)."""

    def __init__(self, session: Session, run_id: int, takedown_confirmations: int = 1,
                 backfill_id: int | None = None, train_after: int | None = None):
        self.session = session
        self.run_id = run_id
        self.confirmations = takedown_confirmations
        self.backfill_id = backfill_id
        self.train_after = train_after
        self.dictionary: Dictionary | None = None  # trained by this writer, in this crawl
        self.recompressed_through = 0  # the last raw page id looked at for recompression

    def upkeep(self, counts: Counter) -> Dictionary | None:
        """After a batch: the archive's first dictionary if it was trained just now (committed),
        else None; the pages recompressed are counted in `counts`. Once trained, the pages this
        crawl stored without it (those before it, and those already read when it came) are
        recompressed with it here, batch by batch, beside the crawl rather than after it. Trained
        once, or failed once, never again in this crawl: the run's end (ops/crawl.py) trains or
        recompresses whatever is left."""
        if self.dictionary is not None:
            counts[stats.PAGES_RECOMPRESSED] += self._recompress_behind()
            return None
        if not self.train_after:
            return None
        try:
            row = rawpages.first_dictionary(self.session, self.train_after)
            if row is None:
                self.session.rollback()
                return None
            self.train_after = None
            self.dictionary = Dictionary(row.id, row.data)
            self.session.commit()
            log.info("raw pages: trained dictionary %d on %d pages (%.0f B a page)", row.id, row.samples,
                     row.bytes_per_page)
        except Exception:  # costs compression, never the crawl
            self.session.rollback()
            self.train_after = None
            log.exception("training the archive's first raw-page dictionary failed")
            return None
        counts[stats.PAGES_RECOMPRESSED] += self._recompress_behind()
        return self.dictionary

    def _recompress_behind(self) -> int:
        """Recompress with the dictionary trained in this crawl the pages stored without one since
        the last look (ids above it: a primary-key range, however large the archive); how many."""
        total = 0
        try:
            while True:
                done, last = rawpages.recompress(self.session, self.dictionary, after_id=self.recompressed_through)
                if last is None:
                    self.session.rollback()
                    return total
                self.session.commit()
                self.recompressed_through = last
                total += done
        except Exception:  # the run's end recompresses what is left
            self.session.rollback()
            self.dictionary = None
            log.exception("recompressing raw pages with the new dictionary failed")
            return total

    def write(self, batch: list) -> Counter:
        """Archive the batch in one transaction; what it did, counted under stats keys.

        Articles are written in aid order, so concurrent writers lock rows in
        the same order and cannot deadlock one another. A conflict with
        another writer (a unique constraint, a deadlock, a busy database)
        rolls the batch back and does it again: every step compares with
        what the archive holds, so a repeated batch writes nothing twice.
        """
        batch = sorted(batch, key=lambda item: getattr(item, "aid", None) or 0)
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            outcomes: Counter = Counter()
            try:
                prepared = Batch.prepare(self.session, batch)
                for item in batch:
                    self._record(item, outcomes, prepared)
                prepared.finish()
                self.session.commit()
                return outcomes
            except (IntegrityError, OperationalError) as exc:
                self.session.rollback()
                if disk_full(exc):  # trying again fills nothing: say so at once
                    raise ArchiveWriteError(describe_disk_full(exc)) from exc
                if attempt == BATCH_ATTEMPTS:
                    raise ArchiveWriteError(_describe(exc)) from exc
                log.info("batch conflicted with another writer (%s); attempt %d", _describe(exc), attempt + 1)
                time.sleep(BATCH_RETRY_PAUSE * attempt * (1 + random.random()))
            except Exception as exc:
                self.session.rollback()
                log.exception("archive write failed")
                raise ArchiveWriteError(_describe(exc)) from exc
        raise AssertionError("unreachable")

    def _record(self, item, counts: Counter, batch: Batch) -> None:
        """Write one item; count what it did under its stats key (pipeline/stats.py)."""
        session = self.session
        if isinstance(item, CleanArticle):
            previous = self._previous_look(batch, item.aid)
            outcome, linked = record_article(session, self.run_id, item, batch)
            counts[stats.DUPLICATES] += linked
            if item.probe:
                record_probe(session, item.aid, "found", item.fetched_at)
                counts[stats.GAPS_FOUND] += 1
        elif isinstance(item, ArticleNotModified):
            previous = self._previous_look(batch, item.aid)
            outcome = record_not_modified(session, item, batch)
        elif isinstance(item, ArticleGone):
            previous = self._previous_look(batch, item.aid)
            outcome = record_gone(session, self.run_id, item, self.confirmations, batch)
            if item.probe and outcome is Written.GONE_UNKNOWN:
                record_probe(session, item.aid, "missing", item.fetched_at)
        elif isinstance(item, Rejected):
            previous, outcome = None, Written.QUARANTINED
            record_quarantine(session, self.run_id, item, batch)
        elif isinstance(item, FetchFailed):
            previous, outcome = None, Written.FETCH_FAILED
            record_fetch_failure(session, self.run_id, item)
        else:
            raise TypeError(f"the archive does not know {type(item).__name__}")
        counts[stats.archive(outcome)] += 1
        self._look(batch, item.aid, item.fetched_at, previous, outcome)
        if outcome not in (Written.QUARANTINED, Written.FETCH_FAILED):
            self._done(item.aid)

    @staticmethod
    def _previous_look(batch: Batch, aid: int):
        """The article's last successful look before this item (None for an article this batch creates)."""
        article = batch.articles.get(aid)
        return None if article is None or aid in batch.created else article.last_checked_at

    def _look(self, batch: Batch, aid: int | None, at, previous, outcome: Written) -> None:
        article = batch.articles.get(aid) if aid is not None else None
        look = LOOK_OF.get(outcome)
        if article is None or look is None:
            return  # an article the archive does not hold: nothing to learn about
        batch.look(article, self.run_id, at, previous, look)

    def _done(self, aid: int) -> None:
        """Remember, in the same transaction, that this backfill has archived the aid."""
        if self.backfill_id is not None:
            self.session.merge(BackfillArticle(backfill_id=self.backfill_id, aid=aid))


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


# SQLite's SQLITE_FULL and SQLITE_IOERR_WRITE-with-ENOSPC, PostgreSQL's disk_full (SQLSTATE 53100).
SQLITE_FULL = 13
POSTGRES_DISK_FULL = "53100"


def disk_full(exc: BaseException) -> bool:
    """Whether a database error means the disk holding the archive (its file, WAL or journal) is full."""
    reason = getattr(exc, "orig", None) or exc
    if getattr(reason, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if getattr(reason, "sqlstate", None) == POSTGRES_DISK_FULL or getattr(reason, "errno", None) == errno.ENOSPC:
        return True
    text = str(reason).lower()
    return "database or disk is full" in text or "no space left on device" in text


def describe_disk_full(exc: BaseException) -> str:
    """The one-line reason a run records when the archive's disk is full."""
    reason = getattr(exc, "orig", None) or exc
    first = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return (f"the disk holding the archive is full ({first}); nothing of the failed batch was written: "
            "make space and run the crawl again, it fetches what is missing")


# --- the archive writer process (spiders.stages.ArchiveStage with write_process) ----
_open_writers: dict[tuple, ArchiveWriter] = {}


def write_batch(target: tuple, batch: list) -> tuple[Counter, Dictionary | None]:
    """ArchiveWriter.write in a writer process, then ArchiveWriter.upkeep: `target` is (database
    URL, busy timeout in ms, run id, takedown confirmations, backfill id, train after); its
    session is opened on first use."""
    writer = _open_writers.get(target)
    if writer is None:
        from pipeline.archive.db import make_engine, session_factory

        db_url, busy_timeout_ms, run_id, confirmations, backfill_id, train_after = target
        session = session_factory(make_engine(db_url, busy_timeout_ms, writer=True))()
        writer = _open_writers[target] = ArchiveWriter(session, run_id, confirmations, backfill_id, train_after)
    counts = writer.write(batch)
    return counts, writer.upkeep(counts)


def close_writers() -> float:
    """Close the writer process's sessions and engines (before it is told to leave); the CPU
    seconds the process has used, for the run's stats."""
    while _open_writers:
        _, writer = _open_writers.popitem()
        engine = writer.session.get_bind()
        writer.session.close()
        engine.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
