"""Run health: did this crawl read the portal as well as it should?

A redesign does not make a crawl fail: pages still answer 200, and the
fallback still archives them. What changes is how the articles were read.
So every run records, from the cleaning stage's counts:

- field coverage: the share of archived articles that have each field;
- the fallback rate: the share of article pages the profile could not read;
- the quarantine rate: the share of article pages that could not be archived.

A run whose rates cross the configured thresholds is `degraded` (it did
archive; someone should look at the profile). A run that archived nothing
although the portal listed articles new to the archive is `failed`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from pipeline import stats as keys
from pipeline.archive.db import session_scope
from pipeline.archive.models import Quarantine
from pipeline.archive.outcomes import Written

# Fields whose coverage is recorded (CleanArticle.content_fields names).
COVERAGE_FIELDS = ("title", "published_at", "body_text", "lede", "editor", "source", "channel",
                   "origin_source", "tags")
# Fields every article page of this portal carries, so a drop in their coverage is a
# reading problem; inner credits and tags are on some articles only and are not judged.
JUDGED_FIELDS = ("title", "published_at", "body_text", "channel", "lede", "editor", "source")
DEGRADED = "degraded"
# How many new aids an error message names.
NAMED_AIDS = 5


@dataclass(frozen=True)
class Thresholds:
    max_fallback_rate: float = 0.05
    max_quarantine_rate: float = 0.05
    min_field_coverage: float = 0.9
    # Rates of a handful of pages say little: a run judges them from this many article pages on.
    min_articles: int = 20

    @classmethod
    def from_settings(cls, settings) -> "Thresholds":
        return cls(settings.health_max_fallback_rate, settings.health_max_quarantine_rate,
                   settings.health_min_field_coverage, settings.health_min_articles)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def run_health(stats: dict, listed_new: int = 0, known_broken: int = 0) -> dict:
    """The run's health figures from its crawler stats (clean/* counts, see pipeline.reading.clean).

    `known_broken` pages were quarantined by an earlier run already (a page
    without a body stays so, and is fetched again on every run): they are not
    news about this run, so the quarantine rate leaves them out.
    """
    get = lambda key: keys.count(stats, key)  # noqa: E731
    archived, rejected = get(keys.READ_OK), get(keys.READ_REJECTED)
    read = archived + rejected
    return {
        "article_pages": read,
        "archived": archived,
        "quarantined": rejected,
        "known_broken": known_broken,
        "fallback": get(keys.READ_BY + "fallback"),
        "fallback_rate": _rate(get(keys.READ_BY + "fallback"), read),
        "quarantine_rate": _rate(max(0, rejected - known_broken), read),
        "coverage": {name: _rate(get(keys.READ_FIELD + name), archived) for name in COVERAGE_FIELDS},
        "listed_new": listed_new,
    }


def judge(health: dict, thresholds: Thresholds) -> list[str]:
    """Why the run is degraded (empty: it is not)."""
    if health["article_pages"] < thresholds.min_articles:
        return []
    reasons = []
    if (health["fallback_rate"] or 0) > thresholds.max_fallback_rate:
        reasons.append(f"fallback rate {health['fallback_rate']:.1%} above {thresholds.max_fallback_rate:.1%}: "
                       f"the profile could not read {health['fallback']} of {health['article_pages']} "
                       f"article pages")
    if (health["quarantine_rate"] or 0) > thresholds.max_quarantine_rate:
        reasons.append(f"quarantine rate {health['quarantine_rate']:.1%} above "
                       f"{thresholds.max_quarantine_rate:.1%}: {health['quarantined'] - health['known_broken']} of "
                       f"{health['article_pages']} article pages could not be archived")
    low = {name: share for name, share in health["coverage"].items()
           if name in JUDGED_FIELDS and share is not None and share < thresholds.min_field_coverage}
    if low:
        reasons.append(f"field coverage below {thresholds.min_field_coverage:.0%}: "
                       + ", ".join(f"{name} {share:.1%}" for name, share in low.items()))
    return reasons


def assess(health: dict, thresholds: Thresholds) -> dict:
    """The health figures with the thresholds they were judged by and the verdict."""
    return {**health, "thresholds": asdict(thresholds), "degraded": judge(health, thresholds)}


def known_broken(engine: Engine, run_id: int) -> int:
    """Pages this run quarantined whose article an earlier run had quarantined already."""
    earlier = select(Quarantine.aid).where(Quarantine.crawl_run_id < run_id, Quarantine.aid.is_not(None))
    with session_scope(engine) as session:
        return session.scalar(select(func.count(func.distinct(Quarantine.aid))).where(
            Quarantine.crawl_run_id == run_id, Quarantine.aid.in_(earlier))) or 0


def unarchived_news(engine: Engine, run_id: int, listed_new: set[int], stats: dict) -> str | None:
    """Why the run failed although every request answered: new articles listed, none archived.

    Aids quarantined by an earlier run are known to the archive (a defective
    page stays defective), so they alone do not fail a run; nor does a request
    budget that ran out before them (the next runs fetch them first).
    """
    if not listed_new or keys.count(stats, keys.archive(Written.NEW)) or keys.count(stats, keys.LEFT + "new"):
        return None
    aids, known = sorted(listed_new), set()
    with session_scope(engine) as session:
        for at in range(0, len(aids), 500):
            known.update(session.scalars(select(Quarantine.aid).where(
                Quarantine.aid.in_(aids[at:at + 500]), Quarantine.crawl_run_id != run_id)))
    missed = sorted(listed_new - known)
    if not missed:
        return None
    named = ", ".join(map(str, missed[:NAMED_AIDS])) + (", …" if len(missed) > NAMED_AIDS else "")
    return (f"the portal listed {len(missed)} articles new to the archive (aids {named}) and this run "
            f"archived none of them ({keys.count(stats, keys.archive(Written.QUARANTINED))} pages quarantined, "
            f"{keys.count(stats, keys.archive(Written.FETCH_FAILED))} failed fetches)")
