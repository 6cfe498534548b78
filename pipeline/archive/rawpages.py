"""Raw pages' dictionaries: trained on the archive's own pages, kept in it, retired when the portal
changes its template.

The reader process compresses every page with the archive's newest
dictionary (the crawl's runner reads it before the crawl; each page's row
names the one used), and the bytes of every dictionary a page names stay in
the `dictionaries` table for good, so every page can be read back.

When: after a crawl (ops/crawl.py calls `maintain`), the archive trains its
first dictionary once it holds `after_pages` article pages, from the newest
of them, and recompresses the pages it stored before with it. Later, a
dictionary is judged by what it does to the pages it compresses: the newest
`window` of them, as stored bytes over fetched bytes, against the first
`window` it compressed after its training. Pages held out of the training are
no yardstick: they link to and quote the pages it was trained on, which new
articles do not (on the replica new articles took 1.3 times the held-out
figure). New article text in the same template then costs little; a new
template costs a lot (the replica's redesign took 1.85 times): past DRIFT
times the first pages' figure, a new dictionary is trained on the newest
pages, which are then the new template's.

Everything here reads and writes only named columns of raw_pages and
dictionaries, so migrations/versions/0006 can run it on the schema it makes.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from pipeline.archive.defaults import DICTIONARY_AFTER_PAGES, DICTIONARY_DRIFT, DICTIONARY_WINDOW
from pipeline.archive.models import CompressionDictionary, RawPage
from pipeline.reading import compression
from pipeline.reading.compression import CorruptPage, Dictionary

# The newest article pages a dictionary is trained on (zstd wants ~100x its size in samples:
# about 1,500 of the portal's 7 KB pages for 110 KB), and every HELD_OUT-th of them kept out of the
# training to measure it on.
SAMPLE_PAGES = 2000
HELD_OUT = 10
# Pages recompressed per transaction.
RECOMPRESS_BATCH = 500

DICTIONARIES = CompressionDictionary.__table__
RAW_PAGES = RawPage.__table__


class Dictionaries:
    """Dictionaries' bytes by id, read once per id (a few per archive, 110 KB each)."""

    def __init__(self, session: Session):
        self.session = session
        self.data: dict[int, bytes | None] = {}

    def get(self, dictionary_id: int | None) -> bytes | None:
        if dictionary_id is None:
            return None
        if dictionary_id not in self.data:
            self.data[dictionary_id] = self.session.scalar(
                select(DICTIONARIES.c.data).where(DICTIONARIES.c.id == dictionary_id))
        found = self.data[dictionary_id]
        if found is None:
            raise CorruptPage(f"dictionary {dictionary_id} does not exist")
        return found

    def read(self, codec: str, body: bytes, dictionary_id: int | None) -> bytes:
        """A stored page's bytes as fetched; CorruptPage if they cannot be read back."""
        return compression.decompress(codec, body, self.get(dictionary_id))


def page_bytes(page: RawPage) -> bytes:
    """A raw page row's bytes as fetched (its dictionary is loaded once per session)."""
    dictionary = page.dictionary.data if page.dictionary_id is not None else None
    return compression.decompress(page.codec, page.body, dictionary)


def current(session: Session) -> Dictionary | None:
    """The dictionary new pages are compressed with: the newest."""
    row = session.execute(select(DICTIONARIES.c.id, DICTIONARIES.c.data)
                          .order_by(DICTIONARIES.c.id.desc()).limit(1)).first()
    return Dictionary(row.id, row.data) if row else None


def _article_pages(limit: int):
    return (select(RAW_PAGES.c.id, RAW_PAGES.c.codec, RAW_PAGES.c.dictionary_id, RAW_PAGES.c.body,
                   RAW_PAGES.c.sha256)
            .where(RAW_PAGES.c.http_status == 200).order_by(RAW_PAGES.c.id.desc()).limit(limit))


def has_pages(session: Session, count: int) -> bool:
    """Whether the archive holds at least `count` article pages (reads at most that many ids)."""
    ids = select(RAW_PAGES.c.id).where(RAW_PAGES.c.http_status == 200).limit(count).subquery()
    return (session.scalar(select(func.count()).select_from(ids)) or 0) >= count


def train(session: Session, reason: str, *, pages: int = SAMPLE_PAGES,
          size: int = compression.DICTIONARY_BYTES, now: datetime | None = None) -> CompressionDictionary:
    """A new dictionary from the newest `pages` article pages, measured on those held out; flushed,
    not committed."""
    known = Dictionaries(session)
    samples = []
    for row in session.execute(_article_pages(pages).execution_options(yield_per=200)):
        try:
            samples.append(known.read(row.codec, row.body, row.dictionary_id))
        except CorruptPage:
            continue  # verify reports it; it teaches nothing
    held_out = samples[::HELD_OUT] if len(samples) >= 2 * HELD_OUT else samples
    training = [s for i, s in enumerate(samples) if i % HELD_OUT] if held_out is not samples else samples
    data = compression.train(training, size)
    stored = sum(len(compression.compress(s, data)) for s in held_out)
    fetched = sum(len(s) for s in held_out)
    through = session.scalar(select(func.max(RAW_PAGES.c.id))) or 0
    row = CompressionDictionary(
        created_at=now or datetime.now(timezone.utc), algorithm=compression.ZSTD, data=data,
        trained_through=through,
        samples=len(training), sample_bytes=sum(len(s) for s in training), ratio=stored / max(fetched, 1),
        bytes_per_page=stored / max(len(held_out), 1), reason=reason)
    session.add(row)
    session.flush()
    return row


