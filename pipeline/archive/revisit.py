"""What a run fetches besides the list walk: failed fetches again, then the revisits and gap
probes worth most, within the run's share of the request budget.

The policy's core (pipeline/policy.py) is pure; this module is its memory. It
sums the looks recorded since the last run (article_checks) into the evidence
kept in `revisit_model`, refits the population model when the evidence has
grown by a tenth since the last fit (a count, not a clock: early on that is
every run, later rarely), reads every article's standing (publication, first
and last look, changes found) and lets the core rank them.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pipeline import stats as keys
from pipeline.archive import policy
from pipeline.archive.db import session_scope
from pipeline.archive.gaps import missing_aids
from pipeline.archive.models import AidProbe, Article, ArticleCheck, CrawlRun, FetchFailure, Quarantine, RevisitModel
from pipeline.archive.outcomes import CHANGES, LIVE_LOOKS
from pipeline.reading.records import Visit

CHUNK = 500
# The evidence is refitted once it has grown by this share since the last fit.
REFIT_GROWTH = 0.1
# Failed fetches and quarantined pages are tried again by the next runs for this long.
RETRY_FAILURES_WITHIN = timedelta(days=7)


@dataclass
class Visits:
    """A run's planned article requests in order, and the numbers that explain the plan."""

    visits: Iterable[Visit] = field(default_factory=list)
    failed_lists: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def _epoch(values) -> np.ndarray:
    return np.array([v.timestamp() for v in values], dtype=float)


# --- the evidence -----------------------------------------------------------------------------
def _load(session: Session) -> RevisitModel:
    row = session.get(RevisitModel, 1)
    if row is None:
        row = RevisitModel(id=1, checks_seen=0, evidence={}, model={}, fitted_on=0)
        session.add(row)
    return row


def _evidence(row: RevisitModel) -> tuple[policy.Evidence, list[str]]:
    data = row.evidence or {}
    streams = list(data.get("streams", []))
    exposure = np.asarray(data.get("exposure") or np.zeros((0, policy.BINS)), dtype=float).reshape(-1, policy.BINS)
    return policy.Evidence(exposure, policy.Intervals.of([], [], [], []), int(data.get("intervals", 0))), streams


def _stream_index(streams: list[str], names) -> np.ndarray:
    index = {name: i for i, name in enumerate(streams)}
    for name in names:
        if name not in index:
            index[name] = len(streams)
            streams.append(name)
    return np.array([index[name] for name in names], dtype=np.int64)


def _looks(session: Session, query, streams: list[str]) -> policy.Intervals:
    """Intervals of the live looks a query of (at, interval, outcome, channel, born_at,
    first_seen_at) rows returns."""
    rows = session.execute(query).all()
    if not rows:
        return policy.Intervals.of([], [], [], [])
    at = np.array([r.at for r in rows], dtype=float)
    interval = np.array([r.interval for r in rows], dtype=float)
    birth = _epoch(r.born_at or r.first_seen_at for r in rows)
    changed = np.array([r.outcome in CHANGES for r in rows])
    return policy.Intervals.of(_stream_index(streams, [r.channel for r in rows]), at - interval - birth,
                               at - birth, changed)


def _live_looks():
    return (select(ArticleCheck.at, ArticleCheck.interval, ArticleCheck.outcome, Article.channel,
                   Article.born_at, Article.first_seen_at)
            .join(Article, Article.id == ArticleCheck.article_id)
            .where(ArticleCheck.interval.is_not(None), ArticleCheck.outcome.in_([int(o) for o in LIVE_LOOKS])))


