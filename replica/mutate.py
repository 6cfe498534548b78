"""One round of the changes the real portal goes through between two crawls.

A round advances the replica clock by one day, then edits, takes down,
republishes and publishes articles. Everything is drawn from one RNG seeded
with (seed, round), so replaying a round on the same state is exact.

The report uses string keys for aids in its mappings ({"10042": "typo"}) so
that it is the same object before and after a JSON round trip; aids in lists
and as values stay ints.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from random import Random

from .generator import new_article, unique_title
from .site import CHANNELS, article_path, parse_iso, published_moment, to_iso
from .state import INNER_CREDIT, Article, SiteState
from .text import EM_DASH, TextMaker

EDIT_KINDS = ("title", "paragraph_added", "typo", "date")
REDIRECT_SHARE = 0.25  # of takedowns; the rest answer 404
CREATION_SPACING = timedelta(minutes=5)  # between articles published in one round
DATE_SHIFTS = (-4, -3, -2, -1, 1, 2, 3, 4)  # days a date correction moves
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _edit_title(article: Article, maker: TextMaker, now: datetime, titles: set[str]) -> None:
    article.title = unique_title(maker, titles)


def _edit_paragraph_added(article: Article, maker: TextMaker, now: datetime, titles: set[str]) -> None:
    # The inner credit must stay at the very end of the body.
    at = len(article.paragraphs) - 1 if article.origin_source else len(article.paragraphs)
    article.paragraphs.insert(at, maker.paragraph())


def _edit_typo(article: Article, maker: TextMaker, now: datetime, titles: set[str]) -> None:
    n = maker.rng.randrange(len(article.paragraphs))
    text = article.paragraphs[n]
    credit = INNER_CREDIT.search(text) if n == len(article.paragraphs) - 1 else None
    end = credit.start() if credit else len(text)  # never touch the credit
    spots = [m.start() for m in _CJK.finditer(text, 0, end)]
    at = maker.rng.choice(spots)
    article.paragraphs[n] = text[:at] + maker.typo_char(text[at]) + text[at + 1:]


def _edit_date(article: Article, maker: TextMaker, now: datetime, titles: set[str]) -> None:
    days = maker.rng.choice(DATE_SHIFTS)
    published = parse_iso(article.published_at)
    moved = published + timedelta(days=days)
    if moved > now:
        moved = published - timedelta(days=abs(days))
    article.published_at = to_iso(moved)


EDITORS = {"title": _edit_title, "paragraph_added": _edit_paragraph_added,
           "typo": _edit_typo, "date": _edit_date}


def edit(article: Article, kind: str, maker: TextMaker, now: datetime, titles: set[str]) -> None:
    """One edit of `kind` (EDIT_KINDS), dated `now` in the page's Last-Modified.

    Shared by the rounds and live mode (live.py), so an edit is the same
    change whichever drives it.
    """
    EDITORS[kind](article, maker, now, titles)
    article.modified_at = to_iso(now)


def take_down(article: Article, how: str) -> None:
    """The page stops answering: 404, or ("redirect") a redirect to its channel."""
    article.status = "taken_down"
    article.takedown = how


def restore(article: Article, now: datetime) -> None:
    """A taken-down page answers again, unchanged; its Last-Modified says when it came back."""
    article.status = "live"
    article.takedown = None
    article.modified_at = to_iso(now)


def _sample(rng: Random, pool: list[int], k: int, what: str) -> list[int]:
    if k > len(pool):
        raise ValueError(f"cannot pick {k} articles for {what}: only {len(pool)} eligible")
    return rng.sample(pool, k)


def _republication(maker: TextMaker, original: Article, aid: int, created: datetime) -> Article:
    """The same story under a new aid in another channel, slightly dressed up."""
    rng = maker.rng
    channel = rng.choice([c for c in CHANNELS if c.slug != original.channel])
    copy = replace(
        original, aid=aid, channel=channel.slug, path=article_path(channel, created, aid),
        paragraphs=list(original.paragraphs), tags=list(original.tags),
        published_at=to_iso(published_moment(created, original.date_style)),
        modified_at=to_iso(created), duplicate_of=original.aid,
    )
    variant = rng.choice(("reprint_suffix", "source_suffix", "extra_line"))
    if variant == "reprint_suffix":
        copy.title += "(转载)"
    elif variant == "source_suffix":
        copy.title += f"{EM_DASH}{original.source}"
    else:
        line = f"本文转载自{original.source}。"
        # Appending after an inner credit would bury it; prepend instead.
        if original.origin_source or rng.random() < 0.5:
            copy.paragraphs.insert(0, line)
        else:
            copy.paragraphs.append(line)
    return copy


def _apply_edits(state: SiteState, maker: TextMaker, aids: list[int], now: datetime) -> dict[int, str]:
    kinds = [EDIT_KINDS[i % len(EDIT_KINDS)] for i in range(len(aids))]
    maker.rng.shuffle(kinds)  # balanced: every kind shows up in any round of four or more
    titles = {a.title for a in state.articles.values()}
    for aid, kind in zip(aids, kinds):
        edit(state.articles[aid], kind, maker, now, titles)
    return dict(zip(aids, kinds))


def _take_down(state: SiteState, aids: list[int]) -> dict[int, str]:
    redirects = round(len(aids) * REDIRECT_SHARE)
    for i, aid in enumerate(aids):  # `aids` is a random sample, so already shuffled
        take_down(state.articles[aid], "redirect" if i < redirects else "404")
    return {aid: state.articles[aid].takedown for aid in aids}


def _publish(state: SiteState, maker: TextMaker, originals: list[int], new: int,
             now: datetime) -> tuple[dict[int, int], list[int]]:
    """Republications and new articles, interleaved in one stream of fresh aids."""
    creations: list[int | None] = list(originals) + [None] * new
    maker.rng.shuffle(creations)
    first_aid = state.next_aid()
    titles = {a.title for a in state.articles.values()}
    republished, fresh = {}, []
    for i, original in enumerate(creations):
        aid = first_aid + i
        created = now - CREATION_SPACING * (len(creations) - i)
        if original is None:
            state.articles[aid] = new_article(maker, aid, maker.rng.choice(CHANNELS), created, titles)
            fresh.append(aid)
        else:
            state.articles[aid] = _republication(maker, state.articles[original], aid, created)
            republished[aid] = original
    return republished, fresh


def mutate(state: SiteState, seed: int, edits: int = 50, takedowns: int = 20,
           republish: int = 10, new: int = 30) -> dict:
    """Apply one round to `state` in place and return its report.

    Defective and special articles are never touched. Raises ValueError,
    leaving the state unchanged, when there are not enough eligible articles.
    """
    round_no = state.round + 1
    maker = TextMaker(Random(f"mutate:{seed}:{round_no}"))

    # Choose everything first, so a shortfall fails before anything changes.
    eligible = sorted(a.aid for a in state.articles.values()
                      if a.live and a.defect is None and a.special is None)
    originals = [aid for aid in eligible if state.articles[aid].duplicate_of is None]
    to_edit = _sample(maker.rng, originals, edits, "edits")
    to_take = _sample(maker.rng, sorted(set(eligible) - set(to_edit)), takedowns, "takedowns")
    to_copy = _sample(maker.rng, sorted(set(originals) - set(to_edit) - set(to_take)),
                      republish, "republish")

    state.round = round_no
    now = parse_iso(state.now) + timedelta(days=1)
    state.now = to_iso(now)
    edited = _apply_edits(state, maker, to_edit, now)
    taken_down = _take_down(state, to_take)
    republished, fresh = _publish(state, maker, to_copy, new, now)
    return {
        "round": round_no,
        "now": state.now,
        "edited": {str(aid): edited[aid] for aid in sorted(edited)},
        "taken_down": {str(aid): taken_down[aid] for aid in sorted(taken_down)},
        "republished": {str(aid): republished[aid] for aid in sorted(republished)},
        "new": fresh,
    }


def summary(report: dict) -> str:
    redirects = sum(1 for how in report["taken_down"].values() if how == "redirect")
    return (f"round {report['round']} ({report['now']}): {len(report['edited'])} edited, "
            f"{len(report['taken_down'])} taken down ({redirects} redirect), "
            f"{len(report['republished'])} republished, {len(report['new'])} new")
