"""`portal-archive verify`: a crawled archive passes, and each way of breaking it is named.

One archive is built for the module by real crawls of a 200-article replica
(crawl, a round of portal changes, crawl again); each test breaks its own copy
of it with plain SQL and runs the real command on it. The archive is on the
backend under test: a copy is a SQLite backup, or a PostgreSQL database made
from the archive's as a template. Unmarked tests need no archive, or are about
a SQLite file that is not there.
"""
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from pipeline.archive.db import make_engine, session_scope
from pipeline.archive.search import index_versions
from pipeline.archive.verify import EXAMPLES_PER_CHECK, verify_archive
from pipeline.reading import compression
from pipeline.reading.fingerprint import HASHED_FIELDS
from pipeline.reading.records import CleanArticle
from tests.conftest import archive_contents, cli, copy_archive, new_database, query, start_site

ARTICLES = 200
CHANGES = {"edits": 20, "takedowns": 8, "republish": 5, "new": 10}
CHECKS = ("one-open-version", "version-numbers", "validity-chain", "content-hash", "article-hash",
          "raw-pages", "quarantined-pages", "article-has-versions", "version-has-article", "status", "edits", "duplicate-of",
          "search-index")
# The archive trains its raw-page dictionary after the first crawl (pipeline/archive/rawpages.py), so
# its pages are read back through one: recompressed after the first crawl, compressed by the reader in
# the second.
DICTIONARY_AFTER = {"PORTAL_ARCHIVE_DICTIONARY_AFTER_PAGES": "100"}


@pytest.fixture(scope="module")
def archive(request, tmp_path_factory):
    """The crawled archive's URL."""
    root = tmp_path_factory.mktemp("verify")
    site = start_site(root / "site", ARTICLES, seed=3, defects={"no_body": 2})
    db = new_database(request, root)
    quiet = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING", **DICTIONARY_AFTER}
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env=quiet)
        site.mutate(seed=5, **CHANGES)
        cli("crawl", "--base-url", site.url, "--revisit", "all", "--db", db, env=quiet)
    finally:
        site.server.stop()
    return db


@pytest.fixture
def copy(request, archive, tmp_path):
    """A private copy of the archive (its URL)."""
    return copy_archive(request, archive, tmp_path)


def run_sql(db, *statements, params=None):
    """Break the archive in one transaction; `:name` in a statement takes params[name].

    PostgreSQL enforces the foreign keys that several corruptions break (SQLite's connections do not), so
    for this transaction they are not checked: the session replays rows as a replica would."""
    params = params or {}
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for statement in statements:
                conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
    finally:
        engine.dispose()


def one(db, sql):
    rows = query(db, sql)
    return rows[0] if rows else None


def verify(db):
    return cli("verify", "--db", db, check=False)


def failed_checks(stdout: str) -> set[str]:
    return {line.split()[1] for line in stdout.splitlines() if line.startswith("FAIL ")}


EDITED = "select article_id from article_versions where change = 'edited' order by article_id limit 1"
TAKEN = "select article_id from article_versions where change = 'taken_down' order by article_id limit 1"
LIVE_ONE_VERSION = ("select id from articles where current_version = 1 and status = 'live' "
                    "order by id limit 1")


@pytest.mark.archive
def test_the_archive_has_what_the_corruptions_need(archive):
    assert one(archive, EDITED) and one(archive, TAKEN) and one(archive, LIVE_ONE_VERSION)
    assert one(archive, "select count(*) from articles where duplicate_of_id is not null")[0] > 0
    assert one(archive, "select count(*) from quarantine where raw_page_id is not null")[0] > 0
    # Every article page went through the dictionary: the first crawl's recompressed after it, the
    # second's compressed with it in the reader.
    assert one(archive, "select count(*) from dictionaries")[0] == 1
    assert one(archive, "select count(*) from raw_pages where http_status = 200 and dictionary_id is null")[0] == 0
    assert one(archive, "select codec, dictionary_id from raw_pages where id = (select min(id) from raw_pages)") \
        == ("zstd", 1)
    assert one(archive, "select count(*) from raw_pages where dictionary_id = 1 and fetched_at > "
                        "(select finished_at from crawl_runs order by id limit 1)")[0] > 0


def test_the_hashed_fields_are_the_clean_articles_content_fields():
    article = CleanArticle(*[None] * 19)
    assert set(article.content_fields()) == set(HASHED_FIELDS)