def learn(session: Session, now: datetime) -> tuple[policy.Model, list[str], bool]:
    """Sum the looks recorded since the last call into the evidence; refit when it has grown
    enough. Returns the model, its streams (channel names) and whether it was refitted."""
    row = _load(session)
    evidence, streams = _evidence(row)
    _stream_index(streams, sorted(session.scalars(select(Article.channel).distinct())))  # every channel a stream
    newest = session.scalar(select(func.max(ArticleCheck.id))) or 0
    if newest > row.checks_seen or len(evidence.exposure) < len(streams):
        new = _looks(session, _live_looks().where(ArticleCheck.id > row.checks_seen, ArticleCheck.id <= newest),
                     streams)
        exposure = np.zeros((len(streams), policy.BINS))
        exposure[:len(evidence.exposure)] = evidence.exposure
        evidence = policy.Evidence(exposure, evidence.changed, evidence.intervals).add(new)
        row.checks_seen = newest
        row.evidence = {"streams": streams, "exposure": evidence.exposure.tolist(), "intervals": evidence.intervals}
    stored = policy.Model.from_dict(row.model) if row.model else None
    if (stored is not None and len(stored.streams) == len(streams)
            and evidence.intervals - row.fitted_on < max(1, REFIT_GROWTH * row.fitted_on)):
        return stored, streams, False
    changed = _looks(session, _live_looks().where(ArticleCheck.outcome.in_([int(o) for o in CHANGES]))
                     .order_by(ArticleCheck.id.desc()).limit(policy.MAX_FIT_INTERVALS), streams)
    exposure = np.zeros((len(streams), policy.BINS))
    exposure[:len(evidence.exposure)] = evidence.exposure
    evidence = policy.Evidence(exposure, changed, evidence.intervals)
    standing = _standing(session, streams)
    model = policy.fit(evidence, standing.articles, streams)
    row.model, row.fitted_on, row.fitted_at = model.to_dict(), evidence.intervals, now
    return model, streams, True


# --- the articles ------------------------------------------------------------------------------
@dataclass
class Standing:
    """Every archived article as the policy sees it, with what a request for it needs."""

    articles: policy.Articles
    aid: np.ndarray
    url: list[str]
    etag: list[str | None]
    last_modified: list[str | None]


def _standing(session: Session, streams: list[str], channels: list[str] | None = None) -> Standing:
    query = select(Article.aid, Article.canonical_url, Article.etag, Article.last_modified, Article.channel,
                   Article.status, Article.born_at, Article.first_seen_at, Article.last_checked_at,
                   Article.changes).order_by(Article.id)
    if channels:
        query = query.where(Article.channel.in_(channels))
    rows = session.execute(query).all()
    first_seen = _epoch(r.first_seen_at for r in rows)
    articles = policy.Articles.of(
        _stream_index(streams, [r.channel for r in rows]),
        _epoch(r.born_at or r.first_seen_at for r in rows), first_seen,
        _epoch(r.last_checked_at for r in rows), [r.changes or 0 for r in rows],
        [r.status == "live" for r in rows])
    return Standing(articles, np.array([r.aid for r in rows], dtype=np.int64), [r.canonical_url for r in rows],
                    [r.etag for r in rows], [r.last_modified for r in rows])


# --- the plan ----------------------------------------------------------------------------------
def plan_visits(engine: Engine, mode: str, now: datetime, allowance: int | None, *,
                channels: list[str] | None = None, conditional: bool = True, probe_gaps: bool = True,
                retry_failures: bool = True, floor: timedelta | None = None,
                strategy: str = "adaptive") -> Visits:
    """The run's article requests, in the order to make them: unresolved failures first, then
    (mode "policy") the revisits and gap probes worth most, as many as `allowance` leaves room
    for (None: every one with any value); mode "all" revisits every article, "none" none."""
    out = Visits()
    with session_scope(engine) as session:
        failed, out.failed_lists = unresolved_failures(session, now) if retry_failures else ([], [])
        out.visits = [Visit(url, kind="retry") for url in failed]
        room = None if allowance is None else max(0, allowance - len(out.visits) - len(out.failed_lists))
        probes = missing_aids(session, now) if probe_gaps else []
        if mode == "policy":
            _plan_policy(session, out, now, room, channels, conditional, probes, floor, strategy)
        else:
            rest = all_revisits(engine, channels, conditional) if mode == "all" else ()
            out.visits = chain(out.visits, rest, [Visit(None, aid=aid, kind="probe") for aid in probes])
    out.stats[keys.REVISIT + "retries_planned"] = len(failed)
    return out


