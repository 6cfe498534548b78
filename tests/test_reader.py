"""Reading article pages in a reader process (spiders/reader.py): same archive, and no loose ends.

The reader is how a crawl uses a second core. It must change nothing in what
is archived, a reader that dies must cost at most a re-fetch on the next run,
and a killed crawl must not leave a reader behind.
"""
import os
import signal
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from spiders.reader import PageReader, read_article_page
from tests.conftest import cli, crawl_under_way, export, helper_processes, new_database, query, start_site

QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
WHEN = ("fetched_at", "valid_from", "valid_to")  # when each crawl ran: all else must be equal
FILES = Path(__file__).parent / "files"


def test_a_page_read_in_the_reader_process_equals_one_read_in_place():
    import asyncio

    page = (FILES / "article-12873.html").read_bytes()
    url = "http://127.0.0.1:8000/news/hyzx/2024/0101/1.html"
    args = ("cpsia", page, url, 1, 200, {}, datetime(2026, 2, 12, tzinfo=timezone.utc), "auto", False)
    here = read_article_page(*args)
    reader = PageReader(processes=1)
    try:
        there = asyncio.run(reader.run(read_article_page, *args))
    finally:
        reader.close()
    assert there == here
    assert here.body_text and here.page.sha256  # a real page, read whole: not two empty readings


def test_crawls_with_and_without_a_reader_process_archive_the_same(request, tmp_path):
    site = start_site(tmp_path / "site", 300, seed=41)
    try:
        exports = []
        for processes in ("1", "0"):
            db = new_database(request, tmp_path, f"p{processes}")
            cli("crawl", "--base-url", site.url, "--db", db, env={**QUIET, "PORTAL_ARCHIVE_PARSE_PROCESSES": processes})
            exports.append({r["aid"]: {k: v for k, v in r.items() if k not in WHEN} for r in export(db)})
        assert len(exports[0]) == 300
        assert exports[0] == exports[1]
    finally:
        site.server.stop()


def test_a_killed_reader_is_replaced_and_its_pages_read_again(request, tmp_path):
    site = start_site(tmp_path / "site", 1500, seed=42)
    db = new_database(request, tmp_path)
    env = {**QUIET, "PORTAL_ARCHIVE_PARSE_PROCESSES": "1", "PORTAL_ARCHIVE_BATCH_SIZE": "50"}
    try:
        log = open(tmp_path / "crawl.log", "w")  # shown if the test fails
        crawl = crawl_under_way(site, db, env, log=log)
        readers = helper_processes(crawl.pid, "reader")
        assert readers, "the crawl reads its pages in a reader process"
        for pid in readers:
            os.kill(pid, signal.SIGKILL)
        try:
            code = crawl.wait(300)
        except subprocess.TimeoutExpired:
            crawl.kill()
            pytest.fail("the crawl did not finish:\n" + (tmp_path / "crawl.log").read_text()[-3000:])
        assert code == 0, (tmp_path / "crawl.log").read_text()[-3000:]
        status, stats = query(db, "select status, stats from crawl_runs")[0]
        assert status == "succeeded"
        assert '"portal/reader_restarted": 1' in stats
        assert query(db, "select count(*) from fetch_failures")[0][0] == 0
        assert query(db, "select count(*) from articles")[0][0] == 1500
        assert query(db, "select count(*) from article_versions")[0][0] == 1500
        assert cli("verify", "--db", db, check=False).returncode == 0
    finally:
        site.server.stop()
