"""`portal-archive import`: captures of the portal in WARC files, archived as history.

The shape is reparse's (ops/reparse.py): nothing is fetched; each page is
read by the one chain (pipeline.reading.chain.read_page) and written by the
archive's own write path, under the crawl lease, as a run of kind `import`,
one transaction per batch. What is particular to WARCs:

- The files are scanned first (pipeline.reading.warc.scan): every record's
  place, type, URL and date, no payload. The `response` and `revisit`
  records of the portal's article URLs (an article path on the portal's
  host) are then read back one at a time in capture-time order, so an
  article's captures reach the archive in the order they were taken, whichever
  file holds them; other URLs and other record types are counted and skipped.
- A revisit (identical-payload-digest) is the bytes of the response with its
  payload digest (the same URL's first, else any), in any of the files.
- Each capture goes where it belongs in time (versions.record_capture): the
  same page again is nothing new, an edit a new version, a capture older
  than the archive's first version of the article earlier history.
- A record that cannot be read whole (cut short, bad gzip) or a page the
  chain rejects (undecodable, no title, ...) is quarantined with its reason,
  never half-written; a revisit whose payload is in none of the files is
  counted and told.

Running the same files again writes nothing: the pages are found unchanged,
raw pages are stored once, and a quarantine row already there for the same
URL, reason and capture time is not written twice. Killed midway, the same
command finishes the job.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.config import Settings
from ops.crawl_archive import current_dictionary, maintain_dictionaries
from ops.lease import Heartbeat, acquire, holder_id, release, this_process
from pipeline.archive import health, runs
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.models import Quarantine
from pipeline.archive.versions import record_capture, record_quarantine
from pipeline.reading.chain import read_page
from pipeline.reading.compression import Compressor
from pipeline.reading.profile import Profile, load_profile
from pipeline.reading.records import ArticleGone, Rejected
from pipeline.reading.warc import CAPTURE_TYPES, BrokenRecord, Entry, capture_at, identical_payload, scan
from pipeline.stats import read_counts

KIND = "import"
GONE_STATUSES = (404, 410)


@dataclass
class ImportSummary:
    run_id: int
    status: str
    counts: Counter = field(default_factory=Counter)
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        c = self.counts
        return (f"import run {self.run_id} {self.status}: {c['import/records']} records in {c['import/files']} files; "
                f"{c['import/captures']} captures of portal articles ({c['import/revisits']} revisits read from the "
                f"response they refer to): {c['archive/new']} new articles, "
                f"{c['archive/edited'] + c['archive/reextracted']} edits, {c['archive/restored']} returns, "
                f"{c['archive/taken_down']} takedowns, {c['archive/history'] + c['archive/earlier']} earlier history, "
                f"{c['archive/unchanged'] + c['archive/still_gone']} already archived, "
                f"{c['import/quarantined']} quarantined; skipped: {c['import/other_urls']} other URLs, "
                f"{c['import/other_records']} other records, {c['import/other_answers']} other answers, "
                f"{c['import/unresolved_revisits']} revisits without their payload")


def portal_aid(profile: Profile, base_url: str, url: str) -> int | None:
    """The article a captured URL is of: an article path on the portal's host (bare or www.)."""
    try:
        host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
        aid = profile.aid_of(url)
    except ValueError:
        return None
    portal = (urlsplit(base_url).hostname or "").lower().removeprefix("www.")
    return aid if aid is not None and host == portal else None