def _plan_policy(session, out: Visits, now, room, channels, conditional, probes, floor, strategy) -> None:
    model, streams, refitted = learn(session, now)
    standing = _standing(session, streams, channels)
    articles = standing.articles
    t = now.timestamp()
    values = policy.revisit_values(model, articles, t, strategy)
    unseen = t - articles.last_check
    found, missing = _probe_counts(session)
    probe = policy.probe_value(found, missing)
    # Probes compete with revisits on the same scale (expected new versions per request). Under
    # the uniform baseline, whose values are seconds, they come after the revisits.
    probe_values = np.full(len(probes), probe if strategy == "adaptive" else 0.0)
    all_values = np.concatenate([values, probe_values])
    all_unseen = np.concatenate([unseen, np.zeros(len(probes))])
    budget = len(all_values) if room is None else room
    chosen = policy.choose(all_values, all_unseen, budget, floor.total_seconds() if floor else None)
    failed_urls = {v.url for v in out.visits}
    planned = probed = 0
    for index in chosen.order:
        if index >= len(articles):
            out.visits.append(Visit(None, aid=int(probes[index - len(articles)]), kind="probe"))
            probed += 1
            continue
        url = standing.url[index]
        if url in failed_urls:
            continue
        out.visits.append(Visit(url, standing.etag[index] if conditional else None,
                                  standing.last_modified[index] if conditional else None, kind="revisit"))
        planned += 1
    left_probes = len(probes) - probed
    if strategy == "uniform":
        expected = left = 0.0
        probe_left_value = 0.0
    else:
        expected = float(chosen.value[chosen.value < np.inf].sum())
        left = chosen.left_value
        probe_left_value = left_probes * probe
    out.stats.update({keys.REVISIT + name: value for name, value in {
        "strategy": strategy,
        "candidates": len(articles),
        "planned": planned,
        "probes_planned": probed,
        "expected_versions": round(expected, 3),
        "floor_overdue": chosen.overdue,
        "floor_overdue_left": chosen.overdue_left,
        "left_for_budget": chosen.left_over,
        "left_expected_versions": round(left + probe_left_value, 3),
        "probes_left_for_budget": left_probes,
        "model_observations": model.observations,
        "model_changes": model.changes,
        "model_kappa": round(model.kappa, 4),
        "model_refitted": int(refitted),
    }.items()})


def _probe_counts(session: Session) -> tuple[int, int]:
    counts = dict(session.execute(select(AidProbe.result, func.count()).group_by(AidProbe.result)).all())
    return counts.get("found", 0), counts.get("missing", 0)


def all_revisits(engine: Engine, channels: list[str] | None = None,
                 conditional: bool = True) -> Iterator[Visit]:
    """Every archived article, taken-down ones included, in id order, read in short chunks while
    the crawl writes (`--revisit all`)."""
    last_id = 0
    while True:
        with session_scope(engine) as session:
            query = select(Article.id, Article.canonical_url, Article.etag, Article.last_modified).where(
                Article.id > last_id)
            if channels:
                query = query.where(Article.channel.in_(channels))
            rows = session.execute(query.order_by(Article.id).limit(CHUNK)).all()
        if not rows:
            return
        last_id = rows[-1].id
        for row in rows:
            yield Visit(row.canonical_url, row.etag if conditional else None,
                          row.last_modified if conditional else None)


def unresolved_failures(session, now: datetime) -> tuple[list[str], list[str]]:
    """(article URLs, list page URLs) that failed or were quarantined recently and not fetched since.

    A timeout, a 5xx or a broken page proves nothing about the article, so
    it is fetched again on the next runs until it is archived (or the
    failure is a week old, when the regular walks and revisits take over).
    """
    since = now - RETRY_FAILURES_WITHIN
    articles: dict[str, None] = {}
    for table in (FetchFailure, Quarantine):
        settled = select(Article.id).where(Article.aid == table.aid, Article.last_checked_at > table.created_at)
        rows = session.execute(select(table.url).where(table.created_at > since, table.aid.is_not(None),
                                                       ~settled.exists()).distinct())
        articles.update(dict.fromkeys(url for (url,) in rows))
    last_good = session.scalar(select(func.max(CrawlRun.started_at)).where(
        CrawlRun.status.in_(("succeeded", "degraded")), CrawlRun.fetch_failures == 0))
    lists = session.scalars(select(FetchFailure.url).where(
        FetchFailure.created_at > max(since, last_good or since), FetchFailure.aid.is_(None)).distinct())
    return list(articles), list(lists)


def standing_summary(session: Session, now: datetime, floor: timedelta | None) -> dict:
    """For `status`: how many articles the floor says must be seen, and the model's view."""
    row = session.get(RevisitModel, 1)
    overdue = 0
    if floor:
        overdue = session.scalar(select(func.count()).select_from(Article).where(
            Article.last_checked_at < now - floor)) or 0
    model = policy.Model.from_dict(row.model) if row is not None and row.model else None
    return {"floor_overdue": overdue, "looks": row.checks_seen if row else 0,
            "model": policy.describe(model) if model else None,
            "fitted_at": row.fitted_at if row else None}