@pytest.mark.archive
def test_a_crawled_archive_passes_and_says_what_it_checked(archive):
    result = verify(archive)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    articles = one(archive, "select count(*) from articles")[0]
    versions = one(archive, "select count(*) from article_versions")[0]
    for name in CHECKS:
        line = next(line for line in lines if line.split()[1:2] == [name])
        assert line.startswith("ok ")
        unit = "versions" if name in ("validity-chain", "content-hash", "raw-pages",
                                     "version-has-article") else None
        if unit:
            assert f" {versions} versions examined" in line
        elif name == "search-index":
            assert f" {articles} open versions examined" in line  # one open version per article
        elif name == "quarantined-pages":
            quarantined = one(archive, "select count(*) from quarantine where raw_page_id is not null")[0]
            assert f" {quarantined} quarantined pages examined" in line
        elif name != "duplicate-of":
            assert f" {articles} articles examined" in line
    assert lines[-1] == f"all {len(CHECKS)} checks hold over {articles} articles"


@pytest.mark.archive
def test_verify_writes_nothing(archive, copy):
    if copy.startswith("postgresql"):
        state = lambda: archive_contents(copy)  # noqa: E731  every row, with the transaction that wrote it
    else:
        state = Path(copy.removeprefix("sqlite:///")).read_bytes
    before = state()
    assert verify(copy).returncode == 0
    assert state() == before


CORRUPTIONS = {
    # name: (statements; {} is the target article's id, from the query), target query, checks that must fail
    "second open version": (
        ["drop index uq_article_versions_open",
         "update article_versions set valid_to = null where article_id = {} and version = 1"],
        EDITED, {"one-open-version", "validity-chain", "search-index"}),  # an open version the index lacks
    "gap in version numbers": (
        ["update article_versions set version = 3 where article_id = {} and version = 2",
         "update articles set current_version = 3 where id = {}"],
        EDITED, {"version-numbers"}),
    "current version is not the newest": (
        ["update articles set current_version = 1 where id = {}"],
        EDITED, {"version-numbers"}),
    "overlapping validity": (
        ["update article_versions set valid_from = (select valid_from from article_versions "
         "where article_id = {} and version = 1) where article_id = {} and version = 2"],
        EDITED, {"validity-chain"}),
    "version ends before it begins": (
        ["update article_versions set valid_to = '2000-01-01 00:00:00.000000' "
         "where article_id = {} and version = 1"],
        EDITED, {"validity-chain"}),
    "changed body text": (
        ["update article_versions set body_text = body_text || '。' where article_id = {}"],
        LIVE_ONE_VERSION, {"content-hash"}),
    "changed published date": (
        ["update article_versions set published_at = '2001-02-03 04:05:06.000000' where article_id = {}"],
        LIVE_ONE_VERSION, {"content-hash"}),
    "article hash differs from the open version": (
        ["update articles set content_hash = '" + "0" * 64 + "' where id = {}"],
        LIVE_ONE_VERSION, {"article-hash"}),
    "corrupted raw page bytes": (
        ["update raw_pages set body = :junk where id = "
         "(select raw_page_id from article_versions where article_id = {})"],
        LIVE_ONE_VERSION, {"raw-pages"}),
    "raw page of other bytes": (
        ["update raw_pages set body = :other_page, dictionary_id = null where id = "
         "(select raw_page_id from article_versions where article_id = {})"],
        LIVE_ONE_VERSION, {"raw-pages"}),
    "missing raw page": (
        ["delete from raw_pages where id = (select raw_page_id from article_versions where article_id = {})"],
        LIVE_ONE_VERSION, {"raw-pages"}),
    "deleted versions of an article": (
        ["delete from article_versions where article_id = {}"],
        EDITED, {"article-has-versions"}),
    "versions of a deleted article": (
        ["delete from paragraph_fingerprints where article_id = {}", "delete from articles where id = {}"],
        LIVE_ONE_VERSION, {"version-has-article"}),
    "live article whose open version is a tombstone": (
        ["update articles set status = 'live' where id = {}"],
        TAKEN, {"status"}),
    "taken-down article whose open version is live": (
        ["update articles set status = 'taken_down' where id = {}"],
        LIVE_ONE_VERSION, {"status"}),
    "edit count differs from the versions": (
        ["update articles set edits = edits + 1 where id = {}"],
        EDITED, {"edits"}),
    "duplicate of itself": (
        ["update articles set duplicate_of_id = id where id = {}"],
        LIVE_ONE_VERSION, {"duplicate-of"}),
    "duplicate cycle": (
        ["update articles set duplicate_of_id = {} where id = "
         "(select duplicate_of_id from articles where id = {})"],
        "select id from articles where duplicate_of_id is not null order by id limit 1", {"duplicate-of"}),
}


