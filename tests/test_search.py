"""Search means what pipeline/reading/bigrams.py says, on both databases: the index's answers are those of
a plain Python scan of the current versions' title, lede and body, for random corpora (Extension B
characters, Latin words, numbers, punctuation) kept by the write path through edits.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlalchemy import text

from pipeline.archive import runs, search
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.queries import ArticleFilter, list_articles
from pipeline.archive.search import snippet
from pipeline.archive.versions import record_article
from pipeline.reading.bigrams import document_terms, document_tokens, fts5_text, query_pieces, tsquery, tsvector_parts
from pipeline.reading.fingerprint import fingerprint
from pipeline.reading.html import clean_body
from pipeline.reading.records import CleanArticle, Page
from tests.conftest import new_database, query

BASE = "http://portal.test"
T0 = datetime(2026, 2, 12, 4, 0, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Shanghai")

# Few characters, so that random queries often hit: CJK (𠀀𠀁 are Extension B), Latin in both cases, digits,
# and separators.
CJK_CHARS = "储能电站光伏网𠀀𠀁"
ALPHABET = CJK_CHARS + "aAbB19" + " 。,-%"

# The reference, written apart from the split: a piece is a run of CJK ideographs or a run of other letters
# and digits; a CJK piece must be a substring of a field, a word a whole word of it, case-insensitively.
_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ee5f" \
       "\U0002f800-\U0002fa1f\U00030000-\U000323af"
_PIECE = re.compile(f"[{_CJK}]+|(?:(?![{_CJK}])[^\\W_])+")


def reference(q: str, fields: list[str | None]) -> bool:
    for piece in dict.fromkeys(m.group() for m in _PIECE.finditer(q)):
        if re.match(f"[{_CJK}]", piece):
            found = any(piece in (f or "") for f in fields)
        else:
            letter = f"(?![{_CJK}])[^\\W_]"  # a letter or digit that is not CJK
            word = re.compile(f"(?<!{letter}){re.escape(piece.lower())}(?!{letter})")
            found = any(word.search((f or "").lower()) for f in fields)
        if not found:
            return False
    return True


def article(aid: int, title: str, lede: str, body: str, at: datetime) -> CleanArticle:
    url = f"{BASE}/news/hyzx/2026/0212/{aid}.html"
    body_html, body_text = clean_body(f"<p>{body}</p>")
    item = CleanArticle(
        aid=aid, url=url, page=Page.of(f"<html>{aid} {at}</html>".encode(), url=url, http_status=200, headers={},
                                       fetched_at=at, encoding="utf-8"),
        channel="行业资讯", title=title, published_at=T0 - timedelta(minutes=aid), lede=lede or None,
        body_html=body_html, body_text=body_text, editor=None, source=None, origin_source=None, tags=[])
    return fingerprint(item)


texts = st.text(ALPHABET, min_size=1, max_size=24).filter(lambda t: t.strip(" 。,-%"))
documents = st.tuples(texts, st.text(ALPHABET, max_size=12), texts)


@pytest.fixture
def archive(request, tmp_path):
    engine = open_archive(new_database(request, tmp_path), auto_upgrade=True)
    yield engine
    engine.dispose()


def _current(engine) -> dict[int, list[str | None]]:
    url = engine.url.render_as_string(hide_password=False)
    return {aid: [title, lede, body] for aid, title, lede, body in query(
        url, "SELECT a.aid, v.title, v.lede, v.body_text FROM articles a JOIN article_versions v "
             "ON v.article_id = a.id AND v.valid_to IS NULL")}


@pytest.mark.archive
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_search_answers_as_a_substring_scan(archive, data):
    """Each example adds a few articles to the archive and edits some of them in a later run (the old
    versions must leave the index), then asks queries cut from its texts and made up, and compares the
    answers with the scan over every article the archive holds."""
    example = archive._examples = getattr(archive, "_examples", 0) + 1
    docs = data.draw(st.lists(documents, min_size=1, max_size=5))
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(docs) - 1), documents), max_size=3))
    for number, rounds in enumerate([dict(enumerate(docs)), dict(edits)]):
        run_id = runs.start_run(archive, "crawl", BASE, {})
        with session_scope(archive) as session:
            for local, (title, lede, body) in rounds.items():
                record_article(session, run_id, article(example * 10 + local, title, lede, body,
                                                        T0 + timedelta(minutes=2 * example + number)))
        runs.finish_run(archive, run_id, "succeeded", {})
    texts_now = [f for fields in {**dict(enumerate(docs)), **dict(edits)}.values() for f in fields if f]
    cut = st.sampled_from(texts_now).flatmap(
        lambda t: st.tuples(st.integers(0, len(t)), st.integers(1, 5)).map(lambda ab: t[ab[0]:ab[0] + ab[1]]))
    queries = data.draw(st.lists(cut | st.text(ALPHABET, min_size=1, max_size=6)
                                 | st.lists(cut, min_size=2, max_size=3).map(" ".join), min_size=3, max_size=6))
    current = _current(archive)
    with session_scope(archive) as session:
        for q in queries:
            expected = {aid for aid, fields in current.items() if reference(q, fields)}
            # Both ways of asking SQLite's index: probing each version (what a small archive gets), and
            # reading every hit first (what a rare word gets in a large one).
            for probe_cost in (0, 10**12):
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(search, "PROBE_COST", probe_cost)
                    found = list_articles(session, ArticleFilter(q=q), TZ, per_page=1000)
                assert {row.aid for row in found.items} == expected, (q, query_pieces(q), probe_cost)
                assert found.total == len(expected), q
                # Newest first.
                assert [row.published_at for row in found.items] == sorted((r.published_at for r in found.items),
                                                                           reverse=True)


# --- the split itself ---------------------------------------------------------------------

def test_the_split():
    assert query_pieces("储能电站,PV 5G 2025年 pv 储能") == ["储能电站", "pv", "5g", "2025", "年", "储能"]
    assert [t for _, t in document_tokens(["储能电站", "𠀀𠀁𠀂"])] == ["储能", "能电", "电站", "𠀀𠀁", "𠀁𠀂"]
    # Two runs split by punctuation are not adjacent: 储能源 must not be found in 储能。能源.
    assert fts5_text("储能。能源") == "储能 \ue000 能源"
    assert tsvector_parts(["储能。能源"]) == [("'储能':1 '能源':3", "")]
    # PostgreSQL keeps a run's trigrams at their first bigram's position (a tsvector of their own), and a
    # longer piece is the phrase of its trigrams.
    assert document_terms(["储能电站", "站光"]) == [
        (1, "储能"), (1, "储能电"), (2, "能电"), (2, "能电站"), (3, "电站"), (5, "站光")]
    assert tsquery("储能电站") == "'储能电' <-> '能电站'" and tsquery("储能电") == "'储能电'"
    assert tsquery("储能电站", adjacent=False) == "'储能电' & '能电站'" and tsquery("储能") == "'储能'"
    assert tsvector_parts(["储能电站", "站光"]) == [("'储能':1 '能电':2 '电站':3 '站光':5", "'储能电':1 '能电站':2")]


def test_a_long_document_is_cut_into_overlapping_parts_that_keep_every_phrase():
    body = "储能" * 20_000  # one lexeme 40,000 times: PostgreSQL keeps 256 positions of a lexeme
    parts = [" ".join(filter(None, pair)) for pair in tsvector_parts([body])]
    assert len(parts) > 50
    for part in parts:
        for lexeme in part.split(" "):
            positions = [int(p) for p in lexeme.split(":")[1].split(",")]
            assert len(positions) <= 255 and max(positions) <= 16_383
    # Every phrase up to the longest a query can ask for lies whole in one part: the parts overlap.
    text = "".join(chr(0x4E00 + i % 5000) for i in range(40_000))  # distinct bigrams, positions run out first
    parts = [dict((lexeme.split(":")[0].strip("'"), lexeme) for lexeme in " ".join(pair).split(" "))
             for pair in tsvector_parts([text])]
    assert len(parts) >= 3
    for at in range(0, len(text) - 101, 997):
        phrase = tsquery(text[at:at + 100]).split(" <-> ")
        assert len(phrase) == 98
        assert any(all(t.strip("'") in part for t in phrase) for part in parts), at


def test_the_snippet_marks_whole_words_and_chinese_anywhere():
    pieces = snippet("PVC 不是 PV,储能电站", "pv 储能")
    assert [(t, hit) for t, hit in pieces if hit] == [("PV", True), ("储能", True)]
    assert "".join(t for t, _ in pieces) == "PVC 不是 PV,储能电站"


def _runs_by_character(text: str) -> list[tuple[bool, str]]:
    """The split's definition, one character at a time: a CJK ideograph (CJK_RANGES) joins a CJK run,
    any other alphanumeric character (str.isalnum) a word, everything else separates."""
    from pipeline.reading.bigrams import CJK_RANGES

    def kind(char):
        if any(low <= ord(char) <= high for low, high in CJK_RANGES):
            return True
        return False if char.isalnum() else None

    out, current, start, text = [], None, 0, text + " "
    for at, char in enumerate(text):
        this = kind(char)
        if this != current:
            if current is not None:
                out.append((current, text[start:at] if current else text[start:at].lower()))
            current, start = this, at
    return out


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from("储能〇𠀀𪛖丽_ ,PVpv5²½ⅧＡ١"))))
def test_the_split_is_the_per_character_definition(text):
    from pipeline.reading.bigrams import runs as split

    assert list(split(text)) == _runs_by_character(text)


def _fts5_text_from_positions(text: str) -> str:
    """FTS5 text by its definition: tokens() in order, a filler between two CJK tokens that are not
    at adjacent positions."""
    from pipeline.reading.bigrams import FILLER, is_cjk, tokens

    out, last_position, last_cjk = [], None, False
    for position, token in tokens(text):
        cjk = is_cjk(token[0])
        if cjk and last_cjk and position != last_position + 1:
            out.append(FILLER)
        out.append(token)
        last_position, last_cjk = position, cjk
    return " ".join(out)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from("储能电站〇𠀀𪛖 ,。PVpv5"))))
def test_fts5_text_renders_the_positioned_tokens(text):
    assert fts5_text(text) == _fts5_text_from_positions(text)


THREE_FIELDS = st.lists(st.one_of(st.none(), st.text(alphabet=st.one_of(
    st.characters(), st.sampled_from("储能电站〇𠀀𪛖 ,。PVpv5")))), min_size=3, max_size=3)


def _lexemes(literal: str) -> dict[str, list[int]]:
    """What a tsvector literal says: each lexeme's positions, sorted (a lexeme may be written once
    per occurrence, as PostgreSQL's input accepts and merges)."""
    said: dict[str, list[int]] = {}
    for entry in filter(None, literal.split(" ")):
        lexeme, positions = entry.rsplit(":", 1)
        said.setdefault(lexeme.strip("'"), []).extend(map(int, positions.split(",")))
    return {lexeme: sorted(positions) for lexeme, positions in said.items()}


