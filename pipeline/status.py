"""`portal-archive status`: what ran, what runs next, what the archive holds, who holds the lease."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.lease import current_holder
from pipeline.models import Article, ArticleVersion, CrawlRun, FetchFailure, Quarantine, apscheduler_jobs
from pipeline.revisit import RevisitPolicy, count_due

BAD = ("failed", "abandoned")
# Archived, but read the portal worse than the thresholds allow (pipeline/health.py).
DEGRADED = "degraded"


def _count(session: Session, query) -> int:
    return session.scalar(query) or 0


def archive_status(session: Session, engine, policy: RevisitPolicy, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    day_ago = now - timedelta(days=1)
    next_runs = {row.id: datetime.fromtimestamp(row.next_run_time, timezone.utc)
                 for row in session.execute(select(apscheduler_jobs.c.id, apscheduler_jobs.c.next_run_time))
                 if row.next_run_time is not None}
    names = set(next_runs) | set(session.scalars(select(CrawlRun.job).where(CrawlRun.job.is_not(None))
                                                 .distinct()))
    jobs = {}
    for name in sorted(names):
        last = session.scalars(select(CrawlRun).where(CrawlRun.job == name, CrawlRun.status != "skipped")
                               .order_by(CrawlRun.id.desc()).limit(1)).first()
        jobs[name] = {"last_run": _run(last) if last else None, "next_run": next_runs.get(name)}
    # A reparse reads stored pages, not the portal: it says nothing of how the last crawl went.
    manual = session.scalars(select(CrawlRun).where(CrawlRun.job.is_(None), CrawlRun.kind != "reparse")
                             .order_by(CrawlRun.id.desc()).limit(1)).first()
    holder = current_holder(engine)
    return {
        "jobs": jobs,
        "last_manual_run": _run(manual) if manual else None,
        "totals": {
            "articles": _count(session, select(func.count()).select_from(Article)),
            "versions": _count(session, select(func.count()).select_from(ArticleVersion)),
            "taken_down": _count(session, select(func.count()).select_from(Article)
                                 .where(Article.status == "taken_down")),
            "duplicates": _count(session, select(func.count()).select_from(Article)
                                 .where(Article.duplicate_of_id.is_not(None))),
            "quarantined_pages": _count(session, select(func.count(func.distinct(Quarantine.url)))),
            "due_for_revisit": count_due(session, policy, now),
        },
        "lease": holder.describe() if holder else None,
        "last_day": {
            "runs": _count(session, select(func.count()).select_from(CrawlRun).where(CrawlRun.started_at > day_ago)),
            "failed_runs": [_run(r) for r in session.scalars(
                select(CrawlRun).where(CrawlRun.started_at > day_ago, CrawlRun.status.in_(BAD))
                .order_by(CrawlRun.id))],
            "degraded_runs": [_run(r) for r in session.scalars(
                select(CrawlRun).where(CrawlRun.started_at > day_ago, CrawlRun.status == DEGRADED)
                .order_by(CrawlRun.id))],
            "fetch_failures": _count(session, select(func.count()).select_from(FetchFailure)
                                     .where(FetchFailure.created_at > day_ago)),
        },
    }


def _run(run: CrawlRun) -> dict:
    return {"id": run.id, "job": run.job, "status": run.status, "started_at": run.started_at,
            "finished_at": run.finished_at, "articles_new": run.articles_new,
            "versions_written": run.versions_written, "unchanged": run.unchanged,
            "taken_down": run.taken_down, "quarantined": run.quarantined,
            "fetch_failures": run.fetch_failures, "error": run.error, "health": run.health or {}}


def healthy(status: dict) -> bool:
    """False when the last run of any job (or the last manual run) failed, was abandoned or was degraded."""
    lasts = [j["last_run"] for j in status["jobs"].values()] + [status["last_manual_run"]]
    return not any(r and r["status"] in (*BAD, DEGRADED) for r in lasts)


def _health_line(run: dict) -> str | None:
    """The run's health in one line: fallback and quarantine rates, and why it is degraded."""
    health = run.get("health") or {}
    if not health.get("article_pages"):
        return None
    line = (f"health: {health['article_pages']} article pages, fallback {health['fallback_rate']:.1%}, "
            f"quarantine {health['quarantine_rate']:.1%}")
    reasons = health.get("degraded") or []
    return line + ("; degraded: " + "; ".join(reasons) if reasons else "")


def format_status(status: dict) -> str:
    t = lambda d: f"{d:%Y-%m-%d %H:%M:%S} UTC" if d else "-"  # noqa: E731
    lines = ["jobs:"]
    for name, job in status["jobs"].items():
        last = job["last_run"]
        lines.append(f"  {name}: next {t(job['next_run'])}; last " + (
            f"run {last['id']} {last['status']} at {t(last['started_at'])}: {last['articles_new']} new, "
            f"{last['versions_written']} versions, {last['unchanged']} unchanged, {last['taken_down']} "
            f"taken down, {last['fetch_failures']} failed fetches" if last else "never"))
        if last and last["error"]:
            lines.append(f"    error: {last['error']}")
        if last and last["status"] == DEGRADED and _health_line(last):
            lines.append(f"    {_health_line(last)}")
    if not status["jobs"]:
        lines.append("  (no scheduled jobs yet: start `portal-archive daemon`)")
    manual = status["last_manual_run"]
    if manual:
        lines.append(f"last manual run: {manual['id']} {manual['status']} at {t(manual['started_at'])}")
        if _health_line(manual):
            lines.append(f"  {_health_line(manual)}")
    totals = status["totals"]
    lines.append("archive: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in totals.items()))
    lines.append(f"lease: {status['lease'] or 'free'}")
    day = status["last_day"]
    lines.append(f"last 24 h: {day['runs']} runs, {len(day['failed_runs'])} failed or abandoned, "
                 f"{len(day['degraded_runs'])} degraded, {day['fetch_failures']} failed fetches")
    for run in day["failed_runs"]:
        lines.append(f"  run {run['id']} ({run['job'] or 'manual'}) {run['status']}: {run['error']}")
    for run in day["degraded_runs"]:
        lines.append(f"  run {run['id']} ({run['job'] or 'manual'}) degraded: "
                     + "; ".join((run["health"] or {}).get("degraded") or ["(no reason recorded)"]))
    return "\n".join(lines)
