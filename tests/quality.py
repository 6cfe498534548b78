"""Scoring extraction on the recorded pages of tests/files/quality (the quality gate and its comparison).

Each page is read the way `portal-archive extract` reads it (decode, profile
or fallback, cleaning) and compared with its expected fields. Body text is
scored by character F1 (Chinese has no spaces to split words at; blanks are
ignored), everything else by exact match.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ops.extract import extract_page

QUALITY = Path(__file__).parent / "files" / "quality"
FETCHED_AT = datetime(2026, 2, 12, tzinfo=timezone.utc)
# What the export calls the body; the rest of the keys are shared.
COMPARED = ("url", "channel", "title", "published_at", "lede", "body", "editor", "source", "origin_source", "tags")


def expected() -> dict[str, dict]:
    return json.loads((QUALITY / "expected.json").read_text(encoding="utf-8"))


def pages(layout: str) -> dict[str, dict]:
    return {name: entry for name, entry in expected().items() if entry["layout"] == layout}


def body_f1(got: str | None, want: str) -> float:
    """Character-level F1 of two texts, blanks ignored."""
    g = Counter(c for c in got or "" if not c.isspace())
    w = Counter(c for c in want if not c.isspace())
    common = sum((g & w).values())
    if not common:
        return 0.0
    precision, recall = common / sum(g.values()), common / sum(w.values())
    return 2 * precision * recall / (precision + recall)


@dataclass
class PageScore:
    name: str
    method: str | None
    rejected: str | None  # the problem, when the page could not be archived
    expect_rejected: bool
    f1: float = 0.0
    wrong: dict = field(default_factory=dict)  # field -> (got, expected)

    @property
    def ok(self) -> bool:
        return self.expect_rejected == bool(self.rejected) and not self.wrong


def score_page(profile, name: str, entry: dict, method: str = "auto") -> PageScore:
    url = entry["url"] or f"http://other.test/{name}"
    got = extract_page(profile, (QUALITY / name).read_bytes(), url, fetched_at=FETCHED_AT, method=method)
    result = PageScore(name, got["method"], got["problem"], "rejected" in entry)
    if result.expect_rejected:
        if got["problem"] and entry["rejected"] not in got["problem"]:
            result.wrong["problem"] = (got["problem"], entry["rejected"])
        return result
    if got["problem"]:
        return result
    want = entry["fields"]
    result.f1 = body_f1(got["body"], want["body"])
    result.wrong = {k: (got[k], want[k]) for k in COMPARED if k in want and got[k] != want[k]}
    return result


@dataclass
class GroupScore:
    pages: list[PageScore]

    def _archivable(self) -> list[PageScore]:
        return [p for p in self.pages if not p.expect_rejected]

    def share(self, key: str) -> float:
        """Share of the archivable pages whose `key` came out exactly right."""
        pages = self._archivable()
        return sum(1 for p in pages if not p.rejected and key not in p.wrong) / len(pages)

    @property
    def mean_f1(self) -> float:
        pages = self._archivable()
        return sum(p.f1 for p in pages) / len(pages)

    @property
    def min_f1(self) -> float:
        return min(p.f1 for p in self._archivable())

    @property
    def rejections_right(self) -> bool:
        return all(bool(p.rejected) == p.expect_rejected for p in self.pages)

    def line(self, label: str) -> str:
        return (f"{label}: {len(self._archivable())} pages, title {self.share('title'):.0%}, "
                f"date {self.share('published_at'):.0%}, body F1 mean {self.mean_f1:.3f} min {self.min_f1:.3f}, "
                f"body exact {self.share('body'):.0%}, pages without a body rejected: {self.rejections_right}")


def score_group(profile, layout: str, method: str = "auto") -> GroupScore:
    return GroupScore([score_page(profile, name, entry, method) for name, entry in sorted(pages(layout).items())])