@settings(max_examples=400, deadline=None)
@given(THREE_FIELDS)
def test_tsvector_parts_of_one_part_mean_the_cut_of_the_positioned_tokens(fields):
    from pipeline.reading.bigrams import _cut, is_cjk

    parts = tsvector_parts(fields)
    assert [tuple(map(_lexemes, p)) for p in parts] == [tuple(map(_lexemes, p)) for p in _cut(document_terms(fields))]
    # Each column holds its own kind: the terms no trigram, the trigrams nothing else.
    assert all(len(lexeme) != 3 or not is_cjk(lexeme[0]) for terms, _ in parts for lexeme in _lexemes(terms))
    assert all(len(lexeme) == 3 and is_cjk(lexeme[0]) for _, trigrams in parts for lexeme in _lexemes(trigrams))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(THREE_FIELDS, st.lists(st.sampled_from(["储能电站储能", "PV pv 5G", "。", "光伏储能光伏"]),
                                        min_size=3, max_size=3).map(lambda f: [" ".join(f * 100), None, f[0]])))
def test_postgresql_reads_tsvector_parts_as_the_cut_of_the_positioned_tokens(postgres_server, fields):
    """The literal of one part writes a lexeme once per occurrence; PostgreSQL must read it as the
    tsvector of the lexemes' merged positions, the one `_cut` writes."""
    from pipeline.reading.bigrams import _cut

    for ours_pair, cut_pair in zip(tsvector_parts(fields), _cut(document_terms(fields)), strict=True):
        for ours, cut in zip(ours_pair, cut_pair, strict=True):
            (same, read), = query(postgres_server.url(), "SELECT CAST(? AS tsvector) = CAST(? AS tsvector), "
                                                        "CAST(? AS tsvector)::text", ours, cut, ours)
            assert same, (ours, cut, read)


