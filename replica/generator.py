"""Build a fresh replica site from a seed."""
from __future__ import annotations

from datetime import datetime, timedelta
from random import Random

from .site import (CHANNELS, DATE_STYLES, EPOCH_NOW, SITE_NAME, Channel,
                   article_path, parse_iso, published_moment, to_iso)
from .specials import SPECIAL_KINDS, dress
from .state import Article, SiteState
from .text import EDITORS, EM_DASH, INNER_CREDITS, RARE_NAMES, SOURCES, TAGS, TextMaker

FIRST_AID = 10001
SPAN_DAYS = 730  # about two years of archive before the replica clock

# Shares calibrated on the brief: a quarter of articles need GB18030, 40 %
# carry an inner credit, 30 % have tags, most editors are the site itself.
RARE_SHARE = 0.25
RARE_TITLE_SHARE = 0.3  # of rare articles, those whose title is rare too
INNER_CREDIT_SHARE = 0.4
TAGGED_SHARE = 0.3
PERSON_EDITOR_SHARE = 0.2
DATE_STYLE_WEIGHTS = (70, 20, 10)  # date, datetime, cn

DEFECT_KINDS = ("no_body", "bad_bytes")


def unique_title(maker: TextMaker, taken: set[str]) -> str:
    while True:
        title = maker.title()
        if title not in taken:
            taken.add(title)
            return title


def new_article(maker: TextMaker, aid: int, channel: Channel, created: datetime,
                taken_titles: set[str]) -> Article:
    """One article as first published; `created` fixes its path for good."""
    rng = maker.rng
    style = rng.choices(DATE_STYLES, weights=DATE_STYLE_WEIGHTS)[0]
    title = unique_title(maker, taken_titles)
    lede = maker.lede()
    paragraphs = [maker.paragraph() for _ in range(rng.randint(3, 8))]
    if rng.random() < RARE_SHARE:
        at = rng.randrange(len(paragraphs))
        paragraphs[at] = maker.insert_rare(paragraphs[at])
        rare_title = f"{title}{EM_DASH}{rng.choice(RARE_NAMES)}谈发展"
        if rng.random() < RARE_TITLE_SHARE and len(rare_title) <= 40 and rare_title not in taken_titles:
            taken_titles.discard(title)
            taken_titles.add(rare_title)
            title = rare_title
    if rng.random() < INNER_CREDIT_SHARE:
        paragraphs[-1] += f"(来源:{rng.choice(INNER_CREDITS)})"
    editor = rng.choice(EDITORS) if rng.random() < PERSON_EDITOR_SHARE else SITE_NAME
    tags = rng.sample(TAGS, rng.randint(1, 3)) if rng.random() < TAGGED_SHARE else []
    return Article(
        aid=aid, channel=channel.slug, path=article_path(channel, created, aid),
        title=title, lede=lede, paragraphs=paragraphs,
        published_at=to_iso(published_moment(created, style)), date_style=style,
        editor=editor, source=rng.choice(SOURCES), tags=tags, modified_at=to_iso(created),
    )


def _check_kinds(counts: dict[str, int], known: tuple[str, ...], what: str) -> None:
    unknown = set(counts) - set(known)
    if unknown:
        raise ValueError(f"unknown {what} kinds {sorted(unknown)}; known: {known}")


def generate(n_articles: int, seed: int = 1, defects: dict[str, int] | None = None,
             specials: dict[str, int] | None = None) -> SiteState:
    """A site of `n_articles` articles; the same arguments give the same site.

    `specials` ({"hostile": k, "huge": k, "nested": k}) marks k articles per
    kind as special pages (specials.py); they never overlap the defective ones.
    """
    defects, specials = dict(defects or {}), dict(specials or {})
    _check_kinds(defects, DEFECT_KINDS, "defect")
    _check_kinds(specials, SPECIAL_KINDS, "special")
    if sum(defects.values()) + sum(specials.values()) > n_articles:
        raise ValueError("more defective and special articles requested than articles")

    rng = Random(f"generate:{seed}")
    maker = TextMaker(rng)
    now = parse_iso(EPOCH_NOW)
    start = now - timedelta(days=SPAN_DAYS)
    # Sorted offsets make publication time ascend with aid, as on the portal.
    offsets = sorted(rng.randrange(SPAN_DAYS * 24 * 60) for _ in range(n_articles))
    state = SiteState(seed=seed, now=EPOCH_NOW)
    titles: set[str] = set()
    for i, offset in enumerate(offsets):
        aid = FIRST_AID + i
        created = start + timedelta(minutes=offset)
        state.articles[aid] = new_article(maker, aid, rng.choice(CHANNELS), created, titles)

    # Drawn after the text so that adding defects leaves every article's text alone.
    pool = rng.sample(sorted(state.articles), sum(defects.values()))
    for kind in DEFECT_KINDS:
        for _ in range(defects.get(kind, 0)):
            state.articles[pool.pop()].defect = kind

    # Drawn last, and dressed with their own RNG, so that asking for specials
    # changes nothing else; without specials the RNG is not touched again.
    if sum(specials.values()):
        taken = {aid for aid, a in state.articles.items() if a.defect}
        chosen = rng.sample(sorted(set(state.articles) - taken), sum(specials.values()))
        kinds = [kind for kind in SPECIAL_KINDS for _ in range(specials.get(kind, 0))]
        ordinals = {kind: 0 for kind in SPECIAL_KINDS}
        for aid, kind in sorted(zip(chosen, kinds)):
            dress(state.articles[aid], kind, TextMaker(Random(f"special:{seed}:{aid}")),
                  ordinals[kind], titles)
            ordinals[kind] += 1
    return state
