"""Who is live where: the lookups every page needs, built once per state."""
from __future__ import annotations

from dataclasses import dataclass

from .site import CHANNELS
from .state import Article, SiteState

RELATED_LIMIT = 6


@dataclass(frozen=True)
class SiteIndex:
    by_channel: dict[str, list[Article]]  # live articles, ascending aid
    position: dict[int, int]  # aid -> index in its channel's list (live only)


def build_index(state: SiteState) -> SiteIndex:
    by_channel: dict[str, list[Article]] = {c.slug: [] for c in CHANNELS}
    for article in sorted(state.articles.values(), key=lambda a: a.aid):
        if article.live:
            by_channel[article.channel].append(article)
    position = {a.aid: i for items in by_channel.values() for i, a in enumerate(items)}
    return SiteIndex(by_channel, position)


def neighbours(index: SiteIndex, article: Article) -> tuple[Article | None, Article | None]:
    """Previous and next live article of the same channel, by aid."""
    items = index.by_channel[article.channel]
    at = index.position[article.aid]
    return (items[at - 1] if at > 0 else None,
            items[at + 1] if at + 1 < len(items) else None)


def related(index: SiteIndex, article: Article) -> list[Article]:
    """The channel's newest live articles that are newer than this one.

    The reference page lists the channel's latest items, newest first, under
    an article from months earlier; the newest article therefore has none.
    """
    items = index.by_channel[article.channel]
    at = index.position[article.aid]
    return items[len(items) - 1:at:-1][:RELATED_LIMIT]


def newest_first(index: SiteIndex, slug: str) -> list[Article]:
    return index.by_channel[slug][::-1]