def test_a_filtered_search_tests_the_hits_instead_of_looking_each_one_up_per_article(tmp_path):
    """With a channel, SQLite used the hit list as the second key of uq_article_versions_open, one
    lookup per article and hit: 12 s for a common word and a channel at 20,000 articles
    (bench/scale). The hits must be read once and tested, and the answer stay the same."""
    from sqlalchemy import event

    engine = forty_in_order(f"sqlite:///{tmp_path / 'a.sqlite'}")
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, parameters, context, many: statements.append((statement, parameters)))
    with session_scope(engine) as session:
        found = list_articles(session, ArticleFilter(q="光伏", channel="行业资讯"), TZ, per_page=100)
        assert found.total == len(found.items) == sum(1 for aid in range(1, 41) if aid % 3)
        asked = [(statement, parameters) for statement, parameters in statements if "MATCH" in statement]
        plans = [row[3] for statement, parameters in asked
                 for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    engine.dispose()
    assert plans and not [p for p in plans if "uq_article_versions_open" in p and "rowid=" in p], plans


def test_postgresql_reads_a_words_hits_from_the_gin_index_up_to_a_limit(postgres_server, monkeypatch):
    """The planner costs no detoasting, so it tested every tsvector in a sequential scan even for
    a rare word (120-220 ms at 20,000 articles, bench/scale). The hits of one piece are read
    through the GIN index (here with no head of the table looked at first), and only up to the
    limit; the page and the total stay the scan's."""
    from sqlalchemy import event

    monkeypatch.setattr(search, "HEAD_SAMPLE_PAGES", 0)
    engine = forty_in_order(postgres_server.create_database())
    plans = []

    def explain(conn, cursor, statement, parameters, context, many):
        if "@@" in statement and statement.startswith("SELECT version_id"):  # while its settings hold
            with conn.connection.cursor() as other:
                other.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in other.fetchall()))

    event.listen(engine, "after_cursor_execute", explain)
    with session_scope(engine) as session:
        some = search.index_hits(session, "光伏电站", limit=5)
        every = search.index_hits(session, "光伏", limit=100)
        assert some.more and some.total == 5 and len(some.ids) == 6
        assert not every.more and every.total == len(every.ids) == sum(1 for aid in range(1, 41) if aid % 3)
        found = list_articles(session, ArticleFilter(q="光伏"), TZ, per_page=10)
        assert (found.total, found.more) == (len(every.ids), False)
        assert [row.aid for row in found.items] == [aid for aid in range(1, 41) if aid % 3][:10]
        assert session.execute(text("SHOW enable_seqscan")).scalar() == "on"  # the settings were for one statement
    engine.dispose()
    assert plans and all("Seq Scan" not in p for p in plans), plans
    # 光伏电站 is a phrase of trigrams, 光伏 a term.
    assert "ix_article_bigrams_trigrams" in plans[0] and all("ix_article_bigrams_terms" in p for p in plans[1:]), plans


