"""The archive against the replica's ground truth: speed is never bought with missing articles,
fields or versions.

Read through the archive's public contract (`portal-archive export
--all-versions`), compared with `replica.expected_articles`.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict

from bench.measure import BenchFailure, run_checked

# The export's keys that the ground truth also holds (as in tests/test_archive_e2e.py).
COMPARED = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source",
            "origin_source", "tags", "status", "duplicate_of")
SHOWN_MISMATCHES = 10


def export_versions(db_url: str, *, env: dict, timeout: float) -> list[dict]:
    """Every version in the archive, through the real CLI."""
    result = run_checked([sys.executable, "-m", "ops.cli", "export", "--db", db_url, "--all-versions"],
                         env=env, timeout=timeout, what="portal-archive export")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def body_hash(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def check_archive(rows: list[dict], expected: dict[int, dict], versions_per_article: int = 1) -> str:
    """Raise BenchFailure unless every archivable article is there exactly once, with
    `versions_per_article` gapless versions and a current one equal to the ground truth."""
    archivable = {aid: e for aid, e in expected.items() if not e["quarantined"]}
    by_aid: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_aid[row["aid"]].append(row)
    problems: list[str] = []
    missing = sorted(set(archivable) - set(by_aid))
    extra = sorted(set(by_aid) - set(archivable))
    if missing:
        problems.append(f"{len(missing)} articles missing from the archive (e.g. aids {missing[:5]})")
    if extra:
        problems.append(f"{len(extra)} aids archived that the replica does not have (e.g. {extra[:5]})")
    wrong_versions = {aid: [r["version"] for r in vs] for aid, vs in by_aid.items()
                      if sorted(r["version"] for r in vs) != list(range(1, versions_per_article + 1))}
    if wrong_versions:
        sample = dict(list(sorted(wrong_versions.items()))[:5])
        problems.append(f"{len(wrong_versions)} articles without exactly {versions_per_article} version(s) "
                        f"(aid: versions {sample})")
    mismatches: list[tuple[int, str, object, object]] = []
    for aid, truth in archivable.items():
        current = [r for r in by_aid.get(aid, ()) if r["valid_to"] is None]
        if len(current) != 1:
            if aid in by_aid:
                problems.append(f"aid {aid} has {len(current)} current versions")
            continue
        row = current[0]
        mismatches += [(aid, key, row[key], truth[key]) for key in COMPARED if row[key] != truth[key]]
        if body_hash(row["body"]) != body_hash(truth["body"]):
            mismatches.append((aid, "body sha256", body_hash(row["body"]), body_hash(truth["body"])))
    if mismatches:
        fields = sorted({key for _, key, _, _ in mismatches})
        shown = "; ".join(f"aid {aid} {key}: archived {got!r:.80} expected {want!r:.80}"
                          for aid, key, got, want in mismatches[:SHOWN_MISMATCHES])
        problems.append(f"{len(mismatches)} field mismatches in {fields}: {shown}")
    if problems:
        raise BenchFailure("the archive differs from the replica's ground truth:\n  " + "\n  ".join(problems))
    return (f"{len(archivable)} articles archived exactly once, {len(rows)} versions; "
            f"titles, body hashes and {len(COMPARED) - 2} other fields equal the ground truth")


def check_unchanged(before: list[dict], after: list[dict]) -> None:
    """A revisit of an unchanged portal leaves the export exactly as it was."""
    if before != after:
        changed = sum(1 for a, b in zip(before, after) if a != b) + abs(len(before) - len(after))
        raise BenchFailure(f"a revisit of the unchanged replica changed the archive's export ({changed} rows differ)")
