"""WARC: the archive exported as web archives write it, replayed by pywb, and captures made by
another tool (Debian's `wget --warc-file`) imported as history.

One replica is crawled, captured by wget, changed, captured and crawled again
(and a second archive crawls it only then); one edit is then taken back and
the replica crawled a third time, so the same bytes are seen again (a
revisit). The tests compare what each path archived.
"""
import io
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import IN_CI, cli, export, new_database, query, start_site

pytestmark = pytest.mark.archive

TIMELESS = ("aid", "url", "channel", "version", "status", "change", "title", "published_at", "lede", "body",
            "editor", "source", "origin_source", "tags", "duplicate_of", "content_hash")
WARCIO = Path(sys.executable).parent / "warcio"


def timeless(rows: list[dict]) -> list[dict]:
    return [{k: r[k] for k in TIMELESS} for r in rows]


def wget_capture(urls: list[str], prefix: Path, dedup: Path | None = None) -> Path:
    """Debian's wget writing a WARC of `urls` (redirects recorded, not followed), with a CDX of it."""
    lst = prefix.with_suffix(".urls")
    lst.write_text("\n".join(urls) + "\n")
    args = ["wget", "--no-verbose", "--no-proxy", "--tries=1", "--timeout=20", "--max-redirect=0",
            f"--input-file={lst}", f"--warc-file={prefix}", "--warc-cdx", "--output-document=/dev/null"]
    if dedup is not None:
        args.append(f"--warc-dedup={dedup}")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode in (0, 8), done.stderr[-2000:]  # 8: some answers were 404s
    warc = prefix.with_name(prefix.name + ".warc.gz")
    assert warc.exists(), done.stderr[-2000:]
    return warc


def now() -> datetime:
    return datetime.now(timezone.utc)


def counts(db) -> dict:
    return {table: query(db, f"select count(*) from {table}")[0][0]
            for table in ("articles", "article_versions", "raw_pages", "quarantine")}


