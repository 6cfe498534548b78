import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.reading.profile import load_profile

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The product's defaults are for the live portal: one request at a time, a second apart, a daily
# request budget. The tests crawl the replica on 127.0.0.1 and set their own fast settings here,
# explicitly, for every command they run (the environment reaches every child process); a test
# of the polite defaults removes them (tests/test_politeness.py).
# Unpaced, a crawl would also start its helper processes (a reader, a writer: about half a second
# of CPU and of wall each, hundreds of crawls a suite); the tests keep the work in the crawl's own
# process, as the polite defaults do, and the tests of the helpers (test_reader.py,
# test_writer_process.py, the twenty SIGKILLs in test_faults.py, the bench) turn them on.
FAST = {"PORTAL_ARCHIVE_CONCURRENT_REQUESTS": "32", "PORTAL_ARCHIVE_DOWNLOAD_DELAY": "0",
        "PORTAL_ARCHIVE_REQUESTS_PER_DAY": "0", "PORTAL_ARCHIVE_PARSE_PROCESSES": "0",
        "PORTAL_ARCHIVE_WRITE_PROCESS": "0"}
os.environ.update(FAST)


@pytest.fixture(scope="session")
def profile():
    return load_profile("cpsia")


# Commands that read or write the archive and return run in the test's own process, through click's
# test runner: the same command object, arguments, environment and exit code, without a Python
# start-up each (about a second of CPU, hundreds of times a suite). Commands that crawl, serve or
# keep running (crawl, backfill, worker, daemon, web, demo, replica) get a process of their own,
# as a user's would.
IN_PROCESS = frozenset({"export", "history", "diff", "verify", "status", "db", "extract", "reparse",
                        "import"})


def _command(args: tuple[str, ...]) -> str | None:
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] == "--config" else rest[1:]
    return rest[0] if rest else None


def cli(*args: str, env: dict | None = None, check: bool = True, timeout: float = 600):
    """Run the real `portal-archive` command: in this process for the commands in IN_PROCESS, else in
    a fresh one. The result has returncode, stdout and stderr either way."""
    if _command(args) in IN_PROCESS:
        result = _in_process(args, env or {})
    else:
        result = subprocess.run([sys.executable, "-m", "ops.cli", *args], capture_output=True,
                                text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"portal-archive {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}")
    return result


def _in_process(args: tuple[str, ...], env: dict) -> subprocess.CompletedProcess:
    import traceback

    from click.testing import CliRunner

    from ops.cli import main

    outcome = CliRunner().invoke(main, list(args), env=env, prog_name="portal-archive")
    stderr = outcome.stderr
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        stderr += "".join(traceback.format_exception(outcome.exception))
    return subprocess.CompletedProcess(["portal-archive", *args], outcome.exit_code, outcome.stdout, stderr)


def export(db_url: str, *extra: str) -> list[dict]:
    out = cli("export", "--db", db_url, *extra).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# The fields of an exported article that the replica's ground truth states.
COMPARED = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source",
            "origin_source", "tags", "status", "duplicate_of")


def assert_equals_ground_truth(db: str, expected: dict[int, dict]) -> dict[int, dict]:
    """The archive's current articles are exactly the portal's (`Site.expected()`); returns them by aid."""
    exported = {r["aid"]: r for r in export(db)}
    assert sorted(exported) == sorted(expected), "no article missing, none extra"
    wrong = [(aid, k) for aid, e in expected.items() for k in COMPARED if exported[aid][k] != e[k]]
    assert wrong == []
    return exported


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'archive.sqlite'}"


class Site:
    """A replica on disk and served over real HTTP on 127.0.0.1."""

    def __init__(self, directory: Path, server):
        self.dir = directory
        self.server = server
        self.url = server.url

    def state(self):
        from replica import load_state

        return load_state(self.dir)

    def mutate(self, **kwargs) -> dict:
        from replica import load_state, mutate, save_state

        state = load_state(self.dir)
        report = mutate(state, **kwargs)
        save_state(state, self.dir)
        return report

    def expected(self) -> dict[int, dict]:
        from replica import expected_articles

        return expected_articles(self.state(), self.url)


def start_site(directory: Path, articles: int, seed: int, defects: dict | None = None) -> Site:
    from replica import ReplicaServer, generate, save_state

    save_state(generate(articles, seed=seed, defects=defects), directory)
    return Site(directory, ReplicaServer(directory).start())


BACKEND = os.environ.get("PORTAL_ARCHIVE_TEST_BACKEND", "sqlite")
_ENGINES: dict = {}


def query(db, sql: str, *args):
    """Rows of a SQL query on a test archive: a SQLite file path, or a database URL.

    Tests write SQLite's dialect (`?` parameters, `datetime('now')`); on
    PostgreSQL it is translated, and JSON columns come back as JSON text as
    they do from SQLite, so a test reads the same on both.
    """
    import json
    import sqlite3

    url = str(db)
    if not url.startswith("postgresql"):
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, timeout=30)
        try:
            with conn:  # commits a write
                return conn.execute(sql, args).fetchall()
        finally:
            conn.close()  # now, not whenever it is collected: a WAL archive's -wal/-shm files go with it
    from sqlalchemy import create_engine, text

    engine = _ENGINES.get(url) or _ENGINES.setdefault(url, create_engine(url, pool_size=1, max_overflow=2))
    import re

    sql = re.sub(r"datetime\('now', '([+-]\d+) (\w+)'\)", r"(now() at time zone 'utc' + interval '\1 \2')", sql)
    parts = sql.replace("datetime('now')", "(now() at time zone 'utc')").split("?")
    statement = "".join(f"{part}:p{i}" if i < len(parts) - 1 else part for i, part in enumerate(parts))
    with engine.begin() as conn:
        result = conn.execute(text(statement), {f"p{i}": a for i, a in enumerate(args)})
        if not result.returns_rows:
            return []
        return [tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in row) for row in result]