@pytest.mark.archive
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_reported_by_name(copy, name):
    statements, target_query, expected = CORRUPTIONS[name]
    target = one(copy, target_query)[0]
    aid = one(copy, f"select aid from articles where id = {target}")
    params = {"junk": b"\x00\x01\x02\x03", "other_page": compression.compress(b"<html>some other page</html>")}
    run_sql(copy, *(s.replace("{}", str(target)) for s in statements), params=params)
    result = verify(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected <= failed_checks(result.stdout), result.stdout
    examples = [line for line in result.stdout.splitlines() if line.startswith("       ")]
    assert any(f"article {aid[0]} (id {target})" in line or f"article id {target}," in line
               or ("cycle" in line and f"{aid[0]}" in line) for line in examples), result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"{len(failed_checks(result.stdout))} of {len(CHECKS)} checks failed")


@pytest.mark.archive
def test_a_flipped_byte_in_a_dictionary_compressed_page_is_caught(copy):
    target = one(copy, LIVE_ONE_VERSION)[0]
    aid = one(copy, f"select aid from articles where id = {target}")[0]
    page, codec, dictionary, body = one(copy, "select r.id, r.codec, r.dictionary_id, r.body from raw_pages r join "
                                              f"article_versions v on v.raw_page_id = r.id where v.article_id = {target}")
    assert codec == "zstd" and dictionary is not None
    body = bytes(body)
    middle = len(body) // 2
    run_sql(copy, f"update raw_pages set body = :body where id = {page}",
            params={"body": body[:middle] + bytes([body[middle] ^ 0x20]) + body[middle + 1:]})
    result = verify(copy)
    assert result.returncode == 1 and failed_checks(result.stdout) == {"raw-pages"}, result.stdout
    assert f"article {aid} (id {target}) v1 raw page {page}" in result.stdout


@pytest.mark.archive
def test_a_missing_dictionary_and_a_damaged_quarantined_page_are_caught(copy):
    quarantined, page = one(copy, "select id, raw_page_id from quarantine where raw_page_id is not null "
                                  "order by id limit 1")
    run_sql(copy, "delete from dictionaries", f"update raw_pages set body = :junk where id = {page}",
            params={"junk": b"\x00\x01\x02\x03"})
    result = verify(copy)
    assert result.returncode == 1
    assert failed_checks(result.stdout) == {"raw-pages", "quarantined-pages"}, result.stdout
    assert "dictionary 1 does not exist" in result.stdout
    assert f"quarantined page {quarantined} (" in result.stdout


@pytest.mark.archive
def test_violations_are_listed_up_to_a_bound_and_counted(copy):
    versions = one(copy, "select count(*) from article_versions")[0]
    run_sql(copy, "update article_versions set title = title || ' '")
    out = verify(copy).stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("FAIL content-hash"))
    assert f"{versions} versions examined, {versions} violations" in out[start]
    listed = out[start + 1:start + 1 + EXAMPLES_PER_CHECK]
    assert all(line.startswith("       article ") for line in listed)
    assert out[start + 1 + EXAMPLES_PER_CHECK] == f"       … and {versions - EXAMPLES_PER_CHECK} more"


@pytest.mark.archive
def test_chunk_boundaries_do_not_change_the_verdict(copy):
    first, last = one(copy, "select min(id), max(id) from articles")
    run_sql(copy, f"update articles set status = 'taken_down' where id in ({first}, {last})",
            "update article_versions set body_text = body_text || '!' where article_id = "
            "(select max(article_id) from article_versions where change = 'edited')",
            "update articles set duplicate_of_id = "
            "(select min(id) from articles where duplicate_of_id is not null) where id = "
            "(select duplicate_of_id from articles where duplicate_of_id is not null order by id limit 1)")
    engine = make_engine(copy)
    try:
        reports = []
        for chunk in (1, 7, 500, 100_000):
            with session_scope(engine) as session:
                reports.append(verify_archive(session, chunk=chunk))
    finally:
        engine.dispose()
    summaries = [[(c.name, c.examined, c.violations, c.examples) for c in r.checks] for r in reports]
    assert all(s == summaries[0] for s in summaries)
    assert {c.name for c in reports[0].checks if not c.ok} == {"status", "content-hash", "duplicate-of"}


def test_a_missing_archive_is_refused_not_created(tmp_path):
    """A SQLite file that is not there (SQLite only; a PostgreSQL database that is not there is refused
    with the other commands' in test_cli_errors.py)."""
    db_file = tmp_path / "none.sqlite"
    result = cli("verify", "--db", f"sqlite:///{db_file}", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"portal-archive: error: nothing to verify: there is no archive at {db_file} "
                                     "(the file does not exist)")
    assert not db_file.exists()