def test_postgresql_reads_a_dense_querys_hits_from_the_head_of_the_table(postgres_server, monkeypatch):
    """ANDing a common phrase's posting lists took 29-67 ms at 2,000,000 versions (bench/scale),
    where its first 1,001 hits lie within the table's first 20 pages. index_hits reads the first
    HEAD_SAMPLE_PAGES, reads on up to HEAD_PAGES when the hits it still needs lie within them at
    the density it saw, and goes to the GIN index otherwise; a table within the pages it reads is
    counted whole. Here the index table is spread over six pages of 3-8 rows (fillfactor 14)."""
    from sqlalchemy import event

    engine = forty_in_order(postgres_server.create_database())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ALTER TABLE article_bigrams SET (fillfactor = 14)"))
        conn.execute(text("VACUUM FULL article_bigrams"))  # rewritten in the same order, 7-8 rows a page
        layout = conn.execute(text("SELECT (ctid::text::point)[0]::int, version_id FROM article_bigrams")).all()
    pages = {}
    for page, version_id in layout:
        pages.setdefault(page, []).append(version_id)
    assert sorted(pages) == list(range(6)) and pages[0] == list(range(1, 8)) and pages[1] == list(range(8, 16))
    statements, plans = [], []

    def explain(conn, cursor, statement, parameters, context, many):
        statements.append(statement)
        if "ctid >=" in statement:
            with conn.connection.cursor() as other:
                other.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in other.fetchall()))

    event.listen(engine, "before_cursor_execute", explain)

    def read(query, limit, sample=1, head=3):
        monkeypatch.setattr(search, "HEAD_SAMPLE_PAGES", sample)
        monkeypatch.setattr(search, "HEAD_PAGES", head)
        statements.clear()
        with session_scope(engine) as session:
            hits = search.index_hits(session, query, limit=limit)
        heads = sum("ctid >=" in s for s in statements)
        bitmap = any("set_config('enable_seqscan', 'off'" in s for s in statements)
        return hits, heads, bitmap

    # 光伏电站 is in aids 1, 2, 4, 5, 7 of page 0, then five a page up to page 4 (27 of 40).
    hits, heads, bitmap = read("光伏电站", 4)  # 5 in the first page: settled there
    assert (hits.ids, hits.more, heads, bitmap) == ([1, 2, 4, 5, 7], True, 1, False)
    hits, heads, bitmap = read("光伏电站", 12)  # 8 more at 5 a page: within pages 1-2, read on
    assert (hits.total, hits.more, heads, bitmap) == (12, True, 2, False)
    assert hits.ids == [aid for aid in range(1, 20) if aid % 3] and hits.expected() == 13 / (3 / 6)
    hits, heads, bitmap = read("光伏电站", 30)  # 26 more at 5 a page: beyond page 2, the index
    assert (hits.total, hits.more, heads, bitmap) == (27, False, 1, True)
    hits, heads, bitmap = read("氢能", 5)  # none in the first page: the index
    assert (hits.ids, hits.more, heads, bitmap) == ([], False, 1, True)
    hits, heads, bitmap = read("光伏电站", 30, sample=1, head=7)  # 26 more within pages 1-6: the whole table
    assert (hits.total, hits.more, heads, bitmap) == (27, False, 2, False)
    hits, heads, bitmap = read("电网", 30, sample=6)  # the whole table in the sample
    assert (hits.ids, hits.more, heads, bitmap) == (list(range(3, 41, 3)), False, 1, False)
    engine.dispose()
    # The pages only, never the index (a range of this six-page table may be read in a plain scan of
    # it; a range of the first 40 of thousands of pages is a TID range scan).
    offending = [p for p in plans if "ix_article_bigrams_terms" in p]
    assert plans and not offending, offending


