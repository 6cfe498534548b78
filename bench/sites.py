"""The replica sites the bench crawls: generated from a seed, written as static files for nginx."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replica import CHANNELS, SiteState, build_static, generate
from replica.index import build_index
from replica.render import page_count


@dataclass
class BenchSite:
    articles: int
    seed: int
    state: SiteState
    www: Path  # build_static's output: the files and nginx-locations.conf
    list_pages: int  # channel roots plus every further list page
    article_pages: int  # live articles, each linked from exactly one list page
    bytes: int  # every file of the site (both article views, lists, home, 404)

    @property
    def pages(self) -> int:
        """What a walk of the lists and their articles fetches: the baseline's and the crawl's page count."""
        return self.list_pages + self.article_pages


def build_site(articles: int, seed: int, directory: Path) -> BenchSite:
    state = generate(articles, seed=seed)
    counts = build_static(state, directory / "www")
    index = build_index(state)
    list_pages = sum(page_count(len(index.by_channel[c.slug])) for c in CHANNELS)
    live = sum(1 for a in state.articles.values() if a.live)
    return BenchSite(articles=articles, seed=seed, state=state, www=directory / "www", list_pages=list_pages,
                     article_pages=live, bytes=counts["bytes"])
