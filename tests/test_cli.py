"""The command line: the demo works end to end, and bad input gets one clear line and exit code 2."""
import pytest

from tests.conftest import cli, new_unmigrated_database, query

# Run once, on SQLite: what it checks does not depend on the database (the PostgreSQL pass
# repeats the tests whose outcome does: writes, queries, leases, the budget's ledger, refusals).


@pytest.mark.slow
def test_demo_runs_offline_and_shows_the_archive(archive_db):
    out = cli("demo", "--articles", "120", "--db", archive_db).stdout
    assert "crawl 1: succeeded" in out
    assert "crawl 3 (nothing changed): succeeded" in out and ", 0 versions," in out.split("crawl 3")[1]
    assert "the archive now holds:" in out
    assert "portal-archive diff" in out and "version 2 (edited" in out


@pytest.mark.parametrize("args, message", [
    (["crawl", "--channel", "nosuch"], "unknown channel 'nosuch'"),
    (["export", "--as-of", "yesterday"], "--as-of 'yesterday' is not an ISO 8601 time"),
    (["history", "http://elsewhere.example/about.html"], "neither an aid nor an article URL"),
    (["history", "--db", "notaurl", "1"], "not a database URL"),
])
def test_bad_input_is_one_line_and_exit_2(archive_db, args, message):
    result = cli(*args, check=False, env={"PORTAL_ARCHIVE_DB": archive_db})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portal-archive: error:")
    assert message in lines[0]


def test_a_database_behind_head_is_refused(request, tmp_path):
    db = new_unmigrated_database(request, tmp_path, "old")
    query(db, "create table something_else (x integer)")
    result = cli("export", "--db", db, check=False)
    assert result.returncode == 2
    assert "run `portal-archive db upgrade`" in result.stderr


def test_history_of_an_unknown_article(archive_db):
    result = cli("history", "99999", "--db", archive_db, check=False)
    assert result.returncode == 2 and "not in the archive" in result.stderr