def test_postgresql_counts_a_version_indexed_in_parts_once(postgres_server, monkeypatch):
    """A long version is indexed in parts, each a row of article_bigrams. Its hits were counted per
    row: with a word in both parts of aid 1 and once in aids 2 and 3, a limit of 3 said "more than
    2" where exactly 3 match, and a limit of 2 "more than 1". A version now counts at the lowest
    of its parts that matches, in the head of the table and in the GIN bitmap alike."""
    engine = open_archive(postgres_server.create_database(), auto_upgrade=True)
    run_id = runs.start_run(engine, "crawl", BASE, {})
    with session_scope(engine) as session:
        record_article(session, run_id, article(1, "储能 1", "", "光伏 " * 300, T0))  # 300 > 255 positions
        for aid in (2, 3):
            record_article(session, run_id, article(aid, f"储能 {aid}", "", "光伏", T0))
    runs.finish_run(engine, run_id, "succeeded", {})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM article_bigrams WHERE version_id = 1")).scalar() >= 2
    for sample in (search.HEAD_SAMPLE_PAGES, 0):  # the table read whole, then the GIN index
        monkeypatch.setattr(search, "HEAD_SAMPLE_PAGES", sample)
        with session_scope(engine) as session:
            exact, beyond = search.index_hits(session, "光伏", limit=3), search.index_hits(session, "光伏", limit=2)
        assert (exact.ids, exact.more, exact.total) == ([1, 2, 3], False, 3), sample
        assert (beyond.ids, beyond.more, beyond.total) == ([1, 2, 3], True, 2), sample
    engine.dispose()


def test_postgresql_walks_the_newest_articles_for_a_word_beyond_the_limit(postgres_server, monkeypatch):
    """A word in 4,000 of 20,000 articles was hashed whole for its page (135 ms, bench/scale): beyond
    the limit each newest article is probed (a correlated test the planner cannot turn into a join),
    and the page and the "more than" stay true."""
    from sqlalchemy import event

    monkeypatch.setattr(search, "COUNT_LIMIT", 5)
    engine = forty_in_order(postgres_server.create_database())
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, parameters, context, many: statements.append((statement, parameters)))
    with session_scope(engine) as session:
        for flt in (ArticleFilter(q="光伏电站"), ArticleFilter(q="光伏电站", channel="行业资讯")):
            found = list_articles(session, flt, TZ, per_page=10)
            assert found.more and found.total == 5
            assert [row.aid for row in found.items] == [aid for aid in range(1, 41) if aid % 3][:10]
        paged = [(s, p) for s, p in statements if "article_bigrams" in s and "ORDER BY" in s]
        plans = ["\n".join(row[0] for row in session.connection().exec_driver_sql("EXPLAIN " + s, p)) for s, p in paged]
    engine.dispose()
    assert plans and all("SubPlan" in p and "Hash" not in p for p in plans), plans


def test_postgresql_reads_a_rare_phrases_filtered_page_from_its_candidates(postgres_server, monkeypatch):
    """A phrase of common bigrams in few articles (深圳车: 2,102 of 500,000, bench/scale) had its page
    probed article by article down the newest 11,900 (74 ms). With a filter, when the walk would
    probe more articles than the phrase has candidates (versions with all its bigrams, from the GIN
    index without reading a tsvector), the candidates are sorted newest first and probed in that
    order. Pages, totals and "more than" are those of the walk; without a filter the page comes
    from the index table alone (newest_hits), the same either way."""
    from sqlalchemy import event

    engine = phrase_in_every_fourth(postgres_server.create_database())
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, parameters, context, many: statements.append(statement))
    monkeypatch.setattr(search, "COUNT_LIMIT", 5)
    cases = [(ArticleFilter(q="光伏电站"), page) for page in (1, 2, 3)] + [
        (ArticleFilter(q="光伏电站", channel=channel), 1) for channel in ("企业动态", "行业资讯")] + [
        (ArticleFilter(q="光伏电"), 2)]

    def read(candidates_from_walk: int) -> list:
        monkeypatch.setattr(search, "CANDIDATES_FROM_WALK", candidates_from_walk)
        with session_scope(engine) as session:
            results = []
            for flt, page in cases:
                statements.clear()
                found = list_articles(session, flt, TZ, page=page, per_page=5)
                from_candidates = any("ANY" in s for s in statements)  # the candidates, sorted
                probed = any("ANY" in s and "@@" in s for s in statements)
                from_index_table = any(s.startswith(INDEX_TABLE_PAGE) for s in statements)
                results.append((found.total, found.more, [row.aid for row in found.items], from_candidates, probed,
                                from_index_table))
        return results

    walked, sorted_ = read(10**9), read(0)
    engine.dispose()
    hits = [aid for aid in range(1, 41) if aid % 4 == 0]
    assert [r[:3] for r in walked] == [
        (5, True, hits[:5]), (5, True, hits[5:]), (5, True, []),
        (5, False, [8, 16, 24, 32, 40]), (5, False, [4, 12, 20, 28, 36]),
        (5, True, [12, 13, 16, 17, 20])]
    assert [r[:3] for r in sorted_] == [r[:3] for r in walked]
    filtered = [False, False, False, True, True, False]
    assert [r[3] for r in walked] == [False] * 6 and [r[3] for r in sorted_] == filtered
    assert [r[4] for r in sorted_] == filtered
    assert [r[5] for r in walked] == [r[5] for r in sorted_] == [not f for f in filtered]