def run_import(settings: Settings, paths: list[str], progress=None) -> ImportSummary:
    """Archive the portal's captures in the WARC files at `paths`. `progress(done, total)` as it goes."""
    profile = load_profile(settings.profile)
    engine = open_archive(settings.db, auto_upgrade=settings.is_default_db,
                          busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    holder, ttl = holder_id(), timedelta(seconds=settings.lease_ttl_seconds)
    try:
        acquire(engine, holder, KIND, ttl)
        try:
            run_id = runs.start_run(engine, KIND, settings.base_url, {"files": [str(p) for p in paths]},
                                    owner=this_process())
            summary = ImportSummary(run_id, "running")
            try:
                with Heartbeat(engine, holder, ttl, run_id=run_id):
                    _import(engine, settings, profile, paths, run_id, summary, progress)
                summary.status = "succeeded"
            except Exception as exc:  # the run must never be left "running"
                summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
            runs.finish_run_patiently(engine, run_id, summary.status, dict(summary.counts), summary.error,
                                      health=health.run_health(dict(summary.counts)))
        finally:
            release(engine, holder)
        if summary.status == "succeeded":
            maintain_dictionaries(engine, settings)
        return summary
    finally:
        engine.dispose()


class _Captures:
    """The scanned records: the portal's captures to import, in capture-time order, and where
    each payload digest's bytes are."""

    def __init__(self):
        self.captures: list[tuple[datetime, int, int, Entry]] = []
        self.broken: list[tuple[Entry, int | None]] = []
        self.payloads: dict = {}  # digest, or (digest, url) -> the response holding those bytes

    def payload_of(self, revisit: Entry) -> Entry | None:
        return (self.payloads.get((revisit.payload_digest, revisit.refers_to_url or revisit.url))
                or self.payloads.get(revisit.payload_digest))


def _scan(settings: Settings, profile: Profile, paths: list[str], counts: Counter) -> _Captures:
    found = _Captures()
    for path in paths:
        counts["import/files"] += 1
        for entry in scan(str(path)):
            counts["import/records"] += 1
            aid = portal_aid(profile, settings.base_url, entry.url)
            if entry.problem:
                found.broken.append((entry, aid))
                continue
            if entry.kind not in CAPTURE_TYPES:
                counts["import/other_records"] += 1
                continue
            if entry.kind == "response" and entry.payload_digest:
                found.payloads.setdefault((entry.payload_digest, entry.url), entry)
                found.payloads.setdefault(entry.payload_digest, entry)
            if aid is None:
                counts["import/other_urls"] += 1
            elif entry.captured_at is None:
                found.broken.append((Entry(entry.path, entry.offset, entry.kind, entry.url, None,
                                           problem="WARC record without a readable WARC-Date"), aid))
            else:
                found.captures.append((entry.captured_at, aid, len(found.captures), entry))
    found.captures.sort(key=lambda c: c[:3])
    return found


def _import(engine, settings: Settings, profile: Profile, paths: list[str], run_id: int, summary: ImportSummary,
            progress) -> None:
    counts = summary.counts
    found = _scan(settings, profile, paths, counts)
    counts["import/captures"] = len(found.captures)
    compressor = Compressor(current_dictionary(engine))
    with session_scope(engine) as session:
        for entry, aid in found.broken:
            counts["import/quarantined"] += 1
            where = entry.url or f"warc:{os.path.basename(entry.path)}@{entry.offset}"
            summary.problems.append(f"{where}: {entry.problem}")
            _quarantine(session, run_id, Rejected(where, aid, entry.problem, entry.captured_at or _now()),
                        dated=entry.captured_at is not None)
    total = len(found.captures)
    if progress:
        progress(0, total)
    for at in range(0, total, settings.batch_size):
        with session_scope(engine) as session:  # one transaction per batch
            for _when, aid, _order, entry in found.captures[at:at + settings.batch_size]:
                _capture(session, settings, profile, compressor, run_id, found, entry, aid, summary)
        if progress:
            progress(min(total, at + settings.batch_size), total)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _capture(session: Session, settings: Settings, profile: Profile, compressor: Compressor, run_id: int,
             found: _Captures, entry: Entry, aid: int, summary: ImportSummary) -> None:
    counts = summary.counts
    source = entry
    if entry.kind == "revisit":
        if not identical_payload(entry.profile):
            counts["import/other_answers"] += 1  # a server-not-modified revisit holds no page
            return
        source = found.payload_of(entry)
        if source is None:
            counts["import/unresolved_revisits"] += 1
            summary.problems.append(f"{entry.url} at {entry.captured_at.isoformat()}: a revisit of "
                                    f"{entry.payload_digest}, whose response is in none of the files")
            return
        counts["import/revisits"] += 1
    try:
        capture = capture_at(source)
    except BrokenRecord as exc:
        counts["import/quarantined"] += 1
        summary.problems.append(f"{entry.url}: {exc}")
        _quarantine(session, run_id, Rejected(entry.url, aid, str(exc), entry.captured_at))
        return
    url, when, status, headers = entry.url, entry.captured_at, capture.http_status, capture.headers
    if status in GONE_STATUSES:
        item = ArticleGone(url, aid, status, when, f"HTTP {status}", raw=capture.payload, headers=headers)
    elif 300 <= status < 400:
        target = urljoin(url, headers.get("Location", ""))
        if not profile.takedown_redirect(target, settings.base_url):
            counts["import/other_answers"] += 1  # moved elsewhere: the target's own capture says what is there
            return
        item = ArticleGone(url, aid, status, when, f"redirected to channel {target}", raw=capture.payload,
                           headers=headers)
    elif status != 200:
        counts["import/other_answers"] += 1  # a 5xx or a 304 says nothing of the article
        return
    else:
        item = read_page(profile, capture.payload, url=url, fetched_at=when, aid=aid, http_status=status,
                         headers=headers, compressor=compressor)
        if isinstance(item, Rejected):
            counts.update(read_counts(item.fields.get("extraction"), None))
            counts["import/quarantined"] += 1
            summary.problems.append(f"{url}: {item.reason}")
            _quarantine(session, run_id, item)
            return
        counts.update(read_counts(item.extraction, item.content_fields()))
    outcome = record_capture(session, run_id, item)
    counts[f"archive/{outcome}"] += 1


def _quarantine(session: Session, run_id: int, item: Rejected, dated: bool = True) -> None:
    """Quarantined once: the same URL with the same reason at the same capture time is there already."""
    query = select(Quarantine.id).where(Quarantine.url == item.url, Quarantine.reason == item.reason)
    if dated:
        query = query.where(Quarantine.created_at == item.fetched_at)
    if session.scalars(query.limit(1)).first() is None:
        record_quarantine(session, run_id, item)
