"""`portal-archive status`: what ran, what runs next, what the archive holds, who holds the lease."""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ops.config import Settings
from ops.lease import current_holder
from pipeline.archive import budget
from pipeline.archive.models import Article, ArticleVersion, CrawlRun, FetchFailure, Quarantine, apscheduler_jobs
from pipeline.archive.revisit import standing_summary
from pipeline.archive.summary import RunSummary

BAD = ("failed", "abandoned")
# Archived, but read the portal worse than the thresholds allow (pipeline/health.py).
DEGRADED = "degraded"


def _count(session: Session, query) -> int:
    return session.scalar(query) or 0


def archive_status(session: Session, engine, settings: Settings, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    floor = timedelta(days=settings.revisit_floor_days) if settings.revisit_floor_days else None
    revisits = standing_summary(session, now, floor)
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
    # A reparse reads stored pages, an import other tools' captures, not the portal: neither says
    # anything of how the last crawl went.
    manual = session.scalars(select(CrawlRun).where(CrawlRun.job.is_(None),
                                                    CrawlRun.kind.not_in(("reparse", "import")))
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
            "past_revisit_floor": revisits["floor_overdue"],
        },
        "budget": budget_status(session, settings, now),
        "revisit_model": {"looks": revisits["looks"], "fitted_at": revisits["fitted_at"], **(revisits["model"] or {})},
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


def budget_status(session: Session, settings: Settings, now: datetime) -> dict:
    """The request budget over the last 24 hours: what was spent on what, what is left, and what
    runs had to leave undone for lack of it."""
    day_ago = now - budget.DAY
    runs = session.scalars(select(CrawlRun).where(CrawlRun.started_at > day_ago)).all()
    spent: dict[str, int] = {}
    left: dict[str, int] = {}
    for run in runs:
        for key, value in (run.stats or {}).items():
            if not isinstance(value, (int, float)):
                continue
            for prefix, into in (("budget/spent/", spent), ("budget/left/", left)):
                if key.startswith(prefix):
                    into[key.removeprefix(prefix)] = into.get(key.removeprefix(prefix), 0) + int(value)
    charged = budget.spent(session, day_ago, now)
    last = next((r for r in sorted(runs, key=lambda r: r.id, reverse=True) if r.status != "running"
                 and "revisit/candidates" in (r.stats or {})), None)
    plan = {k.removeprefix("revisit/"): v for k, v in (last.stats if last else {}).items() if k.startswith("revisit/")}
    return {
        "requests_per_day": settings.requests_per_day or None,
        "requests_per_run": settings.requests_per_run or None,
        "last_24h": charged,
        "left_today": max(0, settings.requests_per_day - charged) if settings.requests_per_day else None,
        "spent_by_kind": spent,
        "not_sent_by_kind": left,
        "last_plan": {"run": last.id if last else None, **plan},
        "pace": {"concurrent_requests": settings.concurrent_requests, "download_delay": settings.download_delay,
                 "autothrottle": settings.autothrottle},
    }


def _run(run: CrawlRun) -> dict:
    return asdict(RunSummary.of(run))


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
    lines += _budget_lines(status["budget"], status["revisit_model"])
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


def _budget_lines(b: dict, model: dict) -> list[str]:
    per_day = f"{b['requests_per_day']:,}/day" if b["requests_per_day"] else "no daily limit"
    lines = [f"budget: {per_day}" + (f", {b['requests_per_run']:,}/run" if b["requests_per_run"] else "")
             + f"; last 24 h {b['last_24h']:,} requests"
             + (f", {b['left_today']:,} left" if b["left_today"] is not None else "")]
    if b["spent_by_kind"]:
        lines.append("  spent on: " + ", ".join(f"{k} {v:,}" for k, v in sorted(b["spent_by_kind"].items(),
                                                                                key=lambda kv: -kv[1])))
    undone = []
    if any(b["not_sent_by_kind"].values()):
        undone.append("requests not sent " + ", ".join(f"{k} {v:,}" for k, v in b["not_sent_by_kind"].items() if v))
    plan = b["last_plan"]
    if plan.get("left_for_budget"):
        undone.append(f"last plan (run {plan['run']}) left {plan['left_for_budget']:,} revisits "
                      f"(~{plan.get('left_expected_versions', 0):.2f} new versions expected among them)")
    if plan.get("floor_overdue_left"):
        undone.append(f"{plan['floor_overdue_left']:,} articles past the revisit floor left unseen")
    if undone:
        lines.append("  left for lack of budget: " + "; ".join(undone))
    pace = b["pace"]
    lines.append(f"  pace: {pace['concurrent_requests']} at a time, {pace['download_delay']:g} s apart"
                 + (", AutoThrottle" if pace["autothrottle"] else ""))
    if model.get("kappa") is not None:
        within = model.get("expected_changes_within") or {}
        overall = within.get("all") or next(iter(within.values()), {})
        lines.append(f"revisit model: {model['looks']:,} looks, {model['observations']:,} intervals, "
                     f"{model['changes']:,} changes seen; an average article changes "
                     + ", ".join(f"{v:.2f}x within a {k}" for k, v in overall.items()))
    return lines