@pytest.fixture(scope="module")
def replica(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("warc")
    site = start_site(root / "site", 60, seed=23)
    crawled = new_database(request, root, "crawled")  # crawled at both moments
    later = new_database(request, root, "later")  # crawled at the second moment only
    try:
        cli("crawl", "--base-url", site.url, "--db", crawled)
        urls = [record["url"] for record in site.expected().values()] + [site.url + "/"]
        before = wget_capture(urls, root / "before")
        between = now()
        time.sleep(1.1)  # wget dates its records to the second
        saved = site.state()
        report = site.mutate(seed=5, edits=8, takedowns=4, republish=3, new=4)
        urls = [record["url"] for record in site.expected().values()] + [site.url + "/"]
        after = wget_capture(urls, root / "after", dedup=root / "before.cdx")
        cli("crawl", "--base-url", site.url, "--db", crawled)
        cli("crawl", "--base-url", site.url, "--db", later)
        at_second_moment = export(crawled, "--all-versions")
        # The round taken back whole: every page is the bytes it was at the first moment again, so
        # the third crawl sees the first versions' pages again (revisits), and the new articles gone.
        from replica import save_state

        save_state(saved, site.dir)
        time.sleep(1.1)
        cli("crawl", "--base-url", site.url, "--db", crawled)
        yield {"root": root, "site": site, "crawled": crawled, "later": later, "before": before, "after": after,
               "between": between, "report": report, "at_second_moment": at_second_moment,
               "env": {"PORTAL_ARCHIVE_BASE_URL": site.url}}
    finally:
        site.server.stop()


def raw_pages(db, aid: int) -> list[tuple[int, str, bytes]]:
    """(version, fetched_at, the page's bytes as fetched) of each version of an article."""
    from sqlalchemy import select

    from pipeline.archive.db import open_archive, session_scope
    from pipeline.archive.models import Article, ArticleVersion
    from pipeline.archive.rawpages import page_bytes

    engine = open_archive(db, auto_upgrade=False)
    try:
        with session_scope(engine) as session:
            rows = session.execute(select(ArticleVersion).join(Article).where(Article.aid == aid)
                                   .order_by(ArticleVersion.version)).scalars()
            return [(v.version, v.fetched_at, page_bytes(v.raw_page)) for v in rows]
    finally:
        engine.dispose()


def test_export_is_valid_warc_and_pywb_replays_every_version(replica, tmp_path):
    out = tmp_path / "warc" / "portal"
    done = cli("export", "--db", replica["crawled"], "--format", "warc", "-o", str(out), "--max-bytes", "100000")
    files = sorted(out.parent.glob("portal-*.warc.gz"))
    assert len(files) > 1, done.stderr  # rolled at the size limit
    revisits = int(re.search(r"(\d+) revisits", done.stderr)[1])
    assert revisits >= len(replica["report"]["edited"]), done.stderr  # the edits taken back
    check = subprocess.run([str(WARCIO), "check", "-v", *map(str, files)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert "digest pass" in check.stdout
    index = (out.parent / "portal.cdxj").read_text().splitlines()
    assert index == sorted(index) and len(index) == sum(1 for _ in index)
    assert sum('"mime": "warc/revisit"' in line for line in index) == revisits

    from tests.servers import PywbServer, ServerUnavailable

    try:
        pywb = PywbServer(files).start()
    except ServerUnavailable as exc:
        if IN_CI:
            raise
        pytest.skip(str(exc))
    try:
        edited = [int(aid) for aid in replica["report"]["edited"]]
        for aid in edited:
            versions = raw_pages(replica["crawled"], aid)
            url = next(r["url"] for r in replica["at_second_moment"] if r["aid"] == aid)
            assert len(versions) == 3 and versions[2][2] == versions[0][2]  # the third: a revisit
            for number, fetched_at, page in versions:
                stamp = fetched_at.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
                with urllib.request.urlopen(f"{pywb.url}/{stamp}id_/{url}", timeout=30) as answer:
                    assert answer.read() == page, f"aid {aid} v{number} at {stamp}"
            with urllib.request.urlopen(f"{pywb.url}/timemap/link/{url}", timeout=30) as answer:
                timemap = answer.read().decode()
            listed = re.findall(r'/(\d{14})[a-z_]*/[^>]*>; rel="memento"', timemap)
            stamps = [f.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S") for _, f, _ in versions]
            assert sorted(listed) == stamps, timemap
    finally:
        pywb.stop()


def test_wget_captures_import_as_the_crawls_archived(replica, request, tmp_path):
    db = new_database(request, tmp_path, "imported")
    done = cli("import", "--no-progress", "--db", db, str(replica["before"]), str(replica["after"]),
               env=replica["env"])
    assert " 0 quarantined" in done.stdout and "0 revisits without their payload" in done.stdout, done.stdout
    assert re.search(r"skipped: [1-9]\d* other URLs", done.stdout), done.stdout  # the home page, twice
    assert timeless(export(db, "--all-versions")) == timeless(replica["at_second_moment"])
    cli("verify", "--db", db)
    # wget's second capture stored pages it had seen as revisits: they were resolved from the first file.
    revisits = subprocess.run([str(WARCIO), "index", "-f", "warc-type", str(replica["after"])],
                              capture_output=True, text=True).stdout.count('"revisit"')
    read = int(re.search(r"\((\d+) revisits read from the response", done.stdout)[1])
    assert 0 < read <= revisits, done.stdout  # one of them was the home page's

    before = counts(db)
    again = cli("import", "--no-progress", "--db", db, str(replica["after"]), str(replica["before"]),
                env=replica["env"])
    assert counts(db) == before, again.stdout
    assert "0 new articles, 0 edits" in again.stdout


def test_an_older_capture_becomes_earlier_history(replica):
    """The archive crawled only after the edits learns from wget's earlier capture what came before."""
    db = replica["later"]
    first = {r["aid"]: r for r in export(db, "--all-versions")}
    done = cli("import", "--no-progress", "--db", db, str(replica["before"]), env=replica["env"])
    assert "earlier history" in done.stdout
    cli("verify", "--db", db)
    rows = export(db, "--all-versions")
    edited = {int(aid) for aid in replica["report"]["edited"]}
    truth = {(r["aid"], r["version"]): r for r in replica["at_second_moment"]}
    for aid in edited:
        history = [r for r in rows if r["aid"] == aid]
        assert [r["change"] for r in history] == ["created", "edited"], history
        assert [r["content_hash"] for r in history] == [truth[aid, 1]["content_hash"], truth[aid, 2]["content_hash"]]
        assert history[0]["valid_to"] == history[1]["valid_from"]
        assert history[1]["content_hash"] == first[aid]["content_hash"]
    old = {r["aid"]: r for r in export(db, "--as-of", replica["between"].isoformat())}
    for aid in edited:
        assert old[aid]["content_hash"] == truth[aid, 1]["content_hash"]
    # Unedited articles: one version, which now begins at wget's capture.
    unedited = next(aid for aid in first if aid not in edited and first[aid]["change"] == "created")
    assert [r["version"] for r in rows if r["aid"] == unedited] == [1]
    assert old[unedited]["content_hash"] == first[unedited]["content_hash"]


def test_export_then_import_round_trip(replica, request, tmp_path):
    out = tmp_path / "ours"
    cli("export", "--db", replica["crawled"], "--format", "warc", "-o", str(out / "portal"))
    db = new_database(request, tmp_path, "round")
    files = sorted(map(str, out.glob("*.warc.gz")))
    cli("import", "--no-progress", "--db", db, *files, env=replica["env"])
    assert timeless(export(db, "--all-versions")) == timeless(export(replica["crawled"], "--all-versions"))
    cli("verify", "--db", db)
    before = counts(db)
    again = cli("import", "--no-progress", "--db", db, *files, env=replica["env"])
    assert counts(db) == before and "0 new articles" in again.stdout


def _response(writer, url: str, page: bytes, when: str, truncated: str | None = None):
    from warcio.statusandheaders import StatusAndHeaders

    headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=gb2312"),
                                          ("Content-Length", str(len(page)))], protocol="HTTP/1.1")
    return writer.create_warc_record(url, "response", payload=io.BytesIO(page), length=len(page),
                                     http_headers=headers, warc_headers_dict={
                                         "WARC-Date": when, **({"WARC-Truncated": truncated} if truncated else {})})


def test_broken_records_are_quarantined_never_half_written(replica, request, tmp_path):
    from warcio.warcwriter import WARCWriter

    aids = [r["aid"] for r in replica["at_second_moment"] if r["change"] == "created"][:4]
    (_, _, good), (_, _, bad), (_, _, cut), (_, _, part) = (raw_pages(replica["crawled"], aid)[0] for aid in aids)
    urls = {aid: next(r["url"] for r in replica["at_second_moment"] if r["aid"] == aid) for aid in aids}
    undecodable = bad.replace("</h2>".encode(), b"\xff\xfe</h2>", 1)  # not GB18030, not UTF-8
    assert undecodable != bad
    path = tmp_path / "mixed.warc.gz"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.1")
        writer.write_record(_response(writer, urls[aids[0]], good, "2026-01-01T00:00:00Z"))
        writer.write_record(_response(writer, "http://elsewhere.example/news/djyd/2024/0722/10008.html", good,
                                      "2026-01-01T00:00:01Z"))
        writer.write_record(_response(writer, urls[aids[1]], undecodable, "2026-01-01T00:00:02Z"))
        writer.write_record(_response(writer, urls[aids[3]], part, "2026-01-01T00:00:02Z", truncated="length"))
        whole = io.BytesIO()
        WARCWriter(whole, gzip=True, warc_version="1.1").write_record(
            _response(writer, urls[aids[2]], cut, "2026-01-01T00:00:03Z"))
        out.write(whole.getvalue()[: len(whole.getvalue()) // 2])  # the file ends mid-record
    db = new_database(request, tmp_path, "broken")
    done = cli("import", "--no-progress", "--db", db, str(path), env=replica["env"])
    assert "1 new articles" in done.stdout and "3 quarantined" in done.stdout, done.stdout
    assert "skipped: 1 other URLs" in done.stdout, done.stdout
    assert timeless(export(db)) == [r for r in timeless(replica["at_second_moment"]) if r["aid"] == aids[0]
                                    and r["version"] == 1]
    reasons = dict(query(db, "select aid, reason from quarantine"))
    assert reasons[aids[1]].startswith("undecodable page"), reasons
    assert reasons[aids[2]].startswith("truncated WARC record"), reasons
    assert reasons[aids[3]] == "truncated by the tool that captured it (WARC-Truncated: length)", reasons
    assert counts(db)["article_versions"] == 1
    cli("verify", "--db", db)
    before = counts(db)
    cli("import", "--no-progress", "--db", db, str(path), env=replica["env"])
    assert counts(db) == before


def _gone(writer, url: str, when: str):
    from warcio.statusandheaders import StatusAndHeaders

    page = b"<html><body>not found</body></html>"
    headers = StatusAndHeaders("404 Not Found", [("Content-Type", "text/html"), ("Content-Length", str(len(page)))],
                               protocol="HTTP/1.1")
    return writer.create_warc_record(url, "response", payload=io.BytesIO(page), length=len(page),
                                     http_headers=headers, warc_headers_dict={"WARC-Date": when})


def _warc(path: Path, records) -> str:
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.1")
        for make, *args in records:
            writer.write_record(make(writer, *args))
    return str(path)


def test_captures_between_versions_rechain_the_timeline(replica, request, tmp_path):
    """Captures that fall between what the archive saw are put in their place: the validity chain
    stays ordered and gapless, numbers follow time, and --as-of sees each moment as captured."""
    aid = int(next(iter(replica["report"]["edited"])))
    (_, _, a), (_, _, b), _ = raw_pages(replica["crawled"], aid)
    url = next(r["url"] for r in replica["at_second_moment"] if r["aid"] == aid)
    db = new_database(request, tmp_path, "between")
    cli("import", "--no-progress", "--db", db, env=replica["env"], *[_warc(tmp_path / "seen.warc.gz", [
        (_response, url, a, "2026-01-01T00:00:00Z"), (_response, url, a, "2026-01-01T03:00:00Z")])])
    assert [r["change"] for r in export(db, "--all-versions")] == ["created"]
    later = _warc(tmp_path / "between.warc.gz", [(_response, url, b, "2026-01-01T01:00:00Z"),
                                                 (_gone, url, "2026-01-01T02:00:00Z")])
    done = cli("import", "--no-progress", "--db", db, later, env=replica["env"])
    rows = export(db, "--all-versions")
    assert [(r["version"], r["change"], r["valid_from"][11:19]) for r in rows] == [
        (1, "created", "00:00:00"), (2, "edited", "01:00:00"), (3, "taken_down", "02:00:00"),
        (4, "restored", "03:00:00")], done.stdout
    assert rows[0]["content_hash"] == rows[3]["content_hash"] != rows[1]["content_hash"]
    cli("verify", "--db", db)
    assert export(db, "--as-of", "2026-01-01T01:30:00Z")[0]["content_hash"] == rows[1]["content_hash"]
    assert export(db, "--as-of", "2026-01-01T02:30:00Z")[0]["status"] == "taken_down"
    before = counts(db)
    cli("import", "--no-progress", "--db", db, later, env=replica["env"])
    assert counts(db) == before
    # The edit seen earlier than the archive knew: the boundary moves back, nothing is added.
    cli("import", "--no-progress", "--db", db, env=replica["env"],
        *[_warc(tmp_path / "earlier.warc.gz", [(_response, url, b, "2026-01-01T00:30:00Z")])])
    rows = export(db, "--all-versions")
    assert [r["valid_from"][11:19] for r in rows] == ["00:00:00", "00:30:00", "02:00:00", "03:00:00"]
    assert rows[0]["valid_to"] == rows[1]["valid_from"]
    cli("verify", "--db", db)


def test_bench_measures_an_export(replica, tmp_path):
    """bench.warc's measurement on this small archive (the README's figures are its 20,000-article run)."""
    if not replica["crawled"].startswith("sqlite"):
        pytest.skip("bench.warc reads a SQLite archive")
    from bench.warc import export as measured_export
    from bench.warc import storage

    stored = storage(replica["crawled"])
    figures = measured_export(replica["crawled"], tmp_path / "bench" / "portal")
    assert figures["records"] >= stored["versions"] > 0  # a revisit per version, or a response
    assert 30 < figures["peak_rss_mb"] < 500 and figures["warc_bytes"] > stored["stored_bytes"]
