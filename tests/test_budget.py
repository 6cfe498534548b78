"""The settings' polite defaults and the request budget's ledger, on a real archive."""
from datetime import datetime, timedelta, timezone

import pytest

from ops.config import ConfigError, Settings, load_settings
from pipeline.archive import budget
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.models import CrawlRun
from tests.conftest import new_database

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def test_the_defaults_are_for_a_small_live_site():
    settings = load_settings(environ={})
    assert (settings.concurrent_requests, settings.download_delay, settings.obey_robots) == (1, 1.0, True)
    assert settings.requests_per_day == 20_000 and settings.requests_per_run == 0
    assert settings.effective_user_agent.startswith("portal-archive/")
    contact = load_settings(environ={"PORTAL_ARCHIVE_CONTACT": "ops@example.org"}).effective_user_agent
    assert contact.endswith("(archival crawler; +ops@example.org)")


def test_a_retired_or_impossible_setting_is_a_clear_error(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text("revisit_tiers = [[2, 1], [-1, 168]]\n")
    with pytest.raises(ConfigError, match="revisit_tiers.*replaced by a policy that learns"):
        load_settings(old, environ={})
    with pytest.raises(ConfigError, match="PORTAL_ARCHIVE_REVISIT_TIERS"):
        load_settings(environ={"PORTAL_ARCHIVE_REVISIT_TIERS": "[]"})
    with pytest.raises(ConfigError, match="revisit_strategy"):
        load_settings(environ={"PORTAL_ARCHIVE_REVISIT_STRATEGY": "clever"})
    with pytest.raises(ConfigError, match="requests_per_day"):
        load_settings(environ={"PORTAL_ARCHIVE_REQUESTS_PER_DAY": "-5"})


@pytest.fixture
def ledger(request, tmp_path):
    engine = open_archive(new_database(request, tmp_path), auto_upgrade=True)

    def run(minutes_ago: float, requests: int | None, allowance: int | None, status="succeeded"):
        with session_scope(engine) as session:
            session.add(CrawlRun(kind="crawl", status=status, started_at=NOW - timedelta(minutes=minutes_ago),
                                 base_url="http://portal.test", options={}, stats={}, health={},
                                 requests=requests, allowance=allowance))
    yield engine, run
    engine.dispose()


@pytest.mark.archive
def test_the_last_24_hours_are_charged_what_runs_sent_or_all_a_killed_run_was_allowed(ledger):
    engine, run = ledger
    run(60 * 25, 5000, 5000)  # older than a day: not counted
    run(600, 300, 400)
    run(300, None, 250, status="abandoned")  # killed before it could count
    run(10, None, None, status="skipped")
    with session_scope(engine) as session:
        assert budget.spent(session, NOW - budget.DAY, NOW) == 550
        daily = budget.Budget(per_day=1000)
        assert budget.allowance(session, daily, NOW) == 450  # a manual run: what the day leaves
        # A job every 5 minutes: 1/288 of the day, here 3 requests; never more than the day leaves.
        assert budget.allowance(session, daily, NOW, timedelta(minutes=5)) == 3
        assert budget.allowance(session, budget.Budget(per_day=1000, per_run=100), NOW) == 100
        assert budget.allowance(session, budget.Budget(per_day=500), NOW) == 0
        assert budget.allowance(session, budget.Budget(), NOW) is None


def test_the_pace_says_how_long_history_takes():
    assert budget.pace(1.0, 20_000) == pytest.approx(20_000 / 86400)
    assert budget.pace(2.0, 0) == 0.5 and budget.pace(0, 0) is None
    assert budget.duration(100_000, budget.pace(1.0, 20_000)) == "about 5.0 days"
    assert budget.duration(60, 1.0) == "about 60 s"
    assert Settings().requests_per_day == 20_000
