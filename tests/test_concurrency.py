"""Concurrent writers (issue 4): 8 processes write the same 200 articles with interleaved edits."""
import multiprocessing
import random
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import new_database, query

pytestmark = pytest.mark.archive
WRITERS, ARTICLES, ROUNDS = 8, 200, 3


def article(aid: int, round_: int):
    from pipeline.reading.fingerprint import fingerprint
    from pipeline.reading.records import CleanArticle, Page

    # Distinct text per article (seeded by its aid), so no two articles are near-duplicates.
    rng = random.Random(aid)
    words = ["".join(chr(0x4E00 + rng.randrange(0x5000)) for _ in range(rng.randint(2, 4))) for _ in range(40)]
    body = ",".join(words[:20]) + f"。第{round_}次修改。\n" + ",".join(words[20:]) + "。"
    page = f"<html><body>{body}</body></html>".encode("gb18030")
    return fingerprint(CleanArticle(
        aid=aid, url=f"http://portal.test/news/djyd/2025/0507/{aid}.html", channel="党建园地",
        page=Page.of(page, url="", http_status=200, headers={}, fetched_at=datetime.now(timezone.utc),
                     encoding="gb18030"),
        title=f"标题{aid}", published_at=datetime(2025, 5, 7, tzinfo=timezone(timedelta(hours=8))),
        lede=None, body_html=f"<p>{body}</p>", body_text=body, editor=None, source=None, origin_source=None,
        tags=[]))


def writer(url: str, barrier, seed: int, results) -> None:
    from pipeline import stats
    from pipeline.archive import runs
    from pipeline.archive.db import make_engine, session_factory
    from pipeline.archive.outcomes import Written
    from pipeline.archive.writer import ArchiveWriter

    engine = make_engine(url, writer=True)
    run_id = runs.start_run(engine, "crawl", "stress", {})
    session = session_factory(engine)()
    out = ArchiveWriter(session, run_id)
    rng = random.Random(seed)
    written = 0
    for round_ in range(ROUNDS):
        barrier.wait(timeout=120)
        items = [article(aid, round_) for aid in range(1, ARTICLES + 1)]
        rng.shuffle(items)
        for start in range(0, len(items), 25):
            outcomes = out.write(items[start:start + 25])
            written += outcomes[stats.archive(Written.NEW)] + outcomes[stats.archive(Written.EDITED)]
    session.close()
    engine.dispose()
    results.put(written)


def test_eight_writers_of_the_same_articles_write_each_version_exactly_once(request, tmp_path):
    url = new_database(request, tmp_path)
    if url.startswith("sqlite"):
        from pipeline.archive.db import upgrade

        upgrade(url)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, barrier, seed, results)) for seed in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    written = sum(results.get(timeout=5) for _ in procs)
    assert written == ARTICLES * ROUNDS, "each (article, content) written by exactly one writer"
    assert query(url, "select count(*) from article_versions")[0][0] == ARTICLES * ROUNDS
    assert query(url, "select count(*) from articles")[0][0] == ARTICLES
    # One open version per article, gapless numbers, no two consecutive versions with the same content.
    assert query(url, "select count(*) from article_versions where valid_to is null")[0][0] == ARTICLES
    assert query(url, "select count(*) from (select article_id from article_versions group by article_id "
                      "having min(version) != 1 or max(version) != count(*) or count(*) != ?) x", ROUNDS)[0][0] == 0
    assert query(url, "select count(*) from article_versions a join article_versions b on a.article_id = b.article_id "
                      "and b.version = a.version + 1 where a.content_hash = b.content_hash")[0][0] == 0
