"""Reading the archive: an article by any of its names, its versions, and what the command line,
the pages and the API list. Every function takes the caller's session."""
from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, any_, bindparam, case, column, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from pipeline.archive.diff import DIFFED_FIELDS, body_change, field_changes
from pipeline.archive.models import Article, ArticleVersion, CrawlRun, Quarantine, RawPage
from pipeline.archive import search
from pipeline.archive.search import count_is_bounded, index_count, plan, probe_pays, search_condition
from pipeline.reading.profile import Profile

STATUSES = ("live", "taken_down", "edited", "duplicate")
CHANGE_KINDS = ("edited", "taken_down", "restored")
MAX_PAGE = 100_000
DEFAULT_PER_PAGE = 50
# The archive's row ids are INTEGER columns and aids BIGINT ones. PostgreSQL refuses a larger number in a
# comparison with one (SQLite any beyond 64 bits), so such an id is not looked up: nothing can have it.
MAX_ROW_ID = 2**31 - 1
MAX_AID = 2**63 - 1
# Versions of an article's timeline shown at once. An article can have hundreds (bench/scale makes
# one of 401): showing them all made its page and its API answer cost in proportion to its history.
TIMELINE_PAGE = 50


class NotFound(LookupError):
    pass


@dataclass
class ArticleFilter:
    q: str | None = None
    channel: str | None = None
    published_from: date | None = None
    published_to: date | None = None
    status: str | None = None  # one of STATUSES

    def is_empty(self) -> bool:
        return not (self.q or self.channel or self.published_from or self.published_to or self.status)



@dataclass
class ArticleRow:
    aid: int
    url: str
    title: str
    channel: str
    published_at: datetime
    status: str
    current_version: int
    last_changed_at: datetime
    duplicate_of: int | None
    edits: int = 0
    restorations: int = 0
    excerpt: str | None = None  # lede and body of the current version, for a search snippet


