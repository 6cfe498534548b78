"""The batch write path is set-wise and writes exactly what one item at a time writes.

ArchiveWriter.write decides per item, in aid order, and leaves the rows to its Batch, which writes
them with a few statements per batch (pipeline/archive/batch.py). The same items written as mixed
batches and one item per batch must leave the same archive: versions, change kinds, closes,
takedowns, articles, raw pages, fingerprints, copies, checks, quarantine, the search index, and
the same outcome counts; and a batch's statements must not grow with its edits.
"""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, event, text

from pipeline import stats
from pipeline.archive import runs
from pipeline.archive.db import open_archive, session_factory
from pipeline.archive.outcomes import Written
from pipeline.archive.writer import ArchiveWriter
from pipeline.reading.fingerprint import fingerprint
from pipeline.reading.records import ArticleGone, ArticleNotModified, CleanArticle, FetchFailed, Page, Rejected
from tests.conftest import new_database

pytestmark = pytest.mark.archive
BASE = "http://portal.test"
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
CJK = "储能电站光伏电网风电核电氢能源发展项目建设投资市场企业技术政策改革国家地方标准产业安全质量"


def paragraphs(seed: str, count: int = 4) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(CJK) for _ in range(40)) + "。" for _ in range(count)]


class Items:
    """Items with increasing fetch times, as a crawl hands them to the writer."""

    def __init__(self):
        self.clock = T0

    def _at(self) -> datetime:
        self.clock += timedelta(minutes=7)
        return self.clock

    def article(self, aid: int, title: str, body: list[str], extraction: str = "profile") -> CleanArticle:
        at = self._at()
        url = f"{BASE}/news/hyzx/2026/0301/{aid}.html"
        text_ = "\n".join(body)
        page = Page.of(f"<html><h1>{title}</h1>{text_}</html>".encode(), url=url, http_status=200, headers={},
                       fetched_at=at, encoding="utf-8")
        return fingerprint(CleanArticle(
            aid=aid, url=url, page=page, channel="行业资讯", title=title,
            published_at=T0 - timedelta(days=aid), lede=None, body_html="".join(f"<p>{p}</p>" for p in body),
            body_text=text_, editor="编辑", source=None, origin_source=None, tags=["储能"], extraction=extraction))

    def gone(self, aid: int) -> ArticleGone:
        return ArticleGone(f"{BASE}/news/hyzx/2026/0301/{aid}.html", aid, 404, self._at(), "HTTP 404",
                           raw=b"<html>not found</html>")

    def not_modified(self, aid: int) -> ArticleNotModified:
        return ArticleNotModified(f"{BASE}/news/hyzx/2026/0301/{aid}.html", aid, self._at())

    def rejected(self, aid: int) -> Rejected:
        url = f"{BASE}/news/hyzx/2026/0301/{aid}.html"
        at = self._at()
        return Rejected(url, aid, "no body", at, page=Page.of(b"<html>empty</html>", url=url, http_status=200,
                                                                 headers={}, fetched_at=at, encoding="utf-8"))

    def failed(self, aid: int) -> FetchFailed:
        return FetchFailed(f"{BASE}/news/hyzx/2026/0301/{aid}.html", aid, "timeout", None, self._at())


def history() -> list[list]:
    """Three runs of mixed batches: new articles, copies, edits, an article edited twice in one
    batch, created and edited in one batch, takedown then restore, quarantine, failed fetches."""
    i = Items()
    body = {aid: paragraphs(f"a{aid}") for aid in range(1, 13)}
    run1 = [i.article(aid, f"标题{aid}", body[aid]) for aid in range(1, 7)] + [
        i.article(7, "标题七", body[1]),                          # an exact copy of 1
        i.article(8, "标题八", body[2] + ["附件。"]),               # a near copy of 2
        i.rejected(20), i.failed(21), i.gone(99), i.not_modified(98),
    ]
    run2 = [
        i.article(1, "标题1", body[1][:3] + paragraphs("e1", 1)),   # body edited
        i.article(2, "标题2 修改", body[2]),                          # title edited
        i.article(3, "标题3", body[3][:3] + paragraphs("e3a", 1)),  # edited twice in the batch
        i.article(3, "标题3 再改", body[3][:3] + paragraphs("e3b", 1)),
        i.gone(4), i.article(4, "标题4", body[4][:2] + paragraphs("e4", 2)),  # taken down, then back
        i.gone(5),
        i.article(6, "标题6", body[6]),                               # unchanged
        i.not_modified(6),
        i.article(9, "标题9", body[9]), i.article(9, "标题9", body[9][:3] + paragraphs("e9", 1)),  # new, edited
        i.article(10, "标题十", body[3][:3] + paragraphs("e3b", 1)),  # a copy of 3 as this batch left it
        i.rejected(22), i.failed(1),
    ]
    run3 = [
        i.gone(5),                                                   # still gone
        i.article(5, "标题5", body[5]),                               # restored as it was
        i.article(1, "标题1", body[1][:3] + paragraphs("e1", 1) + ["附件。"], extraction="fallback:test-1"),
        i.gone(3), i.article(3, "标题3", body[3]), i.gone(3),         # down, back, down again
        i.article(4, "标题4", body[4]),                               # back to its first content
        i.article(11, "标题11", body[11]), i.gone(11),                # new and gone in one batch
        i.article(12, "标题12", body[12]),
    ]
    return [run1, run2, run3]


