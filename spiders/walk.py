"""How far to page through a channel's list pages: the rules, without Scrapy."""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ListWalk:
    """Which list pages to read and which of their articles to follow.

    mode "full" reads every page; "incremental" stops a channel once `slack`
    pages in a row held nothing new (one page of slack absorbs a list that
    shifts while it is walked); "none" reads no list pages. since/until keep
    only articles whose list date is in range, and stop a channel at the first
    page entirely older than `since`. pages=(a, b) reads list pages a..b only.
    """

    mode: str = "full"
    slack: int = 1
    since: date | None = None
    until: date | None = None
    pages: tuple[int, int] | None = None

    def first_page(self) -> int:
        return self.pages[0] if self.pages else 1

    def in_range(self, day: date | None) -> bool:
        if day is None:
            return True  # an undated item is followed: better one fetch too many than a miss
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def continue_after(self, page: int, item_days: list[date | None], new_items: int, quiet: int) -> bool:
        """Whether to read the next page, given this one's item dates and how many were new."""
        if self.pages and page >= self.pages[1]:
            return False
        dated = [d for d in item_days if d is not None]
        if self.since is not None and dated and max(dated) < self.since:
            return False
        if self.mode == "incremental" and quiet > self.slack:
            return False
        return True


class SortedAids:
    """Which of a list page's aids are among `held` (sorted ascending, as the archive reads them:
    pipeline.archive.queries.archived_aids), answered in memory by bisection."""

    def __init__(self, held: Sequence[int]):
        self.held = held

    def __call__(self, aids: Iterable[int]) -> set[int]:
        held, n = self.held, len(self.held)
        found = set()
        for aid in aids:
            at = bisect_left(held, aid)
            if at < n and held[at] == aid:
                found.add(aid)
        return found