@dataclass
class Paged:
    total: int
    page: int
    per_page: int
    items: list
    # A search of single characters alone: the matches among the newest search.SCAN_WINDOW articles only.
    bounded: bool = False
    # The total was counted only so far (search.COUNT_LIMIT): more than `total` match.
    more: bool = False
    # The query held nothing to search for (punctuation and blanks alone separate pieces): nothing
    # was searched, the list is what it is without one.
    ignored_query: bool = False

    @property
    def pages(self) -> int:
        """The pages known to hold rows; with `more`, at least one beyond a full current page."""
        known = max(1, -(-self.total // self.per_page))
        if self.more and len(self.items) == self.per_page:
            return max(known, self.page + 1)
        return known


def _offset(page: int, per_page: int) -> int:
    return (min(max(page, 1), MAX_PAGE) - 1) * per_page


# Dates far outside any archive are clamped, so that converting them between zones cannot overflow.
EARLIEST_DAY, LATEST_DAY = date(1000, 1, 1), date(9000, 12, 31)


def portal_day_start(day: date, tz: ZoneInfo) -> datetime:
    day = min(max(day, EARLIEST_DAY), LATEST_DAY)
    return datetime.combine(day, time(), tz).astimezone(timezone.utc)


def list_articles(session: Session, flt: ArticleFilter, tz: ZoneInfo, page: int = 1,
                  per_page: int = DEFAULT_PER_PAGE, counts: ArchiveCounts | None = None) -> Paged:
    """Articles newest first by publication, filtered; with a search, only current versions match.
    `counts`: the archive's cached counts, for the total of the whole list or of one channel."""
    current = aliased(ArticleVersion)
    conditions = []
    if flt.channel:
        conditions.append(Article.channel == flt.channel)
    if flt.published_from:
        conditions.append(Article.published_at >= portal_day_start(flt.published_from, tz))
    if flt.published_to:
        conditions.append(Article.published_at < portal_day_start(flt.published_to + timedelta(days=1), tz))
    if flt.status in ("live", "taken_down"):
        conditions.append(Article.status == flt.status)
    elif flt.status == "duplicate":
        conditions.append(Article.duplicate_of_id.is_not(None))
    elif flt.status == "edited":
        # Kept by the database (revision 0010), with a partial index of the articles that have any:
        # a literal 0, so that the planner sees the index's own condition (a prepared statement's
        # generic plan on PostgreSQL cannot use a partial index through a parameter).
        conditions.append(Article.edits > literal_column("0"))
    searched = search_condition(current, flt.q, session.get_bind().dialect.name, filtered=bool(conditions))
    open_version = and_(current.article_id == Article.id, current.valid_to.is_(None))

    total, more, decided = None, False, False
    wanted = plan(flt.q)
    if (searched is not None and session.get_bind().dialect.name == "sqlite" and wanted.indexed
            and not wanted.scanned and (conditions or search.needs_positions(flt.q))):
        # With a filter, or a phrase or several pieces (FTS5 counts those by comparing positions in
        # every version holding all their bigrams: 45-110 ms for a common phrase at 500,000 articles):
        # a query of few hits is read once and the page found from them; more, and the newest
        # articles are tested against the tail of the hits (_walk_newest).
        few = search.few_hits(session, flt.q)
        if few is not None:
            # Found from the hits (each version by id, then its article by id), never by testing every
            # (filtered) article against them: 25 ms for a word of no hits at 60,000 in a channel.
            searched, decided = Article.id.in_(_articles_of(few)), True
            total = None if conditions else len(few)  # the index holds one open version an article
        elif (walked := _walk_newest(session, flt, current, open_version, conditions, page, per_page,
                                     many=not conditions and search.FEW_HITS >= search.COUNT_LIMIT)) is not None:
            (in_walk, total, more), decided = walked, True
            if total is None:  # the walk holds the page, not the total: the hits counted whole
                total = _count(session, current, open_version, searched, conditions)
            searched = in_walk
    if not decided and searched is not None and not conditions:
        total = index_count(session, flt.q)
    if not decided and total is not None and probe_pays(session, flt.q, total, _offset(page, per_page) + per_page):
        searched = search_condition(current, flt.q, session.get_bind().dialect.name, probe=True)
    hits = search.index_hits(session, flt.q, search.COUNT_LIMIT) if searched is not None and not decided else None
    page_ids = None  # the page's versions, when found before the page is read
    if hits is not None and hits.more and not conditions:  # the page from the index table, in the list's order
        total, more = hits.total, True
        page_ids = search.newest_hits(session, flt.q, hits.expected(), _offset(page, per_page), per_page)
    elif hits is not None and hits.more:  # with a filter: walk the newest filtered articles, probing each
        searched = search_condition(current, flt.q, session.get_bind().dialect.name, probe=True)
        if (found := _from_candidates(session, flt, current, open_version, conditions, hits, page, per_page)):
            page_ids, counted = found
            more, total = counted > search.COUNT_LIMIT, min(counted, search.COUNT_LIMIT)
    elif hits is not None:  # few enough to be read from the index: the page sorts just those
        searched = current.id.in_(hits.ids)
        if not conditions:
            total = len(hits.ids)
    if total is None and searched is not None and count_is_bounded(session):
        # In the page's order: the planner then walks the newest articles and probes each one, as for
        # the page, and stops at the limit, where a plain count would hash every indexed version first.
        hits = (select(Article.id).join(current, open_version).where(searched, *conditions)
                .order_by(Article.published_at.desc(), Article.id.desc())
                .limit(search.COUNT_LIMIT + 1).subquery())
        total = session.scalar(select(func.count()).select_from(hits)) or 0
        more, total = total > search.COUNT_LIMIT, min(total, search.COUNT_LIMIT)
    if total is None and searched is None and counts is not None and len(conditions) == bool(flt.channel):
        # Counting every article (or a channel's) took 32 ms at 130,000 on PostgreSQL, on every page.
        per_channel = dict(counts.channels(session))
        total = per_channel.get(flt.channel, 0) if flt.channel else sum(per_channel.values())
    if total is None:
        total = _count(session, current, open_version, searched, conditions)

    # Ordered by (published_at, id): the published_at index holds exactly that order.
    query = (select(Article.id, Article.aid, Article.canonical_url, current.id.label("version_id"), current.title,
                    Article.channel, Article.published_at, Article.status, Article.current_version,
                    Article.last_changed_at, Article.duplicate_of_id)
             .join(current, open_version))
    newest_first = (Article.published_at.desc(), Article.id.desc())
    if page_ids is not None:
        query = query.where(current.id.in_(page_ids))
    elif searched is not None:
        query = query.where(searched, *conditions).limit(per_page).offset(_offset(page, per_page))
    else:
        # Without a search the page is cut from the articles alone (each has one open version), and
        # only its rows are joined to their versions: PostgreSQL joined all 20,000 rows before page
        # 1,000 (80 ms at 130,000 articles; SQLite 18 ms at 500,000).
        query = query.where(Article.id.in_(select(Article.id).where(*conditions).order_by(*newest_first)
                                           .limit(per_page).offset(_offset(page, per_page)).scalar_subquery()))
    rows = session.execute(query.order_by(*newest_first)).all()

    ids = [r.id for r in rows]
    originals = _aids(session, {r.duplicate_of_id for r in rows if r.duplicate_of_id})
    counts = _change_counts(session, ids)
    # The text for search snippets, read for this page's rows only (never carried through the sort).
    excerpts = {}
    if searched is not None and rows:
        excerpts = {vid: "\n".join(filter(None, (lede, body))) for vid, lede, body in session.execute(
            select(ArticleVersion.id, ArticleVersion.lede, ArticleVersion.body_text)
            .where(ArticleVersion.id.in_([r.version_id for r in rows])))}
    items = []
    for r in rows:
        items.append(ArticleRow(
            aid=r.aid, url=r.canonical_url, title=r.title, channel=r.channel,
            published_at=r.published_at, status=r.status, current_version=r.current_version,
            last_changed_at=r.last_changed_at, duplicate_of=originals.get(r.duplicate_of_id),
            edits=counts[(r.id, "edited")], restorations=counts[(r.id, "restored")],
            excerpt=excerpts.get(r.version_id) if searched is not None else None,
        ))
    return Paged(total, page, per_page, items, bounded=wanted.bounded, more=more,
                 ignored_query=bool(flt.q) and not wanted.pieces)


def _aids(session: Session, ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(session.execute(select(Article.id, Article.aid).where(Article.id.in_(ids))).all())


def _count(session: Session, current, open_version, searched: ColumnElement | None, conditions: list) -> int:
    counted = select(func.count()).select_from(Article)
    if searched is not None:
        counted = counted.join(current, open_version).where(searched)
    return session.scalar(counted.where(*conditions)) or 0


def _from_candidates(session: Session, flt: ArticleFilter, current, open_version, conditions: list,
                     hits: search.IndexHits, page: int, per_page: int) -> tuple[list[int], int] | None:
    """PostgreSQL, a query of one piece of more hits than the count limit, with a filter: (the
    page's versions, how many match up to COUNT_LIMIT + 1) from the versions holding all
    its terms (search.candidates), sorted newest first and probed in that order until the page is
    full (a query of one term has no candidate to probe: they are its hits); None (walk the newest
    articles) when those are more than the articles the walk would probe.

    A phrase of common bigrams can be rare: 深圳车 in 2,102 of 500,000 articles, whose page probed
    the newest 11,900 (74 ms, bench/scale), where its 2,102 candidates sort in 10. Either costs
    about the same per row (a probe reads a tsvector; a candidate is looked up twice to sort it), so
    the candidates are read only up to the walk's expected length: the page's rows over the
    expected share of articles that match (IndexHits.expected). Finding that there are more of
    them costs their whole bitmap (17 ms for 席科学家高峰's 26,618), so a short walk goes ahead
    without asking (search.CANDIDATES_FROM_WALK)."""
    expected = hits.expected()
    if not expected:
        return None
    offset = _offset(page, per_page)
    walk = int((offset + per_page) * _articles_about(session) / expected)
    if walk < search.CANDIDATES_FROM_WALK:
        return None
    ids = search.candidates(session, flt.q, limit=walk)
    if ids is None:
        return None
    newest = (select(current.id.label("version_id"), Article.published_at, Article.id.label("article_id"))
              .select_from(Article).join(current, open_version)
              .where(current.id == any_(bindparam("candidates", ids, type_=ARRAY(Integer))), *conditions)
              .order_by(Article.published_at.desc(), Article.id.desc()).offset(0).subquery())
    # OFFSET 0 above: sorted first, then probed in order (the probe a filter on the sorted rows)
    matching = select(newest.c.version_id).order_by(newest.c.published_at.desc(), newest.c.article_id.desc())
    if not search.is_one_term(flt.q):
        matching = matching.where(search.probe_condition(newest.c.version_id, flt.q))
    page_ids = list(session.scalars(matching.limit(per_page).offset(offset)))
    counted = session.scalar(select(func.count()).select_from(matching.limit(search.COUNT_LIMIT + 1).subquery()))
    return page_ids, counted


def _articles_about(session: Session) -> float:
    """PostgreSQL: about how many articles the archive holds (ids have gaps: a batch that loses a
    race for an article spends its id)."""
    return search.rows_about(session, "articles")


def _articles_of(version_ids: list[int]):
    """SQLite: the articles of these versions, as a subquery over one JSON parameter (thousands of
    ids bound one by one cost more to compile and bind than SQLite takes to find them)."""
    return (select(ArticleVersion.article_id)
            .where(ArticleVersion.id.in_(select(column("value")).select_from(func.json_each(json.dumps(version_ids))))))


def _walk_newest(session: Session, flt: ArticleFilter, current, open_version, conditions: list, page: int,
                 per_page: int, many: bool) -> tuple | None:
    """SQLite, a search with a filter (a channel, dates, a status) or a phrase, of more hits than
    search.FEW_HITS: (the condition the page is read with, its total, whether more match), from the
    newest (filtered) articles, a walk of search.FILTERED_WALKS and then a longer one. When they do
    not settle the total it is None (the caller counts the hits whole), and when they do not hold
    the page either, the whole result is None.

    Counting them exactly reads every hit (70 ms for 光伏 and a channel at 275,000 articles; 45-110
    ms for a common phrase at 500,000, growing with the archive). The walk's open versions are
    tested against the hits from the walk's lowest version id up, which FTS5 reads from the tail of
    each doclist: more than COUNT_LIMIT among them says "more than", as on PostgreSQL; a walk that
    saw every (filtered) article counts exactly. The page's rows come from the walk too: they are
    its first hits, and no article outside it has a version id that low and comes before them.

    `many`: the whole search is known to match more than COUNT_LIMIT articles (an unfiltered phrase
    of more than FEW_HITS hits), so the total is "more than" already and the walk only has to
    find the page. A phrase in a few percent of the articles (人民网, 22,115 hits at 500,000) then
    costs two short walks: read from its hits, the page looked up every hit's article to sort them
    (70 ms), and counting the hits of a phrase of five bigrams takes 18."""
    needed = _offset(page, per_page) + per_page
    if needed > search.COUNT_LIMIT:
        return None
    for walk in search.FILTERED_WALKS:
        newest = (select(Article.id.label("article_id"), current.id.label("version_id"))
                  .join(current, open_version).where(*conditions)
                  .order_by(Article.published_at.desc(), Article.id.desc()).limit(walk).subquery())
        since, seen = session.execute(select(func.min(newest.c.version_id), func.count()).select_from(newest)).one()
        if not seen:
            return None
        found = session.scalar(select(func.count()).select_from(
            select(newest.c.article_id).where(newest.c.version_id.in_(search.hits_since(flt.q, since)))
            .limit(needed if many else search.COUNT_LIMIT + 1).subquery())) or 0
        if found > search.COUNT_LIMIT or (many and found >= needed):
            total, more = search.COUNT_LIMIT, True
            break
        if seen < walk:
            total, more = found, False  # the walk saw every filtered article: the count is exact
            break
    else:
        if found < needed:
            return None
        total, more = None, False  # the page is in the walk, the total is not: the caller counts the hits
    # `+ 0`: tested against the hits, not looked up by them in uq_article_versions_open (search_condition).
    return (current.id + 0).in_(search.hits_since(flt.q, since)), total, more


def _change_counts(session: Session, article_ids: list[int]) -> Counter:
    counts: Counter = Counter()
    if article_ids:
        for article_id, change, n in session.execute(
                select(ArticleVersion.article_id, ArticleVersion.change, func.count())
                .where(ArticleVersion.article_id.in_(article_ids))
                .group_by(ArticleVersion.article_id, ArticleVersion.change)):
            counts[(article_id, change)] = n
    return counts


def archived_aids(session: Session) -> array:
    """Every aid the archive holds, sorted (8 bytes an article): read once at a crawl's start, so
    which of a list page's aids are known is then answered in memory (spiders/walk.py, SortedAids)
    instead of by a query per page. Articles archived after the read are the crawl's own, which the
    spider knows it requested; a crawl that shares the archive with others while it runs (the
    distributed workers) asks the database each time instead."""
    # Streamed in chunks (an ORM select would first hold every row: +76 MB at 500,000
    # articles, where this reads them in 0.24 s with +8 MB; bench/scale's archive).
    aid = Article.__table__.c.aid
    return array("q", session.connection().execute(
        select(aid).order_by(aid).execution_options(yield_per=10_000)).scalars())


def channels(session: Session) -> list[tuple[str, int]]:
    return [tuple(r) for r in session.execute(
        select(Article.channel, func.count()).group_by(Article.channel).order_by(Article.channel))]


class ArchiveCounts:
    """Counts over the whole archive that pages show on every request (the channels with their
    articles, the change feed's totals, the runs page's totals), counted again only when the
    archive has changed since: a new article, version or quarantined page (a status, a channel,
    a duplicate link change only with a new version or article). Counting reads every article or
    every change (30-60 ms at 2,000,000 versions); the check is three index lookups a request."""

    def __init__(self):
        self._seen: tuple | None = None
        self._counts: dict = {}

    def _fresh(self, session: Session) -> dict:
        seen = tuple(session.scalar(select(func.max(column))) for column in (Article.id, ArticleVersion.id,
                                                                          Quarantine.id))
        if seen != self._seen:
            # Replaced whole, never changed in place: a request on another thread reads one or the other.
            self._counts, self._seen = {}, seen
        return self._counts

    def _get(self, session: Session, key, count):
        counts = self._fresh(session)
        if key not in counts:
            counts[key] = count()
        return counts[key]

    def channels(self, session: Session) -> list[tuple[str, int]]:
        return self._get(session, "channels", lambda: channels(session))

    def changes(self, session: Session, kinds: tuple[str, ...]) -> int:
        kinds = _change_kinds(kinds)
        return self._get(session, ("changes", kinds), lambda: change_count(session, kinds))

    def totals(self, session: Session) -> dict[str, int]:
        return self._get(session, "totals", lambda: archive_totals(session))


# --- one article ---------------------------------------------------------------

@dataclass
class ArticleRef:
    aid: int
    title: str
    url: str
    status: str


@dataclass
class TimelineEntry:
    """One version as the timeline shows it: no body, what changed computed (see `timeline`)."""

    version: int
    change: str
    valid_from: datetime
    valid_to: datetime | None
    fetched_at: datetime
    crawl_run_id: int
    raw_page_id: int
    content_hash: str
    title: str
    changed: list[str]


@dataclass
class TimelinePage:
    """A run of consecutive versions, oldest first: the newest `limit` of those before `before`
    (before None: of them all). The article has `total` versions; pages are walked newest first."""

    entries: list[TimelineEntry]
    total: int
    limit: int
    before: int | None

    @property
    def oldest(self) -> int:
        return self.entries[0].version

    @property
    def newest(self) -> int:
        return self.entries[-1].version

    @property
    def older(self) -> int | None:
        """`before` of the next older page; None when this one starts at version 1."""
        return self.oldest if self.oldest > 1 else None

    @property
    def newer(self) -> int | None:
        """`before` of the next newer page; None when this one ends at the current version. The
        newest page's is total + 1: the same versions as asking without `before`, until the next."""
        return min(self.newest + 1 + self.limit, self.total + 1) if self.newest < self.total else None


@dataclass
class ArticleView:
    article: Article
    timeline: TimelinePage
    current: ArticleVersion
    duplicate_of: ArticleRef | None
    duplicates: list[ArticleRef] = field(default_factory=list)


def article_by_aid(session: Session, aid: int) -> Article:
    article = session.scalars(select(Article).where(Article.aid == aid)).one_or_none() \
        if 1 <= aid <= MAX_AID else None
    if article is None:
        raise NotFound(f"article {aid} is not in the archive")
    return article


def article_aid(profile: Profile, ref: str, *, base_url: str | None = None,
                session: Session | None = None) -> int:
    """The aid ARTICLE names: an aid, or any URL form of an article (desktop, mobile, tracking parameters).

    A URL must be on the portal: on the configured base URL's host, or on the
    host of an archived article (looked up when a session is given). The same
    path on another site is another site's article.
    """
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)
    try:
        aid = profile.aid_of(ref)
        host = urlsplit(ref).hostname
    except ValueError:  # urlsplit refuses some malformed URLs ("http://[::1")
        aid = host = None
    if aid is None:
        raise NotFound(f"{ref!r} is neither an aid nor an article URL of {profile.name}")
    if host:
        portal = urlsplit(base_url).hostname if base_url else None
        on_portal = portal is not None and _site_host(host) == _site_host(portal)
        if not on_portal and not (session is not None and _archived_host(session, _site_host(host))):
            raise NotFound(f"{ref!r} is not a URL of {profile.name}: its host {host} is neither the "
                           f"portal's ({portal or 'no base URL configured'}) nor that of any archived article")
    return aid


def _site_host(host: str) -> str:
    # The portal answers on its bare and its www. name alike.
    return host.lower().removeprefix("www.")


def _archived_host(session: Session, host: str) -> bool:
    """Whether any archived article's canonical URL is on this host (any scheme or port)."""
    escaped = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    patterns = [f"{scheme}://{www}{escaped}{end}" for scheme in ("http", "https")
                for www in ("", "www.") for end in ("/%", ":%")]
    found = select(Article.id).where(or_(*(Article.canonical_url.like(p, escape="\\") for p in patterns)))
    return session.scalars(found.limit(1)).first() is not None


def find_article(session: Session, profile: Profile, ref: str, *, base_url: str | None = None) -> Article:
    """ARTICLE as an aid or as any URL form of it (desktop, mobile, tracking parameters); see article_aid."""
    return article_by_aid(session, article_aid(profile, ref, base_url=base_url, session=session))


def versions_of(session: Session, article: Article) -> list[ArticleVersion]:
    return list(session.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article.id)
                                .order_by(ArticleVersion.version)))


