"""The demo: the whole life of the archive in one command, offline, against the replica."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import make_url

from ops.child import crawl_in_child
from ops.config import Settings
from ops.crawl import CrawlPlan
from pipeline.archive.db import open_archive, session_scope
from pipeline.archive.diff import render_text, version_diff
from pipeline.archive.models import Article, ArticleVersion
from pipeline.archive.queries import archive_totals, version_of
from pipeline.reading.profile import load_profile
from replica import ReplicaServer, generate, load_state, mutate, save_state


def _fresh_sqlite(db: str) -> None:
    url = make_url(db)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)


def run_demo(articles: int, seed: int, db: str, echo=print) -> None:
    _fresh_sqlite(db)
    with tempfile.TemporaryDirectory(prefix="portal-replica-") as site_dir:
        save_state(generate(articles, seed=seed, defects={"no_body": 1, "bad_bytes": 1}), site_dir)
        with ReplicaServer(site_dir) as server:
            # The replica serves two deliberately broken pages; their retry log lines are not the demo.
            # The replica is ours, on 127.0.0.1: the demo sets fast settings (many requests at
            # once, no delay, no request budget), not the polite defaults a live portal gets.
            settings = Settings(db=db, base_url=server.url, log_level="CRITICAL", concurrent_requests=32,
                                download_delay=0.0, requests_per_day=0)
            echo(f"replica of {articles} articles serving at {server.url}; archive {db}")
            echo("crawl 1: " + _line(crawl_in_child(settings, plan=CrawlPlan(revisit="all"))))
            state = load_state(site_dir)
            report = mutate(state, seed=seed, edits=max(1, articles // 40), takedowns=max(1, articles // 100),
                            republish=max(1, articles // 200), new=max(1, articles // 70))
            save_state(state, site_dir)
            echo("portal changes: " + json.dumps({k: len(v) for k, v in report.items()
                                                  if isinstance(v, (list, dict))}))
            echo("crawl 2: " + _line(crawl_in_child(settings, plan=CrawlPlan(revisit="all"))))
            echo("crawl 3 (nothing changed): " + _line(crawl_in_child(settings, plan=CrawlPlan(revisit="all"))))
    engine = open_archive(db, auto_upgrade=True)
    with session_scope(engine) as session:
        echo("the archive now holds: " + ", ".join(f"{v} {k}" for k, v in archive_totals(session).items()))
        edited = session.scalars(select(Article).join(ArticleVersion)
                                 .where(ArticleVersion.change == "edited").limit(1)).first()
        if edited:
            echo(f"\nportal-archive diff {edited.aid}:")
            echo(render_text(version_diff(version_of(session, edited, edited.current_version - 1),
                                          version_of(session, edited, edited.current_version),
                                          ZoneInfo(load_profile(settings.profile).timezone))))
    engine.dispose()


def _line(summary) -> str:
    return (f"{summary.status}, {summary.pages_fetched} pages, {summary.articles_new} new, "
            f"{summary.versions_written} versions, {summary.unchanged} unchanged, "
            f"{summary.taken_down} taken down, {summary.duplicates} duplicates, "
            f"{summary.quarantined} quarantined")
