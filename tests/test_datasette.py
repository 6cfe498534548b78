"""The SQLite archive opened with Datasette (the installed package, `datasette serve` on a loopback port) and
the shipped metadata (datasette/metadata.json): two-character words through `_search`, longer ones through
the `search` query, only current versions found. SQLite only: Datasette reads SQLite files."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import query
from tests.test_web_unit import T0, Archive, article

METADATA = Path(__file__).resolve().parent.parent / "datasette" / "metadata.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def datasette(tmp_path):
    """A Datasette server over a small archive named as the default one (var/archive.sqlite: database `archive`)."""
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    archive = Archive(url)
    archive.write(
        article(101, "光伏逆变器出口增长", ["今年光伏逆变器出口同比增长三成。", "企业加快海外布局。"]),
        article(102, "储能电站并网运行", ["国内最大的钠离子电池储能电站并网运行。"]),
        article(103, "充电桩建设提速", ["城市充电基础设施建设持续提速,光伏车棚成为新亮点。"]),
        article(104, "抽水蓄能电站开工", ["年内将开工一批抽水蓄能项目。"]),
    )
    # 104 no longer mentions 储能: its old version must not be found.
    archive.write(article(104, "水电站开工", ["年内将开工一批水电项目。"], at=T0 + timedelta(days=1)))
    archive.engine.dispose()
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "datasette"), "serve", str(tmp_path / "archive.sqlite"),
         "--metadata", str(METADATA), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/versions.json", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"datasette did not start: {server.stdout.read()}") from None
                time.sleep(0.2)
        yield base, url
    finally:
        server.terminate()
        server.wait(30)


def _get(url: str):
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


def _aids(db: str, version_ids: list[int]) -> list[int]:
    if not version_ids:
        return []
    marks = ",".join("?" * len(version_ids))
    return sorted(aid for (aid,) in query(db, f"SELECT a.aid FROM articles a JOIN article_versions v "
                                              f"ON v.article_id = a.id WHERE v.id IN ({marks})", *version_ids))


def test_datasette_searches_two_character_words_and_longer_ones(datasette):
    base, db = datasette

    def search(word: str, **params) -> list[int]:
        rows = _get(f"{base}/archive/article_versions.json?" + urllib.parse.urlencode(
            {"_search": word, "_shape": "array", "_col": "title", **params}))
        return _aids(db, [row["id"] for row in rows])

    def canned(word: str) -> list[int]:
        return sorted(row["aid"] for row in _get(f"{base}/archive/search.json?" + urllib.parse.urlencode(
            {"q": word, "_shape": "array"})))

    # The table knows its search index (from the metadata), and two characters are one token of it.
    assert search("储能") == [102]
    assert search("光伏") == [101, 103]
    assert search("光伏 车棚") == [103]
    assert search("蓄能") == []  # only in 104's old version
    assert search("氢能") == []
    # Longer words: the canned query splits them, or a raw phrase of the pieces.
    assert canned("钠离子电池") == [102]
    assert canned("光伏逆变器") == [101]
    assert canned("储能") == [102]
    assert canned("抽水蓄能") == []
    assert search('"钠离 离子 子电 电池"', _searchmode="raw") == [102]