def version_of(session: Session, article: Article, number: int) -> ArticleVersion:
    version = session.scalars(select(ArticleVersion).where(
        ArticleVersion.article_id == article.id, ArticleVersion.version == number)).one_or_none() \
        if 1 <= number <= MAX_ROW_ID else None
    if version is None:
        raise no_such_version(article, number)
    return version


def timeline(session: Session, article: Article, before: int | None = None,
             limit: int = TIMELINE_PAGE) -> TimelinePage:
    """The newest `limit` versions before version `before` (None: of them all), oldest first, each
    with the fields that changed from the one before it, the oldest shown included.

    An article can have hundreds of versions: only the page's rows are read (and the short fields
    of the one before them), their bodies are compared by the database and never loaded, so the
    cost is bounded by `limit`, whatever the length of the history."""
    if limit < 1:
        raise ValueError(f"a timeline page holds at least one version, not {limit}")
    if before is not None and not 2 <= before <= article.current_version + 1:
        raise NotFound(f"article {article.aid} has no versions before {before} "
                       f"(it has 1..{article.current_version})")
    newest = article.current_version if before is None else before - 1
    oldest = max(1, newest - limit + 1)
    v, prior = ArticleVersion, aliased(ArticleVersion)
    shown = (v.version, v.change, v.valid_from, v.valid_to, v.fetched_at, v.crawl_run_id, v.raw_page_id,
             v.content_hash, v.title)
    # The predecessor joined by (article_id, version), its bodies compared where they lie; a window
    # (lag) would copy every body into a temporary table first: 90-150 ms on SQLite for 401 versions.
    # Each comparison only when the one before cannot tell: an equal content hash means equal bodies,
    # a changed text needs no look at the markup (on PostgreSQL every body compared is detoasted).
    # The version before the oldest shown is read for its short fields only (no predecessor joined),
    # so the oldest shown says what changed even though the one before it is on the next page.
    body = case((prior.id.is_(None) | (prior.content_hash == v.content_hash), 0),
                (prior.body_text != v.body_text, 2), (prior.body_html != v.body_html, 1), else_=0)
    rows = session.execute(
        select(*shown, *(getattr(v, name) for name in DIFFED_FIELDS if name != "title"), body.label("body"))
        .outerjoin(prior, and_(prior.article_id == v.article_id, prior.version == v.version - 1,
                               v.version >= oldest))
        .where(v.article_id == article.id, v.version.between(max(1, oldest - 1), newest))
        .order_by(v.version)).all()
    entries, previous = [], None
    for row in rows:
        if row.version >= oldest:
            changed = [] if previous is None else (
                field_changes(previous, row) + body_change(row.body == 2, row.body == 1))
            entries.append(TimelineEntry(*row[:len(shown)], changed=changed))
        previous = row
    return TimelinePage(entries, article.current_version, limit, before)


