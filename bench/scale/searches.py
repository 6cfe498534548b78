"""Search queries cut from the archive's own text, and the search checked against a substring scan.

Queries are runs of Chinese characters (1, 2, 3, 4 and 6 of them) cut from random places in
random current versions, so every one matches at least its own article. Their hit counts from
the scan sort them into common and rare ones for the latency table.

The check: for each query, the archive's search (pipeline.archive.queries.list_articles, what the
list page and the API call) must report exactly as many articles as a plain Python `in` over the
current versions' title, lede and body finds, and its first page must be exactly the scan's
newest 50 (by publication, then id). A query of one character is the bounded scan over the
newest search.SCAN_WINDOW articles, and is checked against the scan of those.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from random import Random
from zoneinfo import ZoneInfo

from sqlalchemy import select

from pipeline.archive import queries
from pipeline.archive.models import Article, ArticleVersion
from pipeline.archive.search import SCAN_WINDOW

LENGTHS = (1, 2, 3, 4, 6)
PER_PAGE = 50
CJK_RUN = re.compile(r"[\u4e00-\u9fff\U00020000-\U0002a6df]+")


@dataclass
class Corpus:
    """The current version of every article, newest first by publication, as one string each."""

    aids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, session) -> "Corpus":
        corpus = cls()
        rows = session.execute(
            select(Article.aid, ArticleVersion.title, ArticleVersion.lede, ArticleVersion.body_text)
            .join(ArticleVersion, (ArticleVersion.article_id == Article.id) & ArticleVersion.valid_to.is_(None))
            .order_by(Article.published_at.desc(), Article.id.desc()).execution_options(yield_per=5000))
        for aid, title, lede, body in rows:
            corpus.aids.append(aid)
            corpus.texts.append("\n".join((title or "", lede or "", body or "")))
        return corpus

    def hits(self, query: str) -> list[int]:
        texts = self.texts[:SCAN_WINDOW] if len(query) == 1 else self.texts
        return [self.aids[i] for i, text in enumerate(texts) if query in text]


def sample_queries(corpus: Corpus, count: int, rng: Random) -> list[str]:
    """`count` distinct queries, an equal share of each length in LENGTHS."""
    found: list[str] = []
    per_length = -(-count // len(LENGTHS))
    for length in LENGTHS:
        chosen: set[str] = set()
        while len(chosen) < per_length:
            text = corpus.texts[rng.randrange(len(corpus.texts))]
            runs = [r for r in CJK_RUN.findall(text) if len(r) >= length]
            if runs:
                run = rng.choice(runs)
                at = rng.randrange(len(run) - length + 1)
                chosen.add(run[at:at + length])
        found += sorted(chosen)
    return found[:count]


def check(session, corpus: Corpus, query_list: list[str], tz: ZoneInfo) -> tuple[dict[str, int], list[dict]]:
    """Hits per query (from the scan) and the queries whose search differed from the scan."""
    hits, differences = {}, []
    for query in query_list:
        expected = corpus.hits(query)
        hits[query] = len(expected)
        found = queries.list_articles(session, queries.ArticleFilter(q=query), tz, 1, PER_PAGE)
        page = [row.aid for row in found.items]
        # A total counted only so far (PostgreSQL's COUNT_LIMIT) says "more than": the scan must find more.
        total_agrees = len(expected) > found.total if found.more else len(expected) == found.total
        if not total_agrees or page != expected[:PER_PAGE]:
            differences.append({"query": query, "search_total": found.total, "scan_total": len(expected),
                                "search_more": found.more, "first_page_equal": page == expected[:PER_PAGE]})
    return hits, differences


def by_kind(hits: dict[str, int], per_kind: int = 5) -> dict[str, list[str]]:
    """For each length, the most and the least common queries: 'N chars, common/rare'."""
    kinds = {}
    for length in LENGTHS:
        ranked = sorted((q for q in hits if len(q) == length), key=lambda q: (-hits[q], q))
        label = f"{length} char" + ("s" if length > 1 else "") + (" and more" if length == LENGTHS[-1] else "")
        kinds[f"search, {label}, common"] = ranked[:per_kind]
        kinds[f"search, {label}, rare"] = ranked[-per_kind:]
    return kinds