def expand(db: str, articles: int) -> None:
    """Copy the crawled articles and their versions (new ids and aids, same raw pages) up to `articles`."""
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            columns = {t: [c["name"] for c in inspect(conn).get_columns(t)] for t in ("articles", "article_versions")}
            count, max_id, max_aid = conn.exec_driver_sql("select count(*), max(id), max(aid) from articles").one()
            max_version_id = conn.exec_driver_sql("select max(id) from article_versions").scalar()
            copies = -(-articles // count) - 1
            for k in range(1, copies + 1):
                # edits from 0: the database counts them again as the versions are copied in.
                shifted = {"articles": {"id": f"id + {k * max_id}", "aid": f"aid + {k * max_aid}",
                                        "duplicate_of_id": f"duplicate_of_id + {k * max_id}", "edits": "0"},
                           "article_versions": {"id": f"id + {k * max_version_id}",
                                                "article_id": f"article_id + {k * max_id}"}}
                for table, limit in (("articles", max_id), ("article_versions", max_version_id)):
                    names = columns[table]
                    values = ", ".join(shifted[table].get(c, c) for c in names)
                    conn.exec_driver_sql(f"insert into {table} ({', '.join(names)}) "
                                         f"select {values} from {table} where id <= {limit}")
            # The copies' open versions into the search index, as the write path would (verify checks it).
            index_versions(conn, conn.execute(text(
                "select id, title, lede, body_text, published_at, article_id from article_versions "
                f"where valid_to is null and id > {max_version_id}")).all())
    finally:
        engine.dispose()


@pytest.mark.archive
def test_verify_memory_stays_flat_as_the_archive_grows(copy):
    """verify reads chunk by chunk: four times the articles, the same peak.

    Small chunks show it on a small archive (20,000 articles with the default chunk of 500 took a
    minute of CPU and showed the same: 5.4 MB peak against 47 MB of text)."""
    import tracemalloc

    peaks = {}
    for articles in (2_000, 8_000):
        expand(copy, articles)
        engine = make_engine(copy)
        tracemalloc.start()
        try:
            with session_scope(engine) as session:
                report = verify_archive(session, chunk=100)
            peaks[articles] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            engine.dispose()
        assert report.ok, "\n".join(report.lines())
        assert report.articles >= articles
        assert report.check("content-hash").examined == one(copy, "select count(*) from article_versions")[0]
    # Holding every version's text at once would take tens of MB here; a chunk takes about one.
    text_chars = one(copy, "select sum(length(body_text) + length(body_html)) from article_versions")[0]
    assert text_chars > 10 * 1024 * 1024
    assert peaks[8_000] < 4 * 1024 * 1024, f"peak {peaks[8_000] / 1e6:.1f} MB"
    assert peaks[8_000] < 1.5 * peaks[2_000], {n: f"{p / 1e6:.1f} MB" for n, p in peaks.items()}


@pytest.mark.archive
def test_the_search_index_check_is_an_anti_join_whatever_the_memory(archive):
    """`id NOT IN (SELECT version_id FROM article_bigrams)` is hashed by PostgreSQL only if the list
    fits in work_mem; beyond, the list is scanned again for every open version, and verify ran for
    more than ten minutes at 500,000 articles (bench/scale). With too little memory for any hash,
    the check's statements must still be anti-joins (SQLite hashes its NOT IN lists whatever)."""
    from sqlalchemy import event

    from pipeline.archive import verify as verifying

    engine = make_engine(archive)
    if engine.dialect.name != "postgresql":
        engine.dispose()
        pytest.skip("the PostgreSQL plan; SQLite's NOT IN builds an index of the list")
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, parameters, context, many: statements.append((statement, parameters)))
    with session_scope(engine) as session:
        check = verifying.Check("search-index", "", "open versions")
        verifying._check_search_index(session, check)
        assert check.ok and check.examined > 0
        checked = [(s, p) for s, p in statements if "article_bigrams" in s and "NOT " in s]
        session.execute(text("SET LOCAL work_mem = '64kB'"))
        plans = ["\n".join(row[0] for row in session.connection().exec_driver_sql("EXPLAIN " + s, p))
                 for s, p in checked]
    engine.dispose()
    assert len(plans) == 2 and all("Anti Join" in plan and "SubPlan" not in plan for plan in plans), plans


@pytest.mark.archive
def test_an_index_row_filed_under_another_date_is_reported(copy):
    """PostgreSQL's index rows carry their version's date and article (revision 0012): a search's
    page is read in that order, so a row that disagrees with its version would misplace a hit."""
    if not copy.startswith("postgresql"):
        pytest.skip("SQLite's FTS5 index holds no dates")
    target = one(copy, LIVE_ONE_VERSION)[0]
    version = one(copy, f"select id from article_versions where article_id = {target} and valid_to is null")[0]
    run_sql(copy, f"update article_bigrams set published_at = published_at - interval '1 day' "
                  f"where version_id = {version}")
    result = verify(copy)
    assert result.returncode == 1 and failed_checks(result.stdout) == {"search-index"}, result.stdout
    assert f"files version row {version} under another date or article" in result.stdout