def no_such_version(article: Article, number: int) -> NotFound:
    return NotFound(f"article {article.aid} has no version {number} (it has 1..{article.current_version})")


def _refs(session: Session, condition) -> list[ArticleRef]:
    current = aliased(ArticleVersion)
    rows = session.execute(
        select(Article.aid, current.title, Article.canonical_url, Article.status)
        .join(current, and_(current.article_id == Article.id, current.valid_to.is_(None)))
        .where(condition).order_by(Article.aid))
    return [ArticleRef(*r) for r in rows]


def article_view(session: Session, aid: int, before: int | None = None,
                 limit: int = TIMELINE_PAGE) -> ArticleView:
    """An article's page: its current version whole, a page of its timeline (see `timeline`), its
    original and duplicates."""
    article = article_by_aid(session, aid)
    entries = timeline(session, article, before, limit)
    current = version_of(session, article, article.current_version)
    original = None
    if article.duplicate_of_id is not None:
        found = _refs(session, Article.id == article.duplicate_of_id)
        original = found[0] if found else None
    duplicates = _refs(session, Article.duplicate_of_id == article.id)
    return ArticleView(article, entries, current, original, duplicates)


def version_numbers(session: Session, article: Article) -> list[tuple[int, str]]:
    """(version, change) of every version, oldest first: what a version picker lists."""
    return list(session.execute(
        select(ArticleVersion.version, ArticleVersion.change)
        .where(ArticleVersion.article_id == article.id).order_by(ArticleVersion.version)))


