"""The archive as WARC files (WARC/1.1, ISO 28500): what web archives exchange and pywb replays.

Every version keeps the page it was read from, which is exactly what a WARC
`response` record holds. Per article, in version order:

- the first time a raw page is met, a `response` record: the portal's status
  line and the headers the archive keeps (pipeline.reading.records.KEPT_HEADERS;
  Content-Length set to the bytes stored, which are the page as served, with
  any transfer or content coding undone by the crawler), the bytes as fetched,
  `WARC-Date` the moment they were fetched;
- a later version whose page is those same bytes again (the archive stores
  identical bytes from one URL once: an edit taken back, a return after a
  takedown), a `revisit` record of profile identical-payload-digest at that
  version's fetch time, pointing at the response by `WARC-Refers-To-Target-URI`
  and `WARC-Refers-To-Date`;
- a takedown's answer (404, 410, a redirect to the channel) is a version's
  page like any other: its own `response` record;
- then the pages that went to quarantine (without a channel, so not with
  `channel`), each a `response`.

Nothing is held in memory beyond one article's few records: the rows are read
in chunks (`yield_per`), each page decompressed when its record is written.
A new file is started when one passes `max_bytes`; each begins with a
`warcinfo` record. A CDXJ index of all the files (cdxj-indexer) is written
beside them, which pywb and other replay tools read.
"""
from __future__ import annotations

import http
import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from pipeline.archive.models import Article, ArticleVersion, Quarantine, RawPage
from pipeline.archive.rawpages import Dictionaries

# The size past which a new file is started: the usual 1 GB of web archives (Heritrix's default).
MAX_BYTES = 1_000_000_000
# Rows read from the database at a time.
CHUNK = 200
SOFTWARE = "portal-archive"

_PAGE = (RawPage.id, RawPage.url, RawPage.fetched_at, RawPage.http_status, RawPage.headers, RawPage.size,
         RawPage.body, RawPage.codec, RawPage.dictionary_id)


@dataclass
class WarcExport:
    """What an export wrote."""

    files: list[Path] = field(default_factory=list)
    index: Path | None = None
    responses: int = 0
    revisits: int = 0
    quarantined: int = 0
    versions: int = 0
    bytes: int = 0

    @property
    def records(self) -> int:
        return self.responses + self.revisits


def _warc_date(value: datetime) -> str:
    return datetime_to_iso_date(value.astimezone(timezone.utc).replace(tzinfo=None), use_micros=True)


def http_headers(status: int, headers: dict, length: int) -> StatusAndHeaders:
    """The status line and headers of a stored answer, its length the bytes stored."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    pairs = [(name, str(value)) for name, value in (headers or {}).items()
             if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")]
    pairs.append(("Content-Length", str(length)))
    return StatusAndHeaders(f"{status} {reason}".strip(), pairs, protocol="HTTP/1.1")


class _Files:
    """WARC files under one prefix, rolled at a size."""

    def __init__(self, prefix: Path, max_bytes: int, info: dict):
        self.prefix, self.max_bytes, self.info = prefix, max_bytes, info
        self.paths: list[Path] = []
        self.out = None
        self.writer = None

    def write(self, record) -> None:
        if self.out is None:
            self._open()
        self.writer.write_record(record)
        if self.out.tell() >= self.max_bytes:
            self.close()

    def _open(self) -> None:
        path = self.prefix.with_name(f"{self.prefix.name}-{len(self.paths) + 1:05d}.warc.gz")
        self.paths.append(path)
        self.out = open(path, "wb")
        self.writer = WARCWriter(self.out, gzip=True, warc_version="1.1")
        self.writer.write_record(self.writer.create_warcinfo_record(path.name, self.info))

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = self.writer = None


def write_warc(session: Session, prefix: str | os.PathLike, *, since: datetime | None = None,
               channel: str | None = None, aid: int | None = None, max_bytes: int = MAX_BYTES,
               index: bool = True, info: dict | None = None, progress=None) -> WarcExport:
    """Write the archive's pages under `prefix` (DIR/name: DIR/name-00001.warc.gz, …, DIR/name.cdxj).

    `since`: only versions fetched at or after it (an incremental export; a revisit may then
    point at a response of an earlier export); `channel` (its name) and `aid` narrow it to
    articles. `progress(versions)` is called every chunk.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    files = _Files(prefix, max_bytes, {"software": SOFTWARE, "format": "WARC File Format 1.1",
                                       "conformsTo": "https://iipc.github.io/warc-specifications/"
                                                     "specifications/warc-format/warc-1.1/",
                                       **(info or {})})
    builder = WARCWriter(io.BytesIO(), warc_version="1.1")  # makes records; _Files writes them
    dictionaries = Dictionaries(session)
    result = WarcExport()
    try:
        _versions(session, files, builder, dictionaries, result, since, channel, aid, progress)
        if channel is None:
            _quarantined(session, files, builder, dictionaries, result, since, aid)
    finally:
        files.close()
    result.files = files.paths
    result.bytes = sum(path.stat().st_size for path in files.paths)
    if index and files.paths:
        result.index = write_cdxj(files.paths, prefix.with_name(prefix.name + ".cdxj"))
    return result