# The statement newest_hits reads a page with (either way): the index table alone, no article joined.
INDEX_TABLE_PAGE = "SELECT version_id FROM (SELECT version_id, part,"


@pytest.mark.parametrize("walk_row_cost, walk_slack", [(0, 10**6), (10**9, 4), (0, 0)],
                         ids=["walked", "sorted", "walk-cut-short"])
def test_postgresql_reads_an_unfiltered_page_from_the_index_table_in_the_list_order(
        postgres_server, monkeypatch, walk_row_cost, walk_slack):
    """Beyond the count limit, an unfiltered page walked the newest articles joined to their
    versions and index rows (16-21 ms for the join alone at 2,000,000 versions, bench/scale). Each
    index row now carries its version's date and article (revision 0012): the page is read from
    article_bigrams alone, walked down its (published_at, article_id) B-tree or its candidates
    sorted by those columns, and a walk that finds too few within its bound gives way to the sort.
    Every way gives the list's order, ties of one date broken by article as the list does."""
    from sqlalchemy import event

    monkeypatch.setattr(search, "COUNT_LIMIT", 5)
    monkeypatch.setattr(search, "WALK_ROW_COST", walk_row_cost)
    monkeypatch.setattr(search, "WALK_SLACK", walk_slack)
    engine = phrase_in_every_fourth(postgres_server.create_database(), same_day=True)
    statements, plans = [], []

    def explain(conn, cursor, statement, parameters, context, many):
        statements.append(statement)
        if statement.startswith(INDEX_TABLE_PAGE):
            with conn.connection.cursor() as other:
                other.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in other.fetchall()))

    event.listen(engine, "after_cursor_execute", explain)
    with session_scope(engine) as session:
        listed = list_articles(session, ArticleFilter(), TZ, per_page=100).items  # the list's own order
        hits = [row.aid for row in listed if row.aid % 4 == 0]
        pages = []
        for q in ("光伏电站", "光伏电"):
            for page in (1, 2, 3):
                found = list_articles(session, ArticleFilter(q=q), TZ, page=page, per_page=4)
                pages.append((found.total, found.more, [row.aid for row in found.items]))
    engine.dispose()
    one_term = [row.aid for row in listed if row.aid % 4 in (0, 1)]  # 光伏电: the phrase's hits and its candidates
    assert pages == [(5, True, hits[0:4]), (5, True, hits[4:8]), (5, True, hits[8:]),
                     (5, True, one_term[0:4]), (5, True, one_term[4:8]), (5, True, one_term[8:12])]
    assert plans and not any("articles" in p.replace("article_bigrams", "") for p in plans), plans
    walked = [p for p in plans if "ix_article_bigrams_newest" in p]
    if walk_row_cost == 0 and walk_slack:
        assert walked and len(walked) == len(plans), plans  # every page walked, none sorted
    elif walk_row_cost:
        assert not walked, plans


def phrase_in_every_fourth(url: str, same_day: bool = False):
    """An archive at `url` of aids 1-40 (aid 1 the newest): 光伏电站 in every fourth, 光伏电 and 伏电站
    apart (a candidate of the phrase, no hit) in the next, 电网 in the rest; those with aid % 8 in
    (0, 1) in 企业动态, the others in 行业资讯. With `same_day`, every article whose aid is odd
    bears one date (ties the list breaks by article). The engine."""
    engine = open_archive(url, auto_upgrade=True)
    run_id = runs.start_run(engine, "crawl", BASE, {})
    with session_scope(engine) as session:
        for aid in range(1, 41):
            body = {0: "光伏电站", 1: "光伏电 伏电站"}.get(aid % 4, "电网")
            item = article(aid, f"储能 {aid}", "", body, T0)
            item.channel = "企业动态" if aid % 8 in (0, 1) else "行业资讯"
            if same_day and aid % 2:
                item.published_at = T0 - timedelta(minutes=20)
            record_article(session, run_id, item)
    runs.finish_run(engine, run_id, "succeeded", {})
    return engine