# --- changes ---------------------------------------------------------------------

@dataclass
class ChangeRow:
    aid: int
    version: int
    change: str
    at: datetime
    title: str
    channel: str
    run_id: int


def _not_by_change_index(session: Session, kinds: tuple[str, ...]):
    """`change IN kinds`, which SQLite must not answer from ix_article_versions_change (`change || ''`).

    Latest first, the valid_from index gives the versions in order and the newest page is read at
    once; SQLite, without statistics, would rather read every version of those kinds from the
    change index and sort them all: 0.3 ms against 183 ms at 100,000 versions (bench/scale).
    PostgreSQL has statistics, and the expression hid them: taking `change || ''` to match 0.6% of
    the versions (not 75%), it read and sorted every change for page 100 (280 ms at 520,000)."""
    if session.get_bind().dialect.name == "postgresql":
        return ArticleVersion.change.in_(kinds)
    return ArticleVersion.change.concat("").in_(kinds)


def _change_kinds(kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for k in CHANGE_KINDS if k in kinds) or CHANGE_KINDS


def change_count(session: Session, kinds: tuple[str, ...] = CHANGE_KINDS) -> int:
    """How many edits, takedowns and restorations (of `kinds`) the archive holds."""
    return session.scalar(select(func.count()).select_from(ArticleVersion)
                          .where(ArticleVersion.change.in_(_change_kinds(kinds)))) or 0


