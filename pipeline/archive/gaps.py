"""Completeness: aids are site-wide and increasing, so a hole between two archived aids is
an article no list page showed us (or one the portal never published). Holes are probed
directly by aid, newest first, a bounded number per run; an aid that answered 404 is not
probed again for a while.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.archive.models import AidProbe, Article, Quarantine

MAX_PROBES_PER_RUN = 200
REPROBE_MISSING_AFTER = timedelta(days=7)


def missing_aids(session: Session, now: datetime, limit: int = MAX_PROBES_PER_RUN) -> list[int]:
    prev = func.lag(Article.aid).over(order_by=Article.aid).label("prev")
    ordered = select(Article.aid, prev).subquery()
    holes = session.execute(
        select(ordered.c.prev, ordered.c.aid).where(ordered.c.aid - ordered.c.prev > 1)
        .order_by(ordered.c.aid.desc())
    )
    out: list[int] = []
    for low, high in holes:
        candidates = list(range(high - 1, low, -1))[: limit * 2]
        settled = set(session.scalars(select(AidProbe.aid).where(
            AidProbe.aid.in_(candidates), AidProbe.result == "missing",
            AidProbe.probed_at > now - REPROBE_MISSING_AFTER)))
        settled |= set(session.scalars(select(Quarantine.aid).where(Quarantine.aid.in_(candidates))))
        out += [aid for aid in candidates if aid not in settled]
        if len(out) >= limit:
            return out[:limit]
    return out


def record_probe(session: Session, aid: int, result: str, at: datetime) -> None:
    probe = session.get(AidProbe, aid)
    if probe is None:
        session.add(AidProbe(aid=aid, result=result, probed_at=at, attempts=1))
    else:
        probe.result, probe.probed_at, probe.attempts = result, at, probe.attempts + 1