@pytest.fixture(scope="session")
def postgres_server():
    from tests.servers import PostgresServer, ServerUnavailable

    try:
        server = PostgresServer().start()
    except ServerUnavailable as exc:
        if IN_CI:
            raise  # under CI a missing server is a failure, not a skip
        pytest.skip(str(exc))
    yield server
    for url in [u for u in _ENGINES if str(server.port) in u]:
        _ENGINES.pop(url).dispose()
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    from tests.servers import RedisServer, ServerUnavailable

    try:
        server = RedisServer().start()
    except ServerUnavailable as exc:
        if IN_CI:
            raise
        pytest.skip(str(exc))
    yield server
    server.stop()


def new_database(request, tmp_path, name: str = "archive") -> str:
    """A fresh, empty archive database on the backend under test."""
    if BACKEND == "postgres":
        return request.getfixturevalue("postgres_server").create_database()
    return f"sqlite:///{tmp_path / (name + '.sqlite')}"


@pytest.fixture
def archive_db(request, tmp_path) -> str:
    return new_database(request, tmp_path)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() is truthy; bounded, so a broken daemon fails the test instead of hanging it."""
    import sqlite3
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except sqlite3.OperationalError:  # not created yet, or locked for a moment
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def spawn_cli(*args: str, env: dict | None = None, log=None):
    """Start `portal-archive` in the background (a daemon, a crawl to be killed)."""
    return subprocess.Popen([sys.executable, "-m", "ops.cli", *args], env={**os.environ, **(env or {})},
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def new_unmigrated_database(request, tmp_path, name: str = "archive") -> str:
    """A fresh database on the backend under test with no schema at all (an empty SQLite file, an empty
    PostgreSQL database): for tests of what is refused before any migration."""
    if BACKEND == "postgres":
        return request.getfixturevalue("postgres_server").create_database(migrate=False)
    path = tmp_path / (name + ".sqlite")
    import sqlite3

    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


def forget_engine(db: str) -> None:
    """Close query()'s pooled connections to a database (PostgreSQL copies or drops only a database nobody uses)."""
    engine = _ENGINES.pop(str(db), None)
    if engine is not None:
        engine.dispose()


def copy_archive(request, db: str, tmp_path, name: str = "copy") -> str:
    """A private copy of an archive on the backend under test: through SQLite's backup API (so the WAL is
    included), or as a new PostgreSQL database made from it as a template."""
    if str(db).startswith("postgresql"):
        forget_engine(db)
        return request.getfixturevalue("postgres_server").copy_database(db)
    import sqlite3

    target = tmp_path / (name + ".sqlite")
    source, dest = sqlite3.connect(str(db).removeprefix("sqlite:///")), sqlite3.connect(target)
    try:
        with dest:
            source.backup(dest)
    finally:
        source.close()
        dest.close()
    return f"sqlite:///{target}"


def archive_contents(db: str) -> dict[str, list]:
    """Every row of every table, in a stable order: what "left exactly as it was" compares on a database
    whose bytes are not a file of ours. On PostgreSQL each row carries its xmin too, the transaction that
    wrote it, so rewriting a row with the same values shows as well."""
    from sqlalchemy import inspect, text

    url = str(db)
    postgres = url.startswith("postgresql")
    if postgres:
        query(url, "select 1")  # opens the pooled engine query() keeps for this database
        engine = _ENGINES[url]
    else:
        from sqlalchemy import create_engine

        engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            if not postgres:
                # SQLite's FTS5 shadow tables are the search index, the same data again.
                tables = [t for t in tables if not t.startswith(("article_search", "article_bigrams"))]
            contents = {}
            for table in tables:
                columns = "xmin::text AS xmin, t.*" if postgres else "*"
                rows = conn.execute(text(f'SELECT {columns} FROM "{table}" t')).all()
                contents[table] = sorted((tuple(r) for r in rows), key=repr)
            return contents
    finally:
        if not postgres:
            engine.dispose()


def helper_processes(pid: int, role: str | None = None) -> list[int]:
    """The crawl process's helper processes (spiders/helpers.py), of one role or all."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (int(c) for c in (task / "children").read_text().split()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:  # gone since the listing
                continue
            if b"spiders.helpers" in argv and (role is None or role.encode() in argv):
                out.append(child)
    return out


def crawl_under_way(site, db: str, env: dict, versions: int = 100, log=None):
    """A crawl started in the background, returned once it has archived `versions` versions."""
    crawl = spawn_cli("crawl", "--base-url", site.url, "--db", db, env=env, log=log)
    wait_for(lambda: query(db, "select count(*) from article_versions")[0][0] >= versions, 120, interval=0.05,
             what="a crawl under way")
    return crawl


# Tests that mostly wait (a live portal in compressed time: two minutes of sleeping daemons) go
# first, so the rest of the suite runs beside them instead of leaving them alone at the end (with
# `--dist loadfile`, test files are handed to the workers in this order).
WAITING_FIRST = ("tests/test_freshness_live.py",)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: not item.nodeid.startswith(WAITING_FIRST))  # stable: otherwise as collected