def changes(session: Session, kinds: tuple[str, ...] = CHANGE_KINDS, page: int = 1,
            per_page: int = DEFAULT_PER_PAGE, counts: ArchiveCounts | None = None) -> Paged:
    """Edits, takedowns and restorations (of `kinds`; none: all), latest first; their total from
    `counts` if given, else counted here."""
    kinds = _change_kinds(kinds)
    total = counts.changes(session, kinds) if counts is not None else change_count(session, kinds)
    rows = session.execute(
        select(Article.aid, ArticleVersion.version, ArticleVersion.change, ArticleVersion.valid_from,
               ArticleVersion.title, ArticleVersion.channel, ArticleVersion.crawl_run_id)
        .join(Article, Article.id == ArticleVersion.article_id).where(_not_by_change_index(session, kinds))
        .order_by(ArticleVersion.valid_from.desc(), ArticleVersion.id.desc())
        .limit(per_page).offset(_offset(page, per_page)))
    return Paged(total, page, per_page, [ChangeRow(*r) for r in rows])


# --- runs ------------------------------------------------------------------------

def runs(session: Session, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Paged:
    total = session.scalar(select(func.count()).select_from(CrawlRun)) or 0
    rows = list(session.scalars(select(CrawlRun).order_by(CrawlRun.started_at.desc(), CrawlRun.id.desc())
                                .limit(per_page).offset(_offset(page, per_page))))
    return Paged(total, page, per_page, rows)


def run(session: Session, run_id: int) -> CrawlRun:
    found = session.get(CrawlRun, run_id) if 1 <= run_id <= MAX_ROW_ID else None
    if found is None:
        raise NotFound(f"crawl run {run_id} is not in the archive")
    return found


def published_per_day(session: Session, tz: ZoneInfo, days: int) -> list[tuple[date, int]]:
    """Articles by publication day (portal time), for the `days` up to the latest publication."""
    latest = session.scalar(select(func.max(Article.published_at)))
    if latest is None:
        return []
    last_day = latest.astimezone(tz).date()
    first_day = last_day - timedelta(days=days - 1)
    counts = Counter(moment.astimezone(tz).date() for moment in session.scalars(
        select(Article.published_at).where(Article.published_at >= portal_day_start(first_day, tz))))
    return [(first_day + timedelta(days=i), counts[first_day + timedelta(days=i)]) for i in range(days)]


def changes_per_day(session: Session, kind: str, days: int) -> list[tuple[date, int]]:
    """Versions of one kind by the day (UTC) the archive first saw them, up to the latest such day."""
    latest = session.scalar(select(func.max(ArticleVersion.valid_from)).where(_not_by_change_index(session, (kind,))))
    if latest is None:
        return []
    last_day = latest.date()
    first_day = last_day - timedelta(days=days - 1)
    start = datetime.combine(first_day, time(), timezone.utc)
    counts = Counter(moment.date() for moment in session.scalars(
        select(ArticleVersion.valid_from).where(_not_by_change_index(session, (kind,)),
                                                ArticleVersion.valid_from >= start)))
    return [(first_day + timedelta(days=i), counts[first_day + timedelta(days=i)]) for i in range(days)]


def archive_totals(session: Session) -> dict[str, int]:
    """What the archive holds, as the runs page and the demo show it."""
    count = lambda q: session.scalar(q) or 0  # noqa: E731
    return {
        "articles": count(select(func.count()).select_from(Article)),
        "versions": count(select(func.count()).select_from(ArticleVersion)),
        # The partial index of revision 0010 (a literal 0: see list_articles).
        "edited articles": count(select(func.count()).select_from(Article).where(Article.edits > literal_column("0"))),
        "taken down": count(select(func.count()).select_from(Article).where(Article.status == "taken_down")),
        "duplicates": count(select(func.count()).select_from(Article)
                            .where(Article.duplicate_of_id.is_not(None))),
        # A page quarantined again by a later run is one page.
        "pages in quarantine": count(select(func.count(func.distinct(Quarantine.url)))),
    }


# --- quarantine and raw pages -------------------------------------------------------

def quarantine(session: Session, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Paged:
    total = session.scalar(select(func.count()).select_from(Quarantine)) or 0
    rows = list(session.scalars(select(Quarantine).order_by(Quarantine.created_at.desc(), Quarantine.id.desc())
                                .limit(per_page).offset(_offset(page, per_page))))
    return Paged(total, page, per_page, rows)


def raw_page(session: Session, raw_id: int) -> RawPage:
    found = session.get(RawPage, raw_id) if 1 <= raw_id <= MAX_ROW_ID else None
    if found is None:
        raise NotFound(f"raw page {raw_id} is not in the archive")
    return found
