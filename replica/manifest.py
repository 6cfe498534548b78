"""Ground truth: what a correct extractor gets from each article page.

Taken-down articles keep the fields they last had while live; the archive
is expected to hold exactly that last version.
"""
from __future__ import annotations

import json
from typing import Iterator

from .site import CHANNEL_BY_SLUG
from .state import Article, SiteState

FIELDS = ("aid", "url", "channel", "status", "title", "published_at", "lede", "body",
          "editor", "source", "origin_source", "tags", "duplicate_of", "quarantined", "defect", "special")


def expected_article(state: SiteState, article: Article, base_url: str) -> dict:
    base = base_url.rstrip("/")
    original = state.articles.get(article.duplicate_of) if article.duplicate_of else None
    return {
        "aid": article.aid,
        "url": base + article.path,
        "channel": CHANNEL_BY_SLUG[article.channel].name,
        "status": article.status,
        "title": article.title,
        "published_at": article.published_at,
        "lede": article.lede,
        "body": "\n".join(article.paragraphs),
        "editor": article.editor,
        "source": article.source,
        "origin_source": article.origin_source,
        "tags": list(article.tags),
        "duplicate_of": base + original.path if original else None,
        "quarantined": article.defect is not None,
        "defect": article.defect,
        # Special pages (specials.py) are archivable: their ground truth is
        # the visible text, even when the page is hostile, huge or nested.
        "special": article.special,
    }


def expected_articles(state: SiteState, base_url: str) -> dict[int, dict]:
    """One record per aid ever generated, in aid order."""
    return {aid: expected_article(state, state.articles[aid], base_url)
            for aid in sorted(state.articles)}


def manifest_lines(state: SiteState, base_url: str) -> Iterator[str]:
    for record in expected_articles(state, base_url).values():
        yield json.dumps(record, ensure_ascii=False) + "\n"