def forty_in_order(url: str):
    """An archive at `url` of aids 1-40 written in that order (the table's first rows are aid 1's):
    光伏电站 in those not divisible by 3, 电网 in the rest. The engine."""
    engine = open_archive(url, auto_upgrade=True)
    run_id = runs.start_run(engine, "crawl", BASE, {})
    with session_scope(engine) as session:
        for aid in range(1, 41):
            record_article(session, run_id, article(aid, f"储能 {aid}", "", "光伏电站" if aid % 3 else "电网", T0))
    runs.finish_run(engine, run_id, "succeeded", {})
    return engine


def forty(tmp_path, other: str = "电网", channels: bool = False):
    """A SQLite archive of aids 1-40, the newest written last (the highest ids, as a crawl finds
    them; published_at goes back a minute an aid): 光伏电站 in those not divisible by 3, `other` in
    the rest; with `channels`, every fourth in 企业动态, the others in 行业资讯. The engine, and the
    (statement, parameters) it runs from then on."""
    from sqlalchemy import event

    engine = open_archive(f"sqlite:///{tmp_path / 'a.sqlite'}", auto_upgrade=True)
    run_id = runs.start_run(engine, "crawl", BASE, {})
    with session_scope(engine) as session:
        for aid in range(40, 0, -1):
            item = article(aid, f"储能 {aid}", "", "光伏电站" if aid % 3 else other, T0)
            if channels:
                item.channel = "企业动态" if aid % 4 == 0 else "行业资讯"
            record_article(session, run_id, fingerprint(item))
    runs.finish_run(engine, run_id, "succeeded", {})
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, parameters, context, many: statements.append((statement, parameters)))
    return engine, statements


def test_sqlite_walks_the_filtered_articles_for_a_word_in_most_of_them(tmp_path, monkeypatch):
    """With a channel, counting a common word exactly reads all its hits (70 ms for 光伏 at 275,000
    articles, bench/scale). The newest filtered articles are tested against the tail of its hits
    from their lowest version id up: more than the limit says "more than", as PostgreSQL does; a
    walk that saw the whole channel counts exactly; one that settles neither counts the hits."""
    monkeypatch.setattr(search, "COUNT_LIMIT", 5)
    monkeypatch.setattr(search, "FILTERED_WALKS", (12, 24))
    monkeypatch.setattr(search, "FEW_HITS", 3)
    engine, statements = forty(tmp_path, channels=True)

    def hits(word, channel):  # newest first: published_at goes back one minute an aid
        return [aid for aid in range(1, 41) if ("光伏" if aid % 3 else "电网") == word
                and ("企业动态" if aid % 4 == 0 else "行业资讯") == channel]

    with session_scope(engine) as session:
        found = list_articles(session, ArticleFilter(q="光伏", channel="行业资讯"), TZ, per_page=3)
        assert (found.total, found.more) == (5, True)
        assert [row.aid for row in found.items] == hits("光伏", "行业资讯")[:3]
        read = [s for s, _ in statements if "FROM article_bigrams WHERE article_bigrams MATCH" in s]
        # Only the tail of the word's hits, and their number up to FEW_HITS.
        assert read and all("rowid >=" in s or "LIMIT" in s.split("MATCH")[1] for s in read), read
        found = list_articles(session, ArticleFilter(q="电网", channel="企业动态"), TZ, per_page=3)
        assert (found.total, found.more) == (len(hits("电网", "企业动态")), False)  # 3: the walk saw all 10
        assert [row.aid for row in found.items] == hits("电网", "企业动态")
        found = list_articles(session, ArticleFilter(q="电网", channel="行业资讯"), TZ, per_page=3)
        assert (found.total, found.more) == (5, True)  # 4 hits in the first walk, 8 in the second
        assert [row.aid for row in found.items] == hits("电网", "行业资讯")[:3]
        monkeypatch.setattr(search, "FILTERED_WALKS", (2, 4))
        found = list_articles(session, ArticleFilter(q="电网", channel="行业资讯"), TZ, per_page=3)
        assert (found.total, found.more) == (len(hits("电网", "行业资讯")), False)  # counted, not walked
        assert [row.aid for row in found.items] == hits("电网", "行业资讯")[:3]
        assert list_articles(session, ArticleFilter(q="光伏", channel="行业资讯"), TZ, page=3, per_page=3).total \
            == len(hits("光伏", "行业资讯"))  # beyond the limit's pages: counted
    engine.dispose()


