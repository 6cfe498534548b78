"""WARC files read as captures: what another tool (or our own export) saw, and when.

Pure: no database, no Scrapy. `scan` walks a file once and says, for every
record, where it is and what it claims (type, URL, date, digests) without
keeping a payload; `capture_at` reads one record back by its offset when its
turn comes. An importer can so put a whole directory of WARCs in capture-time
order with a few hundred bytes per record in memory, then read each page once.

Files are read with warcio, as written by other tools: gzip per record (what
`wget --warc-file`, Heritrix, Browsertrix and our export write) or not
compressed at all; a file gzipped whole cannot be seeked into and is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from warcio.archiveiterator import ArchiveIterator

from pipeline.reading.records import KEPT_HEADERS

# The records that carry an answer of the portal; everything else (warcinfo, request, metadata,
# resource, conversion) is another tool's bookkeeping.
CAPTURE_TYPES = ("response", "revisit")
# A revisit whose payload is the same bytes as an earlier capture's: WARC 1.1 names the profile
# http://netpreserve.org/warc/1.1/revisit/identical-payload-digest (1.0 the same under 1.0/); a
# server-not-modified revisit carries no page (a 304 answer).
IDENTICAL_PAYLOAD = "/identical-payload-digest"


def identical_payload(profile: str | None) -> bool:
    return bool(profile) and profile.rstrip().endswith(IDENTICAL_PAYLOAD)


class BrokenRecord(Exception):
    """A record that cannot be read whole (cut short, bad gzip, bad headers)."""


@dataclass(frozen=True)
class Entry:
    """Where one record is and what it claims, without its payload."""

    path: str
    offset: int
    kind: str  # response, revisit, or another WARC-Type
    url: str
    captured_at: datetime | None
    payload_digest: str | None = None
    profile: str | None = None  # a revisit's WARC-Profile
    refers_to_url: str | None = None
    refers_to_date: datetime | None = None
    problem: str | None = None  # set when the record could not be read whole


@dataclass
class Capture:
    """One answer read back: the status, the headers the archive keeps, the payload as served
    (transfer and content codings undone) and the moment it was captured."""

    url: str
    captured_at: datetime
    http_status: int
    headers: dict
    payload: bytes


def warc_date(value: str | None) -> datetime | None:
    """A WARC-Date (ISO 8601, `Z`, seconds or fractions of them) as an aware UTC datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _uri(value: str | None) -> str:
    # WARC 1.1's grammar put the URI in <>, which some writers followed; 1.1's errata took them out.
    return (value or "").strip().removeprefix("<").removesuffix(">")


def _entry(path: str, offset: int, record, problem: str | None = None) -> Entry:
    headers = record.rec_headers
    return Entry(path, offset, record.rec_type, _uri(headers.get_header("WARC-Target-URI")),
                 warc_date(headers.get_header("WARC-Date")), headers.get_header("WARC-Payload-Digest"),
                 headers.get_header("WARC-Profile"), _uri(headers.get_header("WARC-Refers-To-Target-URI")) or None,
                 warc_date(headers.get_header("WARC-Refers-To-Date")), problem)


def scan(path: str) -> Iterator[Entry]:
    """Every record of a WARC file, in file order. Each record is read to its end, so one cut
    short is found here: it comes as an Entry with `problem` set (its URL if its headers could be
    read), and the file's remaining bytes, which cannot be told apart from it, end the scan."""
    with open(path, "rb") as stream:
        records = ArchiveIterator(stream, ensure_http_headers=False)
        offset = 0
        pending = None
        try:
            for record in records:
                offset = records.get_record_offset()
                pending = record
                if record.rec_type in CAPTURE_TYPES:
                    record.content_stream().read()  # the payload read to its end, decoded: is it whole?
                    digest_problem = _length_problem(record)
                    entry = _entry(path, offset, record, digest_problem)
                else:
                    entry = _entry(path, offset, record)
                records.read_to_end(record)
                pending = None
                yield entry
        except Exception as exc:  # warcio raises what its readers raise: zlib, EOF, a bad header, brotli...
            if pending is not None:
                yield _entry(path, offset, pending, f"truncated WARC record: {_reason(exc)}")
            else:
                yield Entry(path, _next_offset(records, offset), "unreadable", "", None,
                            problem=f"unreadable WARC record: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _next_offset(records, offset: int) -> int:
    try:
        return records.get_record_offset() + records.get_record_length()
    except Exception:  # nothing was read yet
        return offset


def _length_problem(record) -> str | None:
    """A record whose block is shorter than its WARC Content-Length: cut short in an uncompressed
    file (gzip would have failed to inflate first)."""
    declared = record.rec_headers.get_header("Content-Length")
    stream = record.raw_stream
    remaining = getattr(stream, "limit", None)
    if declared and declared.isdigit() and remaining:
        return f"truncated WARC record: {remaining} of its {declared} bytes missing"
    return None


def capture_at(entry: Entry) -> Capture:
    """The answer stored in the record at `entry`, read back whole; BrokenRecord if it is not."""
    with open(entry.path, "rb") as stream:
        stream.seek(entry.offset)
        try:
            record = next(iter(ArchiveIterator(stream, ensure_http_headers=False)))
            if record.http_headers is None:
                raise BrokenRecord("no HTTP answer in the record")
            payload = record.content_stream().read()
            problem = _length_problem(record)
        except StopIteration:
            raise BrokenRecord("no WARC record at this offset") from None
        except BrokenRecord:
            raise
        except Exception as exc:  # as in scan: whatever the readers raise
            raise BrokenRecord(f"truncated WARC record: {_reason(exc)}") from None
    if problem:
        raise BrokenRecord(problem)
    cut = record.rec_headers.get_header("WARC-Truncated")
    if cut:
        # The capturing tool stopped reading the answer (length, time, disconnect): part of a page.
        raise BrokenRecord(f"truncated by the tool that captured it (WARC-Truncated: {cut})")
    http = record.http_headers
    status = http.get_statuscode()
    if not status or not status.isdigit():
        raise BrokenRecord(f"no HTTP status in the record: {http.statusline!r}")
    return Capture(entry.url, entry.captured_at, int(status), kept_headers(http.headers, decoded=True), payload)


def kept_headers(pairs, *, decoded: bool) -> dict:
    """The answer's headers the archive keeps (the crawl keeps the same ones). When the payload
    was decoded from a transfer or content coding, the declared length is the coded one and says
    nothing about the page: it is dropped."""
    names = {name.lower(): name for name in KEPT_HEADERS}
    coded = any(name.lower() in ("content-encoding", "transfer-encoding") for name, _ in pairs)
    out = {}
    for name, value in pairs:
        kept = names.get(name.lower())
        if kept is None or kept in out:
            continue
        if kept == "Content-Length" and decoded and coded:
            continue
        out[kept] = value
    return out
