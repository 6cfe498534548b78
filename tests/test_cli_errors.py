"""Bad input at the command line: one line `portal-archive: error: …`, exit code 2, nothing written.

"Nothing written" is checked two ways: where the database does not exist yet,
neither its file nor its directory appears; where it exists (a real archive
from a crawl of a small replica), its bytes and its crawl runs are unchanged
(on PostgreSQL, where the bytes are the server's, every row and the
transaction that wrote it).

The tests marked `archive` run on SQLite and on PostgreSQL. The unmarked ones
are about SQLite files and directories (a missing directory, a file that is
not a database, a directory given as the database) and run on SQLite only;
their PostgreSQL counterparts are a database that does not exist on a running
server and a database that is not an archive.
"""
from pathlib import Path

import pytest

from tests.conftest import (
    BACKEND,
    archive_contents,
    cli,
    copy_archive,
    new_database,
    new_unmigrated_database,
    query,
    start_site,
)

REFUSED_POSTGRES = "postgresql+psycopg://u:secret@127.0.0.1:1/db"
MALFORMED_WITH_PASSWORD = "postgresql://u:secret@host:notaport/db"
ELSEWHERE = "http://other.example/news/djyd/2025/0507/{aid}.html"


def assert_refused(result, message: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("portal-archive: error: ")
    assert message in lines[0], lines[0]
    assert result.stdout == ""
    assert "secret" not in result.stdout + result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def archive(request, tmp_path_factory):
    """A real archive on the backend under test: one crawl of a 30-article replica."""
    root = tmp_path_factory.mktemp("cli-errors")
    site = start_site(root / "site", 30, seed=2)
    db = new_database(request, root)
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env={"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})
    finally:
        site.server.stop()
    aid, url = query(db, "select aid, canonical_url from articles order by aid limit 1")[0]
    return {"db": db, "site_url": site.url, "aid": aid, "url": url}


@pytest.fixture
def existing(request, archive, tmp_path):
    """A private copy of the archive (its URL), with what a refused command must leave as it is."""
    directory = tmp_path / "existing"
    directory.mkdir()
    return copy_archive(request, archive["db"], directory, "archive")


def crawl_runs(db: str) -> int:
    return query(db, "select count(*) from crawl_runs")[0][0]


def state_of(db: str):
    """What a refused command must leave as it was: the SQLite file and its neighbours byte for byte,
    or on PostgreSQL every row of every table with the transaction that wrote it."""
    if db.startswith("postgresql"):
        return archive_contents(db)
    return files_under(Path(db.removeprefix("sqlite:///")).parent)


def files_under(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# --- no database yet: the command is refused and creates nothing -------------------------------

NO_ARCHIVE_CASES = [
    (["crawl", "--channel", "nosuch"], "unknown channel 'nosuch'"),
    (["crawl", "--channel", "djyd", "--channel", "nosuch"], "unknown channel 'nosuch'"),
    (["crawl", "--base-url", "ftp://portal.example"], "base URL 'ftp://portal.example' is not an http(s) URL"),
    (["crawl", "--revisit", "sometimes"], "crawl: Invalid value for '--revisit'"),
    (["export", "--as-of", "yesterday"], "--as-of 'yesterday' is not an ISO 8601 time"),
    (["export", "--as-of", "2026-13-45T08:00:00"], "--as-of '2026-13-45T08:00:00' is not an ISO 8601 time"),
    (["export", "--as-of", "2026-02-12 25:00"], "is not an ISO 8601 time"),
    (["export", "--format", "xlsx"], "export: Invalid value for '--format'"),
    (["diff", "12873", "--from", "abc"], "diff: Invalid value for '--from'"),
    (["diff", "12873", "--from", "0"], "diff: Invalid value for '--from': 0 is not in the range"),
    (["diff", "12873", "--to", "-1"], "diff: Invalid value for '--to'"),
    (["history", "http://elsewhere.example/about.html"], "neither an aid nor an article URL"),
    (["history", ELSEWHERE.format(aid=12873)], "its host other.example is neither the portal's"),
    (["diff", ELSEWHERE.format(aid=12873)], "its host other.example is neither the portal's"),
    (["history", "--no-such-option", "1"], "history: No such option"),
]
# Refused because the SQLite file the URL names does not exist: SQLite only.
NO_ARCHIVE_FILE_CASES = [
    (["history", "12873"], "article 12873 is not in the archive: there is no archive at"),
    (["export"], "nothing to export: there is no archive at"),
    (["verify"], "nothing to verify: there is no archive at"),
]


def refused_on_a_database_not_there_yet(tmp_path, args, message):
    db_file = tmp_path / "not-yet" / "archive.sqlite"
    result = cli(*args, check=False, env={"PORTAL_ARCHIVE_DB": f"sqlite:///{db_file}",
                                          "PORTAL_ARCHIVE_BASE_URL": "http://127.0.0.1:9"})
    assert_refused(result, message)
    assert not db_file.parent.exists()


@pytest.mark.archive
@pytest.mark.parametrize("args, message", NO_ARCHIVE_CASES, ids=[" ".join(a) for a, _ in NO_ARCHIVE_CASES])
def test_refused_without_creating_the_database(request, tmp_path, args, message):
    if BACKEND != "postgres":
        refused_on_a_database_not_there_yet(tmp_path, args, message)
        return
    # A PostgreSQL database is there before any command (someone created it): an empty archive stays empty.
    db = new_database(request, tmp_path)
    before = archive_contents(db)
    result = cli(*args, check=False, env={"PORTAL_ARCHIVE_DB": db, "PORTAL_ARCHIVE_BASE_URL": "http://127.0.0.1:9"})
    assert_refused(result, message)
    assert archive_contents(db) == before


@pytest.mark.parametrize("args, message", NO_ARCHIVE_FILE_CASES, ids=[" ".join(a) for a, _ in NO_ARCHIVE_FILE_CASES])
def test_refused_without_creating_the_sqlite_file(tmp_path, args, message):
    refused_on_a_database_not_there_yet(tmp_path, args, message)


# --- databases that cannot be opened ----------------------------------------------------------

EVERY_DB_COMMAND = [["crawl"], ["db", "upgrade"], ["history", "1"], ["diff", "1"], ["export"], ["verify"],
                    ["status"], ["backfill", "--aids", "1-2"]]
READING_COMMANDS = [["history", "1"], ["diff", "1"], ["export"], ["verify"], ["status"]]
CREATING_COMMANDS = [["crawl"], ["db", "upgrade"], ["backfill", "--aids", "1-2"]]


def run_with_db(args, url, **kwargs):
    return cli(*args, "--db", url, check=False, env={"PORTAL_ARCHIVE_BASE_URL": "http://127.0.0.1:9"}, **kwargs)


@pytest.mark.parametrize("args", EVERY_DB_COMMAND, ids=" ".join)
@pytest.mark.parametrize("url, message", [
    ("notaurl", "not a database URL: 'notaurl'"),
    (MALFORMED_WITH_PASSWORD, "not a database URL: 'postgresql://u:***@host:notaport/db'"),
    ("nosuchdialect://x/y", "cannot open database nosuchdialect://x/y"),
    (REFUSED_POSTGRES, "cannot open database postgresql+psycopg://u:***@127.0.0.1:1/db"),
], ids=["malformed", "malformed-with-password", "unknown-dialect", "refused-postgres"])
def test_an_unusable_database_url_is_refused_without_showing_its_password(args, url, message):
    assert_refused(run_with_db(args, url), message)


@pytest.mark.archive
@pytest.mark.parametrize("args", EVERY_DB_COMMAND, ids=" ".join)
def test_a_database_missing_from_a_running_postgresql_is_refused_without_showing_its_password(
        postgres_server, args):
    """The server answers, the database is not there: one line naming it, the password starred out."""
    url = postgres_server.url("no_such_archive").replace(f"{postgres_server.user}@",
                                                         f"{postgres_server.user}:secret@")
    shown = url.replace(":secret@", ":***@")
    line = assert_refused(run_with_db(args, url), f"cannot open database {shown}")
    assert 'database "no_such_archive" does not exist' in line


@pytest.mark.archive
@pytest.mark.parametrize("args", [c for c in EVERY_DB_COMMAND if c != ["db", "upgrade"]], ids=" ".join)
def test_a_database_that_is_not_an_archive_is_refused_and_left_alone(request, tmp_path, args):
    """The counterpart of a file that is not a database: someone else's tables, no schema revision.
    (`db upgrade` is how such a database is made into an archive.)"""
    db = new_unmigrated_database(request, tmp_path, "notes")
    query(db, "create table notes (id integer primary key, body text)")
    query(db, "insert into notes (id, body) values (1, 'these are notes, not an archive')")
    before = archive_contents(db)
    file_before = Path(db.removeprefix("sqlite:///")).read_bytes() if db.startswith("sqlite") else None
    assert_refused(run_with_db(args, db), "run `portal-archive db upgrade` first")
    assert archive_contents(db) == before
    if file_before is not None:  # not even switched to WAL mode: the file is byte for byte as it was
        assert Path(db.removeprefix("sqlite:///")).read_bytes() == file_before
        assert query(db, "pragma journal_mode")[0][0] == "delete"


@pytest.mark.parametrize("args", READING_COMMANDS, ids=" ".join)
def test_reading_a_database_in_a_missing_directory_creates_nothing(args):
    missing = Path("/nonexistent-dir")
    assert not missing.exists()
    assert_refused(run_with_db(args, f"sqlite:///{missing}/x/y.sqlite"),
                   f"there is no archive at {missing}/x/y.sqlite")
    assert not missing.exists()


@pytest.mark.parametrize("args", CREATING_COMMANDS, ids=" ".join)
def test_a_database_whose_directory_cannot_be_created_is_refused(tmp_path, args):
    (tmp_path / "a-file").write_text("not a directory")
    before = files_under(tmp_path)
    assert_refused(run_with_db(args, f"sqlite:///{tmp_path}/a-file/x/y.sqlite"),
                   f"{tmp_path}/a-file is a file, not a directory")
    # Under /proc even root cannot make a directory.
    assert_refused(run_with_db(args, "sqlite:////proc/nonexistent-dir/x/y.sqlite"),
                   "its directory /proc/nonexistent-dir/x cannot be created")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("args", EVERY_DB_COMMAND, ids=" ".join)
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path, args):
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("these are notes, not an archive\n")
    before = files_under(tmp_path)
    assert_refused(run_with_db(args, f"sqlite:///{not_a_db}"), "file is not a database")
    assert files_under(tmp_path) == before


def test_a_directory_given_as_the_database_is_refused(tmp_path):
    assert_refused(run_with_db(["export"], f"sqlite:///{tmp_path}"), f"{tmp_path} is a directory")


# --- an existing archive: refused commands leave it exactly as it was ---------------------------

def existing_archive_cases(archive):
    aid = archive["aid"]
    return [
        (["crawl", "--channel", "nosuch"], "unknown channel 'nosuch'"),
        (["crawl", "--base-url", "not a url"], "is not an http(s) URL"),
        (["export", "--as-of", "last tuesday"], "--as-of 'last tuesday' is not an ISO 8601 time"),
        (["history", ELSEWHERE.format(aid=aid)], "its host other.example is neither the portal's"),
        (["diff", ELSEWHERE.format(aid=aid)], "its host other.example is neither the portal's"),
        (["history", "https://www.other.example/m/view.php?aid=%d" % aid], "its host www.other.example"),
        (["diff", str(aid), "--to", "99"], f"article {aid} has no version 99 (it has 1..1)"),
        (["diff", str(aid), "--from", "5", "--to", "1"], f"article {aid} has no version 5"),
        (["diff", str(aid), "--from", "x"], "diff: Invalid value for '--from': 'x'"),
        (["history", "99999999"], "article 99999999 is not in the archive"),
        (["export", "-o", "/nonexistent-dir/out.csv"], "cannot write /nonexistent-dir/out.csv"),
    ]


@pytest.mark.archive
def test_refused_commands_leave_an_existing_archive_as_it_was(archive, existing):
    url = existing
    runs = crawl_runs(existing)
    before = state_of(existing)
    for args, message in existing_archive_cases(archive):
        assert_refused(run_with_db(args, url), message)
        assert state_of(existing) == before, args
    assert crawl_runs(existing) == runs
    assert not Path("/nonexistent-dir").exists()


@pytest.mark.archive
def test_the_archives_own_host_is_accepted(archive, existing):
    """The control for the foreign-host refusal: the archived URL, its mobile form, and the bare aid."""
    url = existing
    mobile = archive["site_url"] + f"/m/view.php?aid={archive['aid']}&from=timeline"
    for ref in (archive["url"], archive["url"] + "?spm=1#top", mobile, str(archive["aid"])):
        result = run_with_db(["history", ref], url)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"article {archive['aid']} {archive['url']}")