def _ratio(session: Session, dictionary: CompressionDictionary, window: int, newest: bool) -> float | None:
    pages = (select(func.length(RAW_PAGES.c.body).label("stored"), RAW_PAGES.c.size)
             .where(RAW_PAGES.c.dictionary_id == dictionary.id, RAW_PAGES.c.http_status == 200,
                    RAW_PAGES.c.id > dictionary.trained_through)
             .order_by(RAW_PAGES.c.id.desc() if newest else RAW_PAGES.c.id).limit(window).subquery())
    count, stored, fetched = session.execute(
        select(func.count(), func.sum(pages.c.stored), func.sum(pages.c.size))).one()
    if count < window or not fetched:
        return None
    return stored / fetched


def drift(session: Session, dictionary: CompressionDictionary, window: int) -> float | None:
    """How many times the stored/fetched ratio of the first `window` pages the dictionary compressed
    after its training the newest `window` take; None until it has compressed twice that many."""
    if _ratio(session, dictionary, 2 * window, newest=False) is None:
        return None  # the first and the newest pages would overlap
    return _ratio(session, dictionary, window, newest=True) / _ratio(session, dictionary, window, newest=False)


def recompress(session: Session, dictionary: Dictionary, *, after_id: int = 0,
               limit: int = RECOMPRESS_BATCH) -> tuple[int, int | None]:
    """Recompress with `dictionary` the next `limit` pages stored without one (ids above
    `after_id`): (pages rewritten, the last id looked at, None when there were none). A page whose
    bytes do not read back as its sha256 is left as it is, for verify to report. Not committed."""
    known = Dictionaries(session)
    rows = session.execute(
        select(RAW_PAGES.c.id, RAW_PAGES.c.codec, RAW_PAGES.c.dictionary_id, RAW_PAGES.c.body,
               RAW_PAGES.c.sha256)
        .where(RAW_PAGES.c.dictionary_id.is_(None), RAW_PAGES.c.id > after_id)
        .order_by(RAW_PAGES.c.id).limit(limit)).all()
    if not rows:
        return 0, None
    rewritten = []
    for row in rows:
        try:
            raw = known.read(row.codec, row.body, row.dictionary_id)
        except CorruptPage:
            continue
        if hashlib.sha256(raw).hexdigest() != row.sha256:
            continue
        rewritten.append({"page": row.id, "body": compression.compress(raw, dictionary.data),
                          "codec": compression.ZSTD, "dictionary_id": dictionary.id})
    if rewritten:
        session.execute(update(RAW_PAGES).where(RAW_PAGES.c.id == bindparam("page"))
                        .values(body=bindparam("body"), codec=bindparam("codec"),
                                dictionary_id=bindparam("dictionary_id")),
                        rewritten, execution_options={"synchronize_session": False})
    return len(rewritten), rows[-1].id


def recompress_all(session: Session, dictionary: Dictionary, *, limit: int = RECOMPRESS_BATCH,
                   progress=None) -> int:
    """recompress until no page is left without a dictionary, committing each batch: killed at any
    point, what is committed is whole pages, and running it again goes on where it stopped."""
    total, last = 0, 0
    while True:
        done, last = recompress(session, dictionary, after_id=last, limit=limit)
        if last is None:
            return total
        session.commit()
        total += done
        if progress:
            progress(total)


def first_dictionary(session: Session, after_pages: int = DICTIONARY_AFTER_PAGES, *,
                     now: datetime | None = None) -> CompressionDictionary | None:
    """The archive's first dictionary, trained now if it has none and holds `after_pages` article
    pages (None if not yet); flushed, not committed. A first crawl's writer calls this after every
    batch (pipeline/archive/writer.py), so the pages after the first few hundred are stored
    compressed with it."""
    if current(session) is not None or not has_pages(session, after_pages):
        return None
    return train(session, f"the archive's first, at {after_pages} or more article pages", now=now)


def maintain(session: Session, *, after_pages: int = DICTIONARY_AFTER_PAGES, window: int = DICTIONARY_WINDOW,
             factor: float = DICTIONARY_DRIFT, now: datetime | None = None) -> str | None:
    """Train the archive's first dictionary, or a new one when the portal's template changed, and
    recompress the pages stored without one; what it did, in words, or None. Commits."""
    newest = session.scalars(select(CompressionDictionary).order_by(CompressionDictionary.id.desc())
                             .limit(1)).first()
    said = None
    if newest is None:
        newest = first_dictionary(session, after_pages, now=now)
        if newest is None:
            return None
        said = f"trained dictionary {newest.id} on {newest.samples} pages ({newest.bytes_per_page:.0f} B a page)"
    else:
        grown = drift(session, newest, window)
        if grown is not None and grown > factor:
            old = newest
            newest = train(session, f"template change: the newest {window} pages compressed with dictionary "
                                    f"{old.id} took {grown:.2f} times the bytes of its first {window}", now=now)
            said = (f"retrained: dictionary {newest.id} replaces {old.id} (its newest pages took {grown:.2f} "
                    f"times the bytes of its first); {newest.bytes_per_page:.0f} B a page")
    session.commit()
    recompressed = recompress_all(session, Dictionary(newest.id, newest.data))
    if recompressed:
        said = (said + "; " if said else "") + f"recompressed {recompressed} pages with dictionary {newest.id}"
    return said