def _response(builder, page, raw: bytes):
    return builder.create_warc_record(
        page.url, "response", payload=io.BytesIO(raw), length=len(raw),
        http_headers=http_headers(page.http_status, page.headers, len(raw)),
        warc_headers_dict={"WARC-Date": _warc_date(page.fetched_at)})


def _page_bytes(page, dictionaries: Dictionaries) -> bytes:
    return dictionaries.read(page.codec, page.body, page.dictionary_id)


def _versions(session, files, builder, dictionaries, result, since, channel, aid, progress) -> None:
    query = (select(Article.aid, ArticleVersion.fetched_at.label("version_fetched_at"), *_PAGE)
             .join(Article, ArticleVersion.article_id == Article.id)
             .join(RawPage, ArticleVersion.raw_page_id == RawPage.id))
    if since is not None:
        query = query.where(ArticleVersion.fetched_at >= since)
    if channel is not None:
        query = query.where(Article.channel == channel)
    if aid is not None:
        query = query.where(Article.aid == aid)
    query = query.order_by(Article.aid, ArticleVersion.version).execution_options(yield_per=CHUNK)
    current_aid = None
    # This article's pages written so far: raw page id -> (payload digest, the capture times written).
    written: dict[int, tuple[str, set[datetime]]] = {}
    for row in session.execute(query):
        if row.aid != current_aid:
            current_aid, written = row.aid, {}
        result.versions += 1
        if row.id not in written:
            record = _response(builder, row, _page_bytes(row, dictionaries))
            files.write(record)
            result.responses += 1
            written[row.id] = (record.rec_headers.get_header("WARC-Payload-Digest"), {row.fetched_at})
        digest, times = written[row.id]
        if row.version_fetched_at not in times:
            files.write(builder.create_revisit_record(
                row.url, digest, row.url, _warc_date(row.fetched_at),
                http_headers=http_headers(row.http_status, row.headers, row.size),
                warc_headers_dict={"WARC-Date": _warc_date(row.version_fetched_at)}))
            result.revisits += 1
            times.add(row.version_fetched_at)
        if progress and result.versions % CHUNK == 0:
            progress(result.versions)


def _quarantined(session, files, builder, dictionaries, result, since, aid) -> None:
    """Quarantined pages no version reads from, one response each (a page quarantined twice with
    the same bytes is one raw page)."""
    used = exists().where(ArticleVersion.raw_page_id == RawPage.id)
    query = (select(*_PAGE).where(RawPage.id.in_(select(Quarantine.raw_page_id).where(
        *(() if aid is None else (Quarantine.aid == aid,))))).where(~used))
    if since is not None:
        query = query.where(RawPage.fetched_at >= since)
    for row in session.execute(query.order_by(RawPage.id).execution_options(yield_per=CHUNK)):
        files.write(_response(builder, row, _page_bytes(row, dictionaries)))
        result.responses += 1
        result.quarantined += 1


# The index lines the indexer sorts in memory before it merges sorted runs from temporary files
# (its default is 32 MB; a line is about 300 bytes: some 14,000 records).
SORT_BUFFER = 4 * 1024 * 1024


def write_cdxj(paths: list[Path], output: Path) -> Path:
    """A sorted CDXJ index of the files (cdxj-indexer), filenames relative to their directory."""
    from cdxj_indexer.main import write_cdx_index

    write_cdx_index(str(output), [str(p) for p in paths], {"sort": True, "dir_root": str(paths[0].parent),
                                                            "max_sort_buff_size": SORT_BUFFER})
    return output
