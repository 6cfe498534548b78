"""What share of the portal's versions an archive captured.

Compares the replica's history (history.py) with the archive's export of
all versions (`portal-archive export --all-versions`). A pure function of
the two, so a test can feed it synthetic rows.

A history version is captured when the archive holds a version of the same
aid that it observed while the portal showed it:

- created, edited: a live archive version with the same content, first
  seen (valid_from) before the portal's next version of that aid;
- restored: the same, and first seen after the restore, since a restore
  brings back content the archive may already hold from before;
- taken_down: an archive tombstone first seen after the takedown and before
  the portal's next version. Its content is not compared: a tombstone keeps
  whatever the archive last had, and an edit missed before the takedown is
  already counted as that edit's miss. A takedown that is an article's first
  version (it was gone before the history starts) has no lower bound.

`slack` widens the upper bound: a page fetched just before the next version
was saved can arrive, and be stamped, just after it.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

# The fields the export and the manifest share that make up an article's content.
CONTENT_KEYS = ("title", "lede", "body", "published_at", "editor", "source", "tags", "channel")
CATEGORIES = {"created": "new", "edited": "edits", "taken_down": "takedowns", "restored": "restores"}
RECALL_NAMES = {"new": "new_recall", "edits": "edit_recall", "takedowns": "takedown_recall",
                "restores": "restore_recall"}
STALENESS_QUANTILE = 0.9


def _time(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return moment


def content(record: dict) -> tuple:
    """An export row's or an expected record's content, comparable across the two
    (publication times compared as instants, whatever their offset)."""
    values = []
    for key in CONTENT_KEYS:
        value = record[key]
        if key == "published_at":
            value = _time(value)
        elif key == "tags":
            value = tuple(value)
        values.append(value)
    return tuple(values)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _observation(version: dict, previous: dict | None, following: dict | None,
                 rows: list[dict], slack: timedelta) -> datetime | None:
    """When the archive first observed `version`, or None if it never did."""
    at = _time(version["at"])
    until = _time(following["at"]) + slack if following is not None else None
    kind = version["kind"]
    wanted = "taken_down" if kind == "taken_down" else "live"
    lower = at if kind in ("taken_down", "restored") and previous is not None else None
    expected = content(version["expected"]) if kind != "taken_down" else None
    seen = [row["_from"] for row in rows
            if row["status"] == wanted
            and (lower is None or row["_from"] >= lower)
            and (until is None or row["_from"] < until)
            and (expected is None or row["_content"] == expected)]
    return min(seen, default=None)


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q of all values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def version_recall(history: list[dict], export_rows: list[dict],
                   since: str | datetime | None = None, slack: float = 1.0) -> dict:
    """Counts and recalls of the history's versions captured by the export.

    Versions that came into being at or before `since` are left out (e.g.
    those there when live mode started, which the archive may have crawled
    long before). Defective articles (quarantined by a correct archive) are
    never counted. Staleness is how long after a version appeared the
    archive first observed it, over captured versions (zero for a version
    observed before the history recorded it). `missed` lists the versions
    not captured, as [aid, version].
    """
    since_at = _time(since) if since is not None else None
    margin = timedelta(seconds=slack)
    by_aid: dict[int, list[dict]] = defaultdict(list)
    for line in history:
        by_aid[line["aid"]].append(line)
    rows_by_aid: dict[int, list[dict]] = defaultdict(list)
    for row in export_rows:
        rows_by_aid[row["aid"]].append({
            "status": row["status"], "_from": _time(row["valid_from"]),
            "_content": content(row) if row["status"] == "live" else None})

    totals = dict.fromkeys(CATEGORIES.values(), 0)
    captured = dict.fromkeys(CATEGORIES.values(), 0)
    staleness: list[float] = []
    missed: list[list[int]] = []
    for aid in sorted(by_aid):
        versions = sorted(by_aid[aid], key=lambda v: v["version"])
        if any(v["expected"].get("quarantined") for v in versions):
            continue
        for i, version in enumerate(versions):
            if since_at is not None and _time(version["at"]) <= since_at:
                continue
            category = CATEGORIES[version["kind"]]
            totals[category] += 1
            previous = versions[i - 1] if i > 0 else None
            following = versions[i + 1] if i + 1 < len(versions) else None
            seen = _observation(version, previous, following, rows_by_aid.get(aid, []), margin)
            if seen is None:
                missed.append([aid, version["version"]])
                continue
            captured[category] += 1
            staleness.append(max(0.0, (seen - _time(version["at"])).total_seconds()))

    total, got = sum(totals.values()), sum(captured.values())
    result = {"versions": total, "captured": got, "version_recall": _ratio(got, total)}
    for category in CATEGORIES.values():
        result[category] = totals[category]
        result[f"{category}_captured"] = captured[category]
        result[RECALL_NAMES[category]] = _ratio(captured[category], totals[category])
    result["staleness_mean"] = sum(staleness) / len(staleness) if staleness else None
    result["staleness_p90"] = _quantile(staleness, STALENESS_QUANTILE)
    result["missed"] = missed
    return result