def test_sqlite_starts_a_filtered_search_of_few_hits_from_them(tmp_path, monkeypatch):
    """A word with few hits and a channel: the articles are found from the hits (version by id,
    article by id), not by testing each of the channel's articles against them (25 ms for a word
    of no hits at 60,000 articles of a channel, whatever the hits)."""
    engine, statements = forty(tmp_path, channels=True)
    with session_scope(engine) as session:
        found = list_articles(session, ArticleFilter(q="电网", channel="企业动态"), TZ, per_page=10)
        assert (found.total, found.more) == (3, False)
        assert [row.aid for row in found.items] == [12, 24, 36]
        assert list_articles(session, ArticleFilter(q="氢能", channel="企业动态"), TZ).total == 0
        counts = [(s, p) for s, p in statements if " ".join(s.split()).startswith("SELECT count(*) AS count_1 FROM articles")]
        plans = [row[3] for s, p in counts for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)]
    engine.dispose()
    assert counts and any("INTEGER PRIMARY KEY (rowid=?)" in p for p in plans), plans
    assert not any(p.startswith("SCAN articles") for p in plans), plans


def test_sqlite_counts_a_common_phrase_up_to_the_limit_from_the_newest_articles(tmp_path, monkeypatch):
    """FTS5 counts a phrase by comparing positions in every version that holds its bigrams (45-110
    ms for a phrase in half the articles at 500,000, bench/scale). A phrase of few hits is read once
    (its exact total and its page from that list); one of more is tested on the newest articles
    against the tail of its hits and says "more than", as on PostgreSQL."""
    monkeypatch.setattr(search, "COUNT_LIMIT", 5)
    monkeypatch.setattr(search, "FILTERED_WALKS", (12, 24))
    engine, statements = forty(tmp_path, other="电网调度")
    with session_scope(engine) as session:
        few = list_articles(session, ArticleFilter(q="电网调度"), TZ, per_page=5)
        assert (few.total, few.more) == (13, False)
        assert [row.aid for row in few.items] == [3, 6, 9, 12, 15]
        monkeypatch.setattr(search, "FEW_HITS", 3)
        statements.clear()
        common = list_articles(session, ArticleFilter(q="光伏电站"), TZ, per_page=3)
        assert (common.total, common.more) == (5, True)
        assert [row.aid for row in common.items] == [1, 2, 4]
        counted = [s for s, _ in statements if "count(*) FROM article_bigrams" in s]
        assert not counted, counted  # the phrase's hits were never counted whole
        assert list_articles(session, ArticleFilter(q="光伏"), TZ, per_page=3).total == 27  # one bigram: exact
    engine.dispose()


def test_sqlite_reads_a_phrase_page_from_the_walk_that_did_not_settle_its_total(tmp_path, monkeypatch):
    """A phrase in a few percent of the articles (人民网, 22,115 hits at 500,000, bench/scale): the
    walks find fewer hits than the limit, but enough for the page, so the page comes from the walk
    (the tail of the hits, the newest articles tested); read from all the hits, the page looked up
    every hit's article to sort them (70 ms). Unfiltered, the phrase is known to have more hits
    than FEW_HITS, so its total says "more than" uncounted; with a channel it is counted exactly."""
    monkeypatch.setattr(search, "COUNT_LIMIT", 5)
    monkeypatch.setattr(search, "FILTERED_WALKS", (2, 4))
    monkeypatch.setattr(search, "FEW_HITS", 5)
    engine, statements = forty(tmp_path, other="电网调度", channels=True)
    everywhere = [aid for aid in range(1, 41) if aid % 3]
    in_channel = [aid for aid in everywhere if aid % 4]
    with session_scope(engine) as session:
        for flt, hits, total in ((ArticleFilter(q="光伏电站"), everywhere, (5, True)),
                                 (ArticleFilter(q="光伏电站", channel="行业资讯"), in_channel, (len(in_channel), False))):
            statements.clear()
            found = list_articles(session, flt, TZ, per_page=3)  # 3 hits in the walk of 4: the page, no more
            assert (found.total, found.more) == total
            assert [row.aid for row in found.items] == hits[:3]
            paged = [s for s, _ in statements if s.startswith("SELECT articles.id, articles.aid") and "MATCH" in s]
            assert paged and all("rowid >=" in s for s in paged), paged  # the tail of the hits only
            if not flt.channel:
                counted = [s for s, _ in statements if "count(*) FROM article_bigrams" in s]
                assert not counted, counted
            second = list_articles(session, flt, TZ, page=2, per_page=3)  # beyond the walk: the whole hits
            assert (second.total, [row.aid for row in second.items]) == (len(hits), hits[3:6])
    engine.dispose()
