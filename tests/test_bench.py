"""The crawl throughput bench itself (bench/): nginx serves a tiny static replica, the bare
spider counts its pages, the ground-truth check catches a damaged archive, and
`python -m bench` runs end to end. Needs Debian's nginx: skipped without it,
except under CI, which installs it (.ci/run) and so fails when it is missing."""
from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.measure import BenchFailure, run_checked
from bench.nginx import NginxServer, nginx_binary
from bench.sites import build_site
from bench.truth import check_archive, export_versions
from tests.conftest import IN_CI, cli

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = 150  # about 30 per channel: two list pages each, so the pager is walked


@pytest.fixture(scope="module")
def nginx_site(tmp_path_factory):
    if nginx_binary() is None:
        if IN_CI:
            pytest.fail("nginx is not installed; .ci/run installs it with apt-get")
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    site = build_site(ARTICLES, seed=5, directory=tmp_path_factory.mktemp("bench-site"))
    with NginxServer(site.www) as server:
        yield site, server
    assert server.process is None and server.prefix is None, "nginx stopped and its prefix removed"


def status_of(url: str) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_nginx_serves_the_static_replica_like_the_portal(nginx_site):
    site, server = nginx_site
    article = next(a for a in site.state.articles.values() if a.live)
    status, headers = status_of(server.url + article.path + "?from=timeline")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=gb2312"
    assert headers.get("ETag") and headers.get("Last-Modified")
    assert status_of(f"{server.url}/m/view.php?aid={article.aid}")[0] == 200
    assert status_of(f"{server.url}/news/hyzx/")[0] == 200
    assert status_of(f"{server.url}/m/view.php?aid=1")[0] == 404
    assert status_of(f"{server.url}/no/such/page.html")[0] == 404
    assert "127.0.0.1" in server.url and server.error_log().count("[emerg]") == 0


def test_bare_spider_walks_every_list_and_article_page(nginx_site, tmp_path):
    site, server = nginx_site
    stats_file = tmp_path / "stats.json"
    result = run_checked([sys.executable, "-m", "bench.bare_spider", server.url, "--stats", str(stats_file),
                          "-s", f"REMOTE_CONTROL_JOBS_DIR={tmp_path / 'jobs'}"],
                         timeout=120, what="the bare spider", env=None, log=tmp_path / "bare.log")
    stats = json.loads(stats_file.read_text())
    assert site.list_pages > 5, "the pager's 下一页 links are followed"
    assert stats["downloader/response_count"] == site.pages == site.list_pages + ARTICLES
    assert stats["item_scraped_count"] == site.pages
    assert stats.get("downloader/response_status_count/200") == site.pages
    assert result.cpu_s > 0 and result.max_rss_kib > 10_000 and result.wall_s > 0


def test_ground_truth_check_passes_a_true_archive_and_catches_a_damaged_one(nginx_site, tmp_path):
    from replica import expected_articles

    site, server = nginx_site
    db_file = tmp_path / "archive.sqlite"
    db = f"sqlite:///{db_file}"
    cli("crawl", "--base-url", server.url, "--db", db, "--revisit", "none", "--no-gap-probes",
        env={"PORTAL_ARCHIVE_OBEY_ROBOTS": "false", "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}, timeout=300)
    expected = expected_articles(site.state, server.url)
    rows = export_versions(db, env=None, timeout=120)
    assert f"{ARTICLES} articles archived exactly once" in check_archive(rows, expected)
    with pytest.raises(BenchFailure, match="exactly 2 version"):
        check_archive(rows, expected, versions_per_article=2)
    with sqlite3.connect(db_file) as conn:
        conn.execute("update article_versions set title = 'x' where id = (select min(id) from article_versions)")
    with pytest.raises(BenchFailure, match="title"):
        check_archive(export_versions(db, env=None, timeout=120), expected)
    with pytest.raises(BenchFailure, match="1 articles missing"):
        check_archive(rows[1:], expected)


def test_python_m_bench_runs_end_to_end(nginx_site, tmp_path):
    out = tmp_path / "latest.json"
    compiled = Path(importlib.util.cache_from_source(str(ROOT / "pipeline" / "archive" / "writer.py")))
    compiled.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-m", "bench", "--sizes", "40", "--repeat", "1", "-o", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    entry = results["sizes"]["40"]
    assert set(entry["runs"]) == {"bare", "crawl", "revisit_conditional", "revisit_unconditional"}
    assert entry["runs"]["crawl"][0]["pages"] == entry["runs"]["bare"][0]["pages"] == entry["pages"]
    for run in ("crawl", "revisit_conditional", "revisit_unconditional"):
        assert entry["ratios"][run]["speed"]["median"] > 0
        assert entry["ratios"][run]["speed_in_scrapy"]["median"] > 0
    for run in entry["runs"]:  # Scrapy's elapsed time lies within the process's
        assert 0 < entry["summary"][run]["outside_scrapy_s"]["median"] < entry["summary"][run]["wall_s"]["median"]
    assert entry["runs"]["revisit_conditional"][0]["responses_304"] == 40
    assert set(entry["revisit_savings"]) == {"revisit_conditional", "revisit_unconditional"}
    assert "crawl wall / this wall" in result.stdout and "s outside Scrapy" in result.stdout
    assert "40 articles archived exactly once" in entry["ground_truth"]
    assert results["postgres"]["status"] == "skipped"
    # Timed as installed: the project's modules were compiled to bytecode first, whatever
    # PYTHONDONTWRITEBYTECODE says (set in CI, where nothing else would write them).
    assert results["bytecode"].startswith("the project's modules compiled before the runs")
    assert compiled.is_file()
    assert "(b) portal-archive crawl" in result.stdout and "pages/s" in result.stdout


def test_python_m_bench_also_crawls_into_postgresql(nginx_site, postgres_server, tmp_path):
    out = tmp_path / "latest.json"
    result = subprocess.run([sys.executable, "-m", "bench", "--sizes", "40", "--repeat", "1", "-o", str(out),
                             "--postgres", postgres_server.url()],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["postgres"]["status"] == "ran", results["postgres"]
    entry = results["sizes"]["40"]
    assert {"crawl@postgresql", "revisit_conditional@postgresql", "revisit_unconditional@postgresql"} <= set(entry["runs"])
    assert "40 articles archived exactly once" in entry["ground_truth@postgresql"]
    assert "[postgresql]" in result.stdout