def write(url: str, batched: bool) -> Counter:
    engine = open_archive(url, auto_upgrade=True)
    session = session_factory(engine)()
    outcomes: Counter = Counter()
    try:
        for number, items in enumerate(history()):
            run_id = runs.start_run(engine, "crawl", BASE, {"run": number})
            writer = ArchiveWriter(session, run_id)
            if batched:
                outcomes.update(writer.write(items))
            else:  # the writer's own order (aid, stable), one item per transaction
                for item in sorted(items, key=lambda it: it.aid or 0):
                    outcomes.update(writer.write([item]))
    finally:
        session.close()
        engine.dispose()
    return outcomes


SNAPSHOT = {
    "articles": "SELECT a.aid, a.canonical_url, a.channel, a.status, a.first_seen_at, a.last_checked_at, "
                "a.last_changed_at, a.current_version, a.content_hash, a.body_hash, a.missing_count, "
                "a.published_at, d.aid, a.etag, a.last_modified, a.born_at, a.changes "
                "FROM articles a LEFT JOIN articles d ON d.id = a.duplicate_of_id",
    "versions": "SELECT a.aid, v.version, v.change, v.content_hash, v.valid_from, v.valid_to, v.fetched_at, "
                "v.crawl_run_id, r.sha256, r.url, v.extraction, v.canonical_url, v.channel, v.title, "
                "v.published_at, v.lede, v.body_html, v.body_text, v.editor, v.source, v.origin_source, "
                "CAST(v.tags AS TEXT), CAST(v.related AS TEXT), CAST(v.context AS TEXT) "
                "FROM article_versions v JOIN articles a ON a.id = v.article_id "
                "JOIN raw_pages r ON r.id = v.raw_page_id",
    "raw_pages": "SELECT url, fetched_at, http_status, encoding, sha256, size, codec FROM raw_pages",
    "fingerprints": "SELECT a.aid, f.paragraph_hash FROM paragraph_fingerprints f "
                    "JOIN articles a ON a.id = f.article_id",
    "checks": "SELECT a.aid, c.crawl_run_id, c.at, c.interval, c.outcome FROM article_checks c "
              "JOIN articles a ON a.id = c.article_id",
    "quarantine": "SELECT q.crawl_run_id, q.url, q.aid, q.reason, r.sha256, q.created_at FROM quarantine q "
                  "LEFT JOIN raw_pages r ON r.id = q.raw_page_id",
    "fetch_failures": "SELECT crawl_run_id, url, aid, reason, http_status, created_at FROM fetch_failures",
}


def snapshot(url: str) -> dict[str, list]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {name: sorted((tuple(r) for r in conn.execute(text(sql))), key=repr)
                   for name, sql in SNAPSHOT.items()}
            versions = {id_: (aid, version) for id_, aid, version in conn.execute(text(
                "SELECT v.id, a.aid, v.version FROM article_versions v JOIN articles a ON a.id = v.article_id"))}
            if engine.dialect.name == "sqlite":
                # Every (token, version, column, offset) the contentless FTS5 index holds.
                conn.execute(text("CREATE VIRTUAL TABLE temp.bigram_terms "
                                  "USING fts5vocab(main, article_bigrams, 'instance')"))
                rows = conn.execute(text("SELECT term, doc, col, offset FROM temp.bigram_terms"))
                out["search index"] = sorted((versions[doc], term, col, offset) for term, doc, col, offset in rows)
            else:
                rows = conn.execute(text("SELECT version_id, part, terms::text, trigrams::text FROM article_bigrams"))
                out["search index"] = sorted((versions[v], part, terms, trigrams) for v, part, terms, trigrams in rows)
    finally:
        engine.dispose()
    return out


