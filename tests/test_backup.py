"""`portal-archive backup` and `restore` (issue 21): a backup taken while a crawl writes restores to
the archive as of one moment of that crawl, every committed batch before it and none after, and it
passes verify."""
import pytest

from tests.conftest import cli, crawl_under_way, new_database, new_unmigrated_database, query, start_site

pytestmark = [pytest.mark.slow, pytest.mark.archive]
# Rows that never change once committed: what "the archive as of a moment" is compared on.
IMMUTABLE = {
    "articles": "id, aid, canonical_url, first_seen_at",
    "article_versions": "id, article_id, version, change, content_hash, valid_from, raw_page_id, crawl_run_id",
    "raw_pages": "id, url, sha256",
}


def rows(db, table: str) -> dict:
    return {row[0]: row for row in query(db, f"select {IMMUTABLE[table]} from {table}")}


def test_a_backup_taken_while_a_crawl_writes_restores_to_one_moment_of_it(request, tmp_path):
    site = start_site(tmp_path / "site", 1200, seed=31)
    db = new_database(request, tmp_path, "live")
    cli("db", "upgrade", "--db", db)
    dest = tmp_path / "backup.dump"
    env = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING", "PORTAL_ARCHIVE_BATCH_SIZE": "25"}
    try:
        crawl = crawl_under_way(site, db, env, versions=200)
        backed_up = cli("backup", str(dest), "--db", db, env=env)
        still_crawling = crawl.poll() is None
        assert crawl.wait(timeout=300) == 0
    finally:
        site.server.stop()
    assert still_crawling, "the crawl ended before the backup did: the test proves nothing"
    assert "checks hold over" in backed_up.stdout

    restored = new_unmigrated_database(request, tmp_path, "restored")
    result = cli("restore", str(dest), "--db", restored)
    assert "checks hold over" in result.stdout
    assert cli("verify", "--db", restored).returncode == 0

    # The restored archive is a prefix of the final one in commit order: the single writer commits
    # its batches one after another, so ids grow with commits. Every row committed before the
    # backup's moment is there, unchanged, and none committed after.
    for table in IMMUTABLE:
        before, final = rows(restored, table), rows(db, table)
        assert before, f"{table}: the backup holds nothing"
        assert len(before) < len(final), f"{table}: the backup holds everything the crawl wrote"
        moment = max(before)
        assert before == {i: row for i, row in final.items() if i <= moment}, table
    # Whole batches: every article restored has its version and its raw page (verify says the same).
    assert query(restored, "select count(*) from articles a where not exists "
                           "(select 1 from article_versions v where v.article_id = a.id)")[0][0] == 0

    # restore refuses an archive that holds anything, in one line, and leaves it alone.
    versions = query(db, "select count(*) from article_versions")[0][0]
    refused = cli("restore", str(dest), "--db", db, check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("portal-archive: error: ") and refused.stderr.count("\n") == 1
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert query(db, "select count(*) from article_versions")[0][0] == versions
    # With --force it replaces the contents: the archive is the backup's again.
    cli("restore", str(dest), "--db", db, "--force")
    assert rows(db, "article_versions") == rows(restored, "article_versions")


def test_backup_refuses_to_overwrite_and_names_a_missing_archive(request, tmp_path):
    db = new_database(request, tmp_path)
    cli("db", "upgrade", "--db", db)
    dest = tmp_path / "b.backup"
    dest.write_bytes(b"something else")
    result = cli("backup", str(dest), "--db", db, check=False)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert dest.read_bytes() == b"something else"
    wrong = cli("restore", str(dest), "--db", db, "--force", check=False)
    assert wrong.returncode == 2 and "is not" in wrong.stderr


def test_restore_force_refuses_an_archive_being_crawled(request, tmp_path):
    from ops.lease import holder_id, release, try_acquire
    from pipeline.archive.db import make_engine

    db = new_database(request, tmp_path)
    cli("db", "upgrade", "--db", db)
    dest = tmp_path / "archive.backup"
    cli("backup", str(dest), "--db", db)
    holder = holder_id()  # this process, alive: a crawl at work as far as the lease tells
    engine = make_engine(db)
    assert try_acquire(engine, holder, "crawl")
    refused = cli("restore", str(dest), "--db", db, "--force", check=False)
    assert refused.returncode == 2 and "is being crawled" in refused.stderr and "job 'crawl'" in refused.stderr
    assert query(db, "select holder from leases")[0][0] == holder  # left alone
    release(engine, holder)
    engine.dispose()
    assert "checks hold over" in cli("restore", str(dest), "--db", db, "--force").stdout
