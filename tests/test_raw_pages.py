"""Raw pages' dictionaries over real crawls (pipeline/archive/rawpages.py) and revision 0007 on an
existing archive.

- The archive trains its first dictionary after a crawl, keeps it while the portal's pages stay in
  their template (new articles included), and trains a new one when the portal is redesigned
  (the replica's layout drift, replica/redesign.py): every page stays readable throughout.
- An archive of zlib pages (made by crawling, then downgrading to 0006, which writes every page back
  as zlib) is upgraded with the upgrade SIGKILLed in the middle of its recompression; upgrading again
  finishes it, verify reads every page back, and the pages take a fraction of their zlib size.
"""
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout

import pytest

from replica import DriftPlan
from tests.conftest import cli, export, forget_engine, new_database, query, start_site

QUIET = {"PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
# Small enough for a few hundred articles; the defaults are pipeline/archive/defaults.py's.
SMALL = {**QUIET, "PORTAL_ARCHIVE_DICTIONARY_AFTER_PAGES": "150", "PORTAL_ARCHIVE_DICTIONARY_WINDOW": "60"}


def dictionaries(db):
    return query(db, "select id, reason, ratio from dictionaries order by id")


def ratio(db, dictionary: int, pages: int, newest: bool = True) -> float:
    """Stored over fetched bytes of the newest (or first) pages compressed with the dictionary after its
    training."""
    stored, fetched = query(db, "select sum(length(body)), sum(size) from (select body, size from raw_pages r "
                                f"where dictionary_id = {dictionary} and http_status = 200 and r.id > "
                                f"(select trained_through from dictionaries where id = {dictionary}) "
                                f"order by id {'desc' if newest else 'asc'} limit {pages}) pages")[0]
    return stored / fetched


@pytest.mark.archive
def test_a_new_dictionary_is_trained_when_the_portal_changes_its_template(request, tmp_path):
    site = start_site(tmp_path / "site", 250, seed=17)
    db = new_database(request, tmp_path)
    crawl = lambda: cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "none",  # noqa: E731
                        check=False, env=SMALL)
    try:
        assert crawl().returncode == 0
        (first, reason, figure), = dictionaries(db)
        assert "first" in reason
        # The pages the crawl stored before the dictionary existed were recompressed with it.
        assert query(db, "select count(*) from raw_pages where http_status = 200 and "
                         "(dictionary_id is null or dictionary_id != 1)")[0][0] == 0

        # New articles in the same template: the dictionary holds.
        site.mutate(seed=3, edits=0, takedowns=0, republish=0, new=80)
        assert crawl().returncode == 0
        assert len(dictionaries(db)) == 1
        same_template = ratio(db, first, 60, newest=False)

        # The portal is redesigned: every article page in the new template.
        site.server.set_drift(DriftPlan(1.0, seed=5))
        site.mutate(seed=4, edits=0, takedowns=0, republish=0, new=80)
        crawl()  # degraded (the fallback reads every page), archived all the same
        rows = dictionaries(db)
        assert len(rows) == 2, rows
        second, reason, second_figure = rows[1]
        assert reason.startswith("template change")
        redesigned_with_old = ratio(db, first, 60)
        assert ratio(db, first, 60, newest=False) == same_template
        assert redesigned_with_old > 1.5 * same_template

        # The next redesigned pages are compressed with the new dictionary, at its figure.
        site.mutate(seed=6, edits=0, takedowns=0, republish=0, new=70)
        crawl()
        assert len(dictionaries(db)) == 2
        with_new = ratio(db, second, 60)
        assert with_new < 0.75 * redesigned_with_old
        print(f"stored/fetched: first dictionary on new articles {same_template:.3f} (held out of its training "
              f"{figure:.3f}), on redesigned pages {redesigned_with_old:.3f}; second dictionary on new redesigned "
              f"pages {with_new:.3f} (held out {second_figure:.3f})")
    finally:
        site.server.stop()
    result = cli("verify", "--db", db, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.archive
@pytest.mark.parametrize("helpers", ["in-process", "reader-and-writer-processes"])
def test_a_first_crawl_trains_the_dictionary_as_it_goes_and_compresses_the_rest_with_it(request, tmp_path, helpers):
    """The writer trains the archive's first dictionary once the pages are in, and the readers compress
    the pages after it with it; the pages stored before it (and those already read when it came) are
    recompressed by the writer beside the crawl, so the run's end has none left to do."""
    site = start_site(tmp_path / "site", 400, seed=29)
    db = new_database(request, tmp_path)
    processes = {"PORTAL_ARCHIVE_PARSE_PROCESSES": "1", "PORTAL_ARCHIVE_WRITE_PROCESS": "1"} \
        if helpers != "in-process" else {}
    try:
        result = cli("crawl", "--base-url", site.url, "--db", db, "--revisit", "none",
                     env={**processes, "PORTAL_ARCHIVE_LOG_LEVEL": "INFO", "PORTAL_ARCHIVE_BATCH_SIZE": "20",
                          "PORTAL_ARCHIVE_DICTIONARY_AFTER_PAGES": "100"})
    finally:
        site.server.stop()
    (first, reason, _), = dictionaries(db)
    assert "first" in reason
    stats = json.loads(query(db, "select stats from crawl_runs")[0][0])
    assert stats["archive/dictionary_trained"] == first
    trained_through = query(db, "select trained_through from dictionaries")[0][0]
    assert 100 <= trained_through < 250
    recompressed = stats["archive/pages_recompressed"]
    print(f"trained after {trained_through} pages; the writer recompressed {recompressed} of 400")
    # Pages read while the training ran, or queued for a reader, are stored without it (with helper
    # processes nearly 200 here); at least 50 of the 400 were compressed with it by the readers.
    assert trained_through <= recompressed <= 350, recompressed
    assert "raw pages: recompressed" not in result.stderr  # nothing left for the run's end (ops/crawl.py)
    assert query(db, "select count(*) from raw_pages where dictionary_id is null or dictionary_id != ?",
                 first)[0][0] == 0
    result = cli("verify", "--db", db, check=False)
    assert result.returncode == 0, result.stdout


def pages_by_codec(db) -> dict:
    try:
        return dict(query(db, "select coalesce(dictionary_id, 0), count(*) from raw_pages group by 1"))
    except Exception:  # the columns are not there yet
        return {}


@pytest.mark.archive
def test_upgrading_an_archive_recompresses_it_resumably_after_a_kill(request, tmp_path):
    from alembic import command

    from pipeline.archive.db import alembic_config

    site = start_site(tmp_path / "site", 600, seed=23)
    db = new_database(request, tmp_path)
    try:
        # No dictionary while crawling; the downgrade to 0006 writes every page as zlib.
        cli("crawl", "--base-url", site.url, "--db", db, env={**QUIET, "PORTAL_ARCHIVE_DICTIONARY_AFTER_PAGES": "1000000"})
    finally:
        site.server.stop()
    before = export(db, "--all-versions")
    forget_engine(db)
    command.downgrade(alembic_config(db), "0006")
    pages, zlib_bytes = query(db, "select count(*), sum(length(body)) from raw_pages")[0]
    assert query(db, "select version_num from alembic_version")[0][0] == "0006"

    env = {**os.environ, **QUIET, "PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE": "5"}
    upgrade = subprocess.Popen([sys.executable, "-m", "ops.cli", "db", "upgrade", "--db", db], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kill_when(upgrade, lambda: pages_by_codec(db).get(1, 0) >= 20)
    assert upgrade.returncode == -signal.SIGKILL, upgrade.stderr.read().decode()
    halfway = pages_by_codec(db)
    assert 20 <= halfway.get(1, 0) < pages and halfway.get(0, 0) > 0, halfway
    assert query(db, "select version_num from alembic_version")[0][0] == "0006"

    cli("db", "upgrade", "--db", db, env=env)
    assert query(db, "select count(*) from dictionaries")[0][0] == 1  # the killed run's, reused
    assert pages_by_codec(db) == {1: pages}
    stored = query(db, "select sum(length(body)) from raw_pages")[0][0]
    print(f"{pages} pages: zlib {zlib_bytes / pages:.0f} B a page, now {stored / pages:.0f} B")
    assert stored < zlib_bytes / 4
    result = cli("verify", "--db", db, check=False)
    assert result.returncode == 0, result.stdout
    assert export(db, "--all-versions") == before


def kill_when(process: subprocess.Popen, ready, seconds: float = 120) -> None:
    """SIGKILL `process` once `ready()` holds, looked at while the process stands still (SIGSTOP)
    and let go a few milliseconds at a time. Polled while it ran, a migration's whole middle could
    fall between two looks on a loaded machine (it did once, on PostgreSQL beside the SQLite
    pass), and there was nothing left to kill. A look that waits on a lock the stopped process
    holds (its DDL, on PostgreSQL) is finished with the process running again."""
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(max_workers=1) as looks:
        while process.poll() is None and time.monotonic() < deadline:
            process.send_signal(signal.SIGSTOP)
            look = looks.submit(ready)
            try:
                now_ready = look.result(timeout=0.5)
            except FutureTimeout:
                process.send_signal(signal.SIGCONT)
                now_ready = look.result()
                process.send_signal(signal.SIGSTOP)
            if now_ready:
                process.send_signal(signal.SIGKILL)
                break
            process.send_signal(signal.SIGCONT)
            time.sleep(0.005)
    process.wait()


DOWNGRADE_TO_0006 = ("from alembic import command; from pipeline.archive.db import alembic_config; "
                     "import sys; command.downgrade(alembic_config(sys.argv[1]), '0006')")


@pytest.mark.archive
def test_downgrading_drops_the_columns_first_and_rewrites_the_pages_resumably_after_a_kill(request, tmp_path):
    """The downgrade drops 0007's columns while the pages are small (their codecs kept aside in
    raw_page_codecs), then writes the pages back as zlib a batch per transaction. Killed among the
    batches, the archive can be upgraded (the columns come back) or downgraded again (it goes on),
    and upgraded again it reads as before."""
    site = start_site(tmp_path / "site", 300, seed=24)
    db = new_database(request, tmp_path)
    try:
        cli("crawl", "--base-url", site.url, "--db", db, env=SMALL)
    finally:
        site.server.stop()
    before = export(db, "--all-versions")
    compressed = sum(n for dictionary, n in pages_by_codec(db).items() if dictionary)
    assert compressed > 250
    forget_engine(db)

    env = {**os.environ, **QUIET, "PORTAL_ARCHIVE_MIGRATION_BATCH_SIZE": "5"}
    downgrade = subprocess.Popen([sys.executable, "-c", DOWNGRADE_TO_0006, db], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def left() -> int | None:
        try:
            return query(db, "select count(*) from raw_page_codecs")[0][0]
        except Exception:  # not made yet
            return None

    kill_when(downgrade, lambda: (n := left()) is not None and n <= compressed - 20)
    assert downgrade.returncode == -signal.SIGKILL, downgrade.stderr.read().decode()
    # The columns are gone already, the pages half rewritten, the revision still 0007.
    assert query(db, "select version_num from alembic_version")[0][0] == "0007"
    assert pages_by_codec(db) == {}
    kept = left()
    assert 0 < kept <= compressed - 20

    # Upgraded instead of downgraded again (0008 is next): the columns come back from raw_page_codecs.
    cli("db", "upgrade", "--db", db, env=env)
    assert left() is None
    assert sum(n for dictionary, n in pages_by_codec(db).items() if dictionary) == kept  # the rest are zlib
    result = cli("verify", "--db", db, check=False)
    assert result.returncode == 0, result.stdout
    assert export(db, "--all-versions") == before
    forget_engine(db)

    done = subprocess.run([sys.executable, "-c", DOWNGRADE_TO_0006, db], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert query(db, "select version_num from alembic_version")[0][0] == "0006"
    assert left() is None
    assert all(body[:1] == b"\x78" for body, in query(db, "select body from raw_pages"))  # zlib, every one

    cli("db", "upgrade", "--db", db, env=env)
    result = cli("verify", "--db", db, check=False)
    assert result.returncode == 0, result.stdout
    assert export(db, "--all-versions") == before
