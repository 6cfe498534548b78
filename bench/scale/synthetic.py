"""A synthetic portal history, as the items a crawl would hand the archive's writer.

The text, channels, editors, sources, tags and the page markup are the replica's own
(replica.generator.new_article, replica.render.render_article, replica.mutate.edit), so a
version looks and compresses like one of the portal's. What is skipped is the HTTP round trip
and the page's parse: the fields are taken from the replica's article and cleaned by the
reader's own body rules (pipeline.reading.html.clean_body), then fingerprinted like any
CleanArticle. Parsing every page with read_page costs 1.3 ms a version, 45 minutes of a
2,000,000-version build, and measures the reader, which bench/ measures elsewhere.

Everything is drawn from RNGs seeded with (seed, chunk), so a chunk written again produces the
same items and the writer, which compares with what the archive holds, writes nothing twice:
that is what makes the build resumable chunk by chunk.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

from pipeline.reading.compression import Compressor
from pipeline.reading.fingerprint import fingerprint
from pipeline.reading.html import clean_body
from pipeline.reading.records import ArticleGone, CleanArticle, Page
from replica import templates as t
from replica.generator import new_article
from replica.index import build_index
from replica.markup import body_paragraphs
from replica.mutate import EDIT_KINDS, edit, restore, take_down
from replica.render import render_article, render_not_found
from replica.site import CHANNEL_BY_SLUG, CHANNELS, EPOCH_NOW, parse_iso
from replica.state import SiteState
from replica.text import TextMaker

BASE_URL = "http://portal.test"
FIRST_AID = 1_000_001  # far from the replica's own aids (10001…), which the writer probe crawls
SPAN_DAYS = 15 * 365  # a portal that has published for fifteen years
CHUNK = 5_000  # articles per chunk: one crawl run, one unit of resumption
EDITED_SHARE = 0.25  # articles with any change after their first version; the rest keep one version
MAX_EVENTS = 400  # the longest history an article gets
TAKEDOWN_SHARE = 0.03  # of changes: the page answers 404 (a later change restores it)
MEAN_GAP_HOURS = 72  # between two changes of one article


def plan_events(articles: int, versions: int, seed: int) -> list[int]:
    """How many changes each article gets after its first version, summing to versions - articles.

    Most articles keep their first version; a quarter change, with Pareto-distributed weights, so a
    few have hundreds of versions (the portal's live pages, corrected again and again).
    """
    extra = versions - articles
    if extra < 0:
        raise ValueError("fewer versions than articles")
    counts = [0] * articles
    if not extra:
        return counts
    rng = Random(f"scale-plan:{seed}")
    edited = rng.sample(range(articles), max(1, min(articles, round(articles * EDITED_SHARE))))
    weights = [min(rng.paretovariate(1.2), 200.0) for _ in edited]
    if extra > len(edited) * MAX_EVENTS:
        raise ValueError("more versions than the edited articles can hold")
    for at, n in Counter(rng.choices(range(len(edited)), weights, k=extra)).items():
        counts[edited[at]] = n
    # Cap the longest histories and hand their surplus to others, so the total stays exact.
    surplus = sum(max(0, n - MAX_EVENTS) for n in counts)
    counts = [min(n, MAX_EVENTS) for n in counts]
    while surplus:
        i = edited[rng.randrange(len(edited))]
        if counts[i] < MAX_EVENTS:
            counts[i] += 1
            surplus -= 1
    return counts


@dataclass
class Chunk:
    """One chunk's items: the first versions, then one round after another of changes (an
    article at most once per round, as one crawl run sees it once)."""

    number: int
    first: list
    rounds: list[list]

    @property
    def versions(self) -> int:
        return len(self.first) + sum(len(r) for r in self.rounds)


def created_at(index: int, articles: int) -> datetime:
    """Publication times spread evenly over SPAN_DAYS before the replica's clock, ascending with aid."""
    end = parse_iso(EPOCH_NOW)
    return end - timedelta(days=SPAN_DAYS) + timedelta(minutes=index * SPAN_DAYS * 1440 / articles)


def make_chunk(number: int, articles: int, events: list[int], seed: int, compressor: Compressor) -> Chunk:
    rng = Random(f"scale:{seed}:{number}")
    maker = TextMaker(rng)
    state = SiteState(seed=seed, now=EPOCH_NOW)
    titles: set[str] = set()
    lo, hi = number * CHUNK, min(articles, (number + 1) * CHUNK)
    for i in range(lo, hi):
        aid = FIRST_AID + i
        state.articles[aid] = new_article(maker, aid, rng.choice(CHANNELS), created_at(i, articles), titles)
    index = build_index(state)
    clock = {}
    first = []
    for i in range(lo, hi):
        article = state.articles[FIRST_AID + i]
        clock[article.aid] = parse_iso(article.published_at) + timedelta(minutes=rng.randint(5, 180))
        first.append(article_item(state, index, article, clock[article.aid], compressor))
    rounds: list[list] = []
    for r in range(max(events[lo:hi], default=0)):
        items = []
        for i in range(lo, hi):
            if events[i] <= r:
                continue
            article = state.articles[FIRST_AID + i]
            at = clock[article.aid] = clock[article.aid] + timedelta(
                hours=max(1.0, rng.expovariate(1 / MEAN_GAP_HOURS)))
            if not article.live:
                restore(article, at)
            elif rng.random() < TAKEDOWN_SHARE:
                take_down(article, "404")
                items.append(ArticleGone(BASE_URL + article.path, article.aid, 404, at, "HTTP 404",
                                         raw=render_not_found(), headers={}))
                continue
            else:
                edit(article, rng.choice(EDIT_KINDS), maker, at, titles)
            items.append(article_item(state, index, article, at, compressor))
        rounds.append(items)
    return Chunk(number, first, rounds)


def article_item(state: SiteState, index, article, fetched_at: datetime, compressor: Compressor) -> CleanArticle:
    """What the crawl's reader hands the writer for the article's page as it stands."""
    url = BASE_URL + article.path
    raw = render_article(state, article, index=index)
    page = Page.of(raw, url=url, http_status=200, headers={}, fetched_at=fetched_at, encoding="gb18030",
                   compressor=compressor)
    body_html, body_text = clean_body(t.CONTENT.format(paragraphs=body_paragraphs(article)))
    return fingerprint(CleanArticle(
        aid=article.aid, url=url, page=page, channel=CHANNEL_BY_SLUG[article.channel].name,
        title=article.title, published_at=parse_iso(article.published_at), lede=article.lede,
        body_html=body_html, body_text=body_text, editor=article.editor, source=article.source,
        origin_source=article.origin_source, tags=list(article.tags)))