def test_batches_write_what_one_item_at_a_time_writes(request, tmp_path):
    one_by_one = new_database(request, tmp_path, "one_by_one")
    batched = new_database(request, tmp_path, "batched")
    assert write(batched, batched=True) == write(one_by_one, batched=False)
    expected, got = snapshot(one_by_one), snapshot(batched)
    for table in expected:
        assert got[table] == expected[table], table

    changes = {}
    for aid, version, change, *_ in got["versions"]:
        changes.setdefault(aid, []).append((version, change))
    kinds = {aid: [c for _, c in sorted(v)] for aid, v in changes.items()}
    assert kinds[1] == ["created", "edited", "reextracted"]
    assert kinds[3] == ["created", "edited", "edited", "taken_down", "restored", "taken_down"]
    assert kinds[4] == ["created", "taken_down", "restored", "edited"]
    assert kinds[5] == ["created", "taken_down", "restored"]
    assert kinds[6] == ["created"]
    assert kinds[9] == ["created", "edited"]
    assert kinds[11] == ["created", "taken_down"]
    # Each article has one open version, the newest; every closed one ends where the next begins.
    by_key = {(row[0], row[1]): row for row in got["versions"]}
    for (aid, version), row in by_key.items():
        following = by_key.get((aid, version + 1))
        assert row[5] == (following[4] if following else None), (aid, version)
    # The index holds the open versions only.
    open_versions = {(aid, version) for (aid, version), row in by_key.items() if row[5] is None}
    assert {key for key, *_ in got["search index"]} == open_versions
    copies = {row[0]: row[12] for row in got["articles"]}
    assert copies[7] == 1 and copies[8] == 2 and copies[10] == 3


def test_the_outcomes_are_counted_as_before(request, tmp_path):
    outcomes = write(new_database(request, tmp_path), batched=True)
    count = lambda written: outcomes[stats.archive(written)]  # noqa: E731
    assert count(Written.NEW) == 12
    assert count(Written.EDITED) == 6  # 1, 2, 3 twice, 9; 4 back to its first content
    assert count(Written.REEXTRACTED) == 1
    assert count(Written.RESTORED) == 3  # 4, 5, 3
    assert count(Written.TAKEN_DOWN) == 5  # 4, 5, 3 twice, 11
    assert count(Written.STILL_GONE) == 1
    assert count(Written.UNCHANGED) == 1  # 6
    assert count(Written.QUARANTINED) == 2
    assert count(Written.FETCH_FAILED) == 2
    assert outcomes[stats.DUPLICATES] == 3


def statements(url: str, edits: int) -> Counter:
    """The statements of one batch that edits `edits` articles, by their first words."""
    engine = open_archive(url, auto_upgrade=True)
    session = session_factory(engine)()
    items = Items()
    try:
        writer = ArchiveWriter(session, runs.start_run(engine, "crawl", BASE, {}))
        writer.write([items.article(aid, f"标题{aid}", paragraphs(f"s{aid}")) for aid in range(1, edits + 1)])
        seen: Counter = Counter()

        def count(conn, cursor, statement, parameters, context, executemany):
            seen[" ".join(statement.split()[:3])] += 1

        event.listen(engine, "before_cursor_execute", count)
        writer.write([items.article(aid, f"标题{aid} 改", paragraphs(f"s{aid}")[:3] + paragraphs(f"t{aid}", 1))
                      for aid in range(1, edits + 1)])
        writer.write([items.gone(aid) for aid in range(1, edits + 1)])
        event.remove(engine, "before_cursor_execute", count)
    finally:
        session.close()
        engine.dispose()
    return seen


def test_a_batch_of_edits_and_takedowns_is_written_set_wise(request, tmp_path):
    few = statements(new_database(request, tmp_path, "few"), 3)
    many = statements(new_database(request, tmp_path, "many"), 40)
    assert many == few
    assert few["INSERT INTO raw_pages"] == 2  # one for the edits, one for the takedowns
    assert few["INSERT INTO article_versions"] == 2
    assert few["UPDATE article_versions SET"] == 2
