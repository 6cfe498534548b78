"""Bytes per stored raw page: zlib (the archive before revision 0006) against zstd with the archive's
trained dictionary, with a .warc.gz record of the same answer for reference.

    .venv/bin/python -m bench.raw_pages [--articles 5000] [--new 500] [-o raw_pages.json]

Generates a replica of `--articles` articles, crawls it into a fresh SQLite archive with the
product's defaults for dictionaries (the crawl's end trains the first one and recompresses the pages
stored before it), then publishes `--new` articles and crawls again: those pages were never seen by
the training, and the reader compressed them with the dictionary as a crawl does. For both sets of
article pages it reports the bytes the archive stores a page, and what zlib-6 (the codec before),
zstd without a dictionary (at the archive's level), zlib with a 32 KB preset dictionary and a gzipped WARC response
record (WARC headers, status line, HTTP headers, body; one gzip member per record, as .warc.gz
files are written) take for the same pages, and the CPU a page costs to compress and decompress.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import FAST_ENV
from pipeline.reading import compression
from replica import ReplicaServer, generate, load_state, mutate, save_state


def crawl(base_url: str, db: str) -> None:
    subprocess.run([sys.executable, "-m", "ops.cli", "crawl", "--base-url", base_url, "--db", db,
                    "--revisit", "none"], check=True, capture_output=True, timeout=3600,
                   env={**os.environ, **FAST_ENV, "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})


def warc_record(url: str, status: int, headers: dict, body: bytes, fetched_at: str) -> bytes:
    """One WARC/1.1 response record, gzipped on its own (what a .warc.gz holds per answer)."""
    http = (f"HTTP/1.1 {status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n").encode("latin-1", "replace") + body
    warc = (f"WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\n"
            f"WARC-Date: {fetched_at}\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http;msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n").encode()
    return gzip.compress(warc + http + b"\r\n\r\n", 6)


def measure(pages: list[dict], dictionary: bytes) -> dict:
    raws = [p["raw"] for p in pages]
    n = len(raws)
    zdict = raws[0][-32768:]  # zlib's preset dictionary: the template as one page's last 32 KB shows it

    def zlib_with_dict(raw):
        c = zlib.compressobj(6, zdict=zdict)
        return c.compress(raw) + c.flush()

    started = time.process_time()
    zlibbed = [zlib.compress(r, 6) for r in raws]
    zlib_cpu = time.process_time() - started
    started = time.process_time()
    zstd_dict = [compression.compress(r, dictionary) for r in raws]
    zstd_cpu = time.process_time() - started
    started = time.process_time()
    for body in zlibbed:
        zlib.decompress(body)
    zlib_read = time.process_time() - started
    started = time.process_time()
    for body in zstd_dict:
        compression.decompress(compression.ZSTD, body, dictionary)
    zstd_read = time.process_time() - started
    per = lambda values: round(sum(map(len, values)) / n, 1)  # noqa: E731
    return {
        "pages": n,
        "fetched_bytes_per_page": per(raws),
        "stored_bytes_per_page": round(sum(p["stored"] for p in pages) / n, 1),
        "zlib6_bytes_per_page": per(zlibbed),
        "zstd_plain_bytes_per_page": per([compression.compress(r) for r in raws]),
        "zstd_dictionary_bytes_per_page": per(zstd_dict),
        "zlib6_32k_preset_bytes_per_page": per([zlib_with_dict(r) for r in raws]),
        "warc_gz_record_bytes": per([warc_record(p["url"], p["status"], p["headers"], p["raw"], p["fetched_at"])
                                     for p in pages]),
        "zlib6_compress_ms": round(zlib_cpu * 1000 / n, 4), "zstd_dict_compress_ms": round(zstd_cpu * 1000 / n, 4),
        "zlib6_decompress_ms": round(zlib_read * 1000 / n, 4),
        "zstd_dict_decompress_ms": round(zstd_read * 1000 / n, 4),
    }


def stored_pages(db: str) -> tuple[list[dict], dict]:
    """The archive's article pages, read back, and its newest dictionary."""
    from pipeline.archive.db import make_engine, session_scope
    from pipeline.archive.rawpages import Dictionaries

    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            known = Dictionaries(session)
            dictionary = session.execute(text("select id, data, samples, trained_through from dictionaries "
                                              "order by id desc limit 1")).one()
            pages = [{"id": r.id, "url": r.url, "status": r.http_status, "headers": json.loads(r.headers)
                      if isinstance(r.headers, str) else r.headers,
                      "fetched_at": str(r.fetched_at), "stored": len(r.body),
                      "raw": known.read(r.codec, r.body, r.dictionary_id), "dictionary_id": r.dictionary_id}
                     for r in session.execute(text(
                         "select id, url, http_status, headers, fetched_at, codec, dictionary_id, body from raw_pages "
                         "where http_status = 200 order by id"))]
            return pages, dictionary._asdict()
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--new", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        save_state(generate(args.articles, seed=args.seed), site)
        db = f"sqlite:///{tmp}/archive.sqlite"
        with ReplicaServer(site) as server:
            started = time.perf_counter()
            crawl(server.url, db)
            first_crawl = time.perf_counter() - started
            engine = create_engine(db)
            with engine.connect() as conn:
                last_id = conn.execute(text("select max(id) from raw_pages")).scalar()
            engine.dispose()
            state = load_state(site)  # the server reads the site's state again when it changes
            mutate(state, seed=args.seed + 1, edits=0, takedowns=0, republish=0, new=args.new)
            save_state(state, site)
            crawl(server.url, db)
        archived, dictionary = stored_pages(db)
        new_pages = [p for p in archived if p["id"] > last_id]
        results = {
            "articles": args.articles, "new": args.new, "zstd_level": compression.ZSTD_LEVEL, "first_crawl_seconds": round(first_crawl, 1),
            "dictionary": {"id": dictionary["id"], "bytes": len(dictionary["data"]), "samples": dictionary["samples"]},
            "archived_by_the_first_crawl": measure([p for p in archived if p["id"] <= last_id], dictionary["data"]),
            "new_articles_after_training": measure(new_pages, dictionary["data"]),
        }
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    d = results["dictionary"]
    print(f"dictionary {d['id']}: {d['bytes']:,} B, trained on {d['samples']} pages; "
          f"first crawl of {args.articles} articles {results['first_crawl_seconds']} s")
    keys = ("fetched_bytes_per_page", "stored_bytes_per_page", "zlib6_bytes_per_page", "zstd_plain_bytes_per_page",
            "zstd_dictionary_bytes_per_page", "zlib6_32k_preset_bytes_per_page", "warc_gz_record_bytes",
            "zlib6_compress_ms", "zstd_dict_compress_ms", "zlib6_decompress_ms", "zstd_dict_decompress_ms")
    sets = ("archived_by_the_first_crawl", "new_articles_after_training")
    print(f"{'':34}" + "".join(f"{s:>30}" for s in sets))
    print(f"{'pages':34}" + "".join(f"{results[s]['pages']:>30}" for s in sets))
    for key in keys:
        print(f"{key:34}" + "".join(f"{results[s][key]:>30}" for s in sets))
    for s in sets:
        r = results[s]
        print(f"{s}: stored/zlib = {r['stored_bytes_per_page'] / r['zlib6_bytes_per_page']:.3f}")


if __name__ == "__main__":
    main()
