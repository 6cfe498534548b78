"""Full-text search over the current version of each article: the bigram index, kept and queried.

What a query means is defined once, in pipeline.reading.bigrams (CJK runs as overlapping bigrams,
Latin words and numbers as words; every piece must occur in the title, the lede or the body).
This module keeps the index that answers it and turns a query into a condition, the same
meaning on both databases:

- SQLite: `article_bigrams`, a contentless FTS5 table (columns title, lede, body; rowid = the
  version's id) holding the pre-split token text (`fts5_text`); the tokenizer, unicode61, only
  has to split at the spaces. Contentless: the text is not stored a second time. SQLite 3.40
  has no contentless delete, so a version leaves the index by the FTS5 'delete' command with the
  same token text, recomputed from the version (versions are never edited, the split is pure).
- PostgreSQL: `article_bigrams`, a table of (version_id, part, terms tsvector, trigrams
  tsvector, and the version's published_at and article_id) with a GIN index on each tsvector
  and a B-tree on (published_at, article_id), the list's order (revision 0012); `terms` is built from the same tokens, `trigrams`
  from each run's trigrams, literally (the 'simple' configuration's meaning, no stemming, no stop
  words, with positions). A piece of two CJK characters or a word is one lexeme of `terms`, of
  three one lexeme of `trigrams`, a longer CJK piece the phrase of its trigrams (<->;
  pipeline.reading.bigrams says why, revision 0011 added them).

Only open versions (valid_to IS NULL) are indexed. The archive's write path keeps the index
(pipeline.archive.versions calls `index_versions` for every version it inserts and
`unindex_versions` for every one it closes); revision 0005 built it for the versions written
before.

A one-character CJK piece has no bigram. Next to an indexed piece it only filters that piece's
hits (LIKE); a query of single characters alone is a bounded scan: it looks at the newest
SCAN_WINDOW articles by publication (the articles' published_at index gives them in order) and
finds the matches among those, newest first; the result says it was bounded.

PostgreSQL counts a search's hits only up to COUNT_LIMIT and then says "more than" (the hits
themselves are never cut): a query of one piece reads its hits from the GIN index up to the limit
(`index_hits`); beyond it an unfiltered page is read from the index table alone, in the list's
order (`newest_hits`), a filtered one walks the newest articles and probes each (`probe`).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, cast, column, func, literal, literal_column, or_, select, table, text
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from pipeline.archive.models import Article, ArticleVersion
from pipeline.reading.bigrams import (
    fts5_query,
    fts5_text,
    is_cjk,
    piece_tokens,
    query_pieces,
    tsquery,
    tsquery_column,
    tsquery_tokens,
    tsvector_parts,
)

INDEX = "article_bigrams"
SEARCHED = ("title", "lede", "body_text")
# The newest articles a query of single characters alone looks at (see the module's docstring).
SCAN_WINDOW = 10_000
# PostgreSQL counts a search's hits up to this many and then says "more than" (see `counted`).
COUNT_LIMIT = 1_000


@dataclass
class SearchPlan:
    """What a query needs: the pieces the index answers and the single characters it cannot."""

    pieces: list[str]

    @property
    def indexed(self) -> list[str]:
        return [p for p in self.pieces if piece_tokens(p)]

    @property
    def scanned(self) -> list[str]:
        return [p for p in self.pieces if not piece_tokens(p)]

    @property
    def bounded(self) -> bool:
        """True when the index can answer nothing: a scan of the newest SCAN_WINDOW articles."""
        return bool(self.pieces) and not self.indexed


def plan(query: str | None) -> SearchPlan:
    return SearchPlan(query_pieces(query))


# --- keeping the index ---------------------------------------------------------------------

def _fields(version) -> list[str | None]:
    return [getattr(version, name) for name in SEARCHED]


def _dialect(session: Session | Connection) -> str:
    return (session.dialect if isinstance(session, Connection) else session.get_bind().dialect).name


def index_versions(session: Session | Connection, versions: list, into: str = INDEX) -> None:
    """Add open versions to the index (or to the table `into`, one like it being built: revision
    0011); each needs id, title, lede and body_text (a row or an object), and on PostgreSQL
    article_id and published_at (a version's date is its own: a date edit is a new version)."""
    if not versions:
        return
    if _dialect(session) == "sqlite":
        session.execute(text(f"INSERT INTO {into}(rowid, title, lede, body) VALUES (:id, :t, :l, :b)"),
                        [dict(id=v.id, **_RECENT.keep(v)) for v in versions])
    else:
        session.execute(text(f"INSERT INTO {into} (version_id, part, terms, trigrams, published_at, article_id) "
                             "VALUES (:id, :part, CAST(:terms AS tsvector), CAST(:trigrams AS tsvector), "
                             ":published_at, :article_id)"),
                        [dict(id=v.id, part=part, terms=terms, trigrams=trigrams, published_at=v.published_at,
                              article_id=v.article_id)
                         for v in versions for part, (terms, trigrams) in enumerate(tsvector_parts(_fields(v)))])


def unindex_versions(session: Session | Connection, versions: list) -> None:
    """Take closed versions out of the index (the same attributes as index_versions)."""
    if not versions:
        return
    if _dialect(session) == "sqlite":
        session.execute(text(f"INSERT INTO {INDEX}({INDEX}, rowid, title, lede, body) "
                             "VALUES ('delete', :id, :t, :l, :b)"),
                        [dict(id=v.id, **_RECENT.take(v)) for v in versions])
    else:
        session.execute(text(f"DELETE FROM {INDEX} WHERE version_id IN :ids")
                        .bindparams(bindparam("ids", expanding=True)), {"ids": [v.id for v in versions]})


def _fts5_row(version) -> dict:
    title, lede, body = _fields(version)
    return {"t": fts5_text(title), "l": fts5_text(lede), "b": fts5_text(body)}


# The token text of the versions indexed last, up to this many characters (about 8 MB of CJK).
RECENT_TOKEN_CHARS = 4_000_000


class _RecentTokens:
    """The FTS5 token text of the versions this process indexed last, kept until they leave.

    SQLite's contentless index takes a version out only given its token text again, and the
    split is a large part of writing a version (the README, "At scale"). A version closed soon
    after it was indexed (an article edited on consecutive rounds of a backfill or a build, a
    takedown after an edit) finds its text here; any other is split again. The key is a digest of the three
    fields, not the version's id, so an id given again after a rolled-back batch can never find
    another version's text; the split is pure, so equal fields have equal tokens.
    """

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self.rows: OrderedDict[bytes, dict] = OrderedDict()
        self.chars = 0

    @staticmethod
    def _key(version) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        for field in _fields(version):
            data = (field or "").encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return digest.digest()

    def keep(self, version) -> dict:
        """The version's token text, remembered for taking it out later."""
        row = _fts5_row(version)
        size = sum(map(len, row.values()))
        if size > self.max_chars:
            return row
        key = self._key(version)
        if key in self.rows:
            self.chars -= sum(map(len, self.rows.pop(key).values()))
        self.rows[key] = row
        self.chars += size
        while self.chars > self.max_chars:
            _, dropped = self.rows.popitem(last=False)
            self.chars -= sum(map(len, dropped.values()))
        return row

    def take(self, version) -> dict:
        """The version's token text, as it was indexed, for taking it out of the index."""
        row = self.rows.pop(self._key(version), None)
        if row is None:
            return _fts5_row(version)
        self.chars -= sum(map(len, row.values()))
        return row


_RECENT = _RecentTokens(RECENT_TOKEN_CHARS)


# --- asking it -----------------------------------------------------------------------------

def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(version, char: str) -> ColumnElement:
    """A single CJK character anywhere in the three fields (no case to fold)."""
    pattern = _like_pattern(char)
    return or_(*(getattr(version, name).like(pattern, escape="\\") for name in SEARCHED))


def search_condition(version, query: str | None, dialect: str, probe: bool = False,
                     filtered: bool = False) -> ColumnElement | None:
    """A WHERE condition on `version` (an open ArticleVersion alias), or None for no search.

    `probe`: ask the index about each version in turn (SQLite: FTS5 seeks the rowid in each
    doclist; PostgreSQL: the version's tsvector) instead of reading all its hits first; see
    `probe_pays` and `index_hits`. `filtered`: the query has
    other conditions on the articles (channel, dates, status)."""
    wanted = plan(query)
    if not wanted.pieces:
        return None
    conditions: list[ColumnElement] = []
    if dialect == "sqlite":
        match = fts5_query(wanted.indexed)
        if match and probe:
            fts = table(INDEX, column("rowid"))
            conditions.append(select(literal(1)).select_from(fts).where(
                literal_column(INDEX).op("MATCH")(match), fts.c.rowid == version.id).exists())
        elif match:
            # With other conditions SQLite (3.40) walks the matching articles and looks up each one's open
            # version in uq_article_versions_open by (article_id, id) once for every hit: 12 s for 发展
            # and a channel at 20,000 articles (bench/scale). `id + 0` is no index column, so the hits are
            # read once into a temporary index and each open version is only tested against it: 12 ms.
            key = version.id + 0 if filtered else version.id
            conditions.append(key.in_(
                text(f"SELECT rowid FROM {INDEX} WHERE {INDEX} MATCH :match").bindparams(match=match)))
    elif dialect == "postgresql" and probe:
        # The newest articles are walked and each one probed (a common word).
        conditions.append(probe_condition(version.id, query))
    elif dialect == "postgresql":
        # One subquery per piece: a long version's pieces may sit in different parts of it.
        for number, piece in enumerate(wanted.indexed):
            conditions.append(version.id.in_(
                text(f"SELECT version_id FROM {INDEX} WHERE {tsquery_column(piece)} @@ CAST(:q{number} AS tsquery)")
                .bindparams(**{f"q{number}": tsquery(piece)})))
    else:
        raise ValueError(f"no search index on {dialect}")
    if wanted.bounded and dialect == "postgresql":
        # The LIKEs in a correlated test (OFFSET 0: never pulled up), so that they read only the
        # window's bodies: as a filter PostgreSQL ran them on every open version before the join.
        tested = aliased(ArticleVersion)
        conditions.append(select(literal(1)).select_from(tested).where(
            tested.id == version.id, *(_contains(tested, char) for char in wanted.scanned)).offset(0).exists())
        conditions.append(_newest_window())
        return and_(*conditions)
    conditions += [_contains(version, char) for char in wanted.scanned]
    if wanted.bounded:
        newest = select(Article.id).order_by(Article.published_at.desc(), Article.id.desc()).limit(SCAN_WINDOW)
        conditions.append(version.article_id.in_(newest.scalar_subquery()))
    return and_(*conditions)


def _newest_window() -> ColumnElement:
    """The newest SCAN_WINDOW articles, as a bound on (published_at, id) that PostgreSQL walks.

    As `article_id IN (the newest)` PostgreSQL made a hash of the window and tested every open
    version against it, the LIKEs first: every body of the archive detoasted (20,000 at 20,000
    articles, 230 ms, bench/scale), not the window's. The bound is read once (two initplans), and
    `published_at >=` it ends the walk of ix_articles_published_at at the window's edge."""
    edge = (select(Article.published_at, Article.id)
            .order_by(Article.published_at.desc(), Article.id.desc()).offset(SCAN_WINDOW - 1).limit(1))
    at = edge.with_only_columns(Article.published_at).scalar_subquery()
    last_id = edge.with_only_columns(Article.id).scalar_subquery()
    return and_(Article.published_at >= func.coalesce(at, literal_column("'-infinity'::timestamp")),
                or_(at.is_(None), Article.published_at > at, Article.id >= last_id))


# What probing one version costs, in hits read: measured on bench/web_latency.py's archive
# (20,000 articles), a probe costs about 25-75 µs per token of the query, reading a hit about
# 2.5 µs plus its share of the sort. A probing search reads about rows × articles / hits versions
# before its page is full, so it pays only for a word common enough: 光伏 (16,654 hits) fills a
# page in 60 probes, 7 ms against 40; 氢能 (3,159 hits) would need 320, 25 ms against 14.
PROBE_COST = 20


def probe_pays(session, query: str | None, hits: int, rows: int) -> bool:
    """Whether probing beats reading the hits: `hits` articles match (from the index), the page
    needs the newest `rows` of them, the archive holds about max(id) articles."""
    if not hits or session.get_bind().dialect.name != "sqlite":
        return False
    tokens = sum(len(piece_tokens(p)) for p in plan(query).indexed)
    articles = session.scalar(select(func.max(Article.id))) or 0
    return rows * articles * tokens * PROBE_COST <= hits * hits


# SQLite, a search with a filter (a channel, dates, a status) or a phrase: how many of the newest
# (filtered) articles are looked at before the hits are counted whole (queries._walk_newest),
# first the one, then the other: four times the count limit settles a word in a quarter of the
# filtered articles or more, sixteen times one in a sixteenth (at 275,000 articles, 13 and 20 ms;
# the second walk alone costs a dense word 33).
FILTERED_WALKS = (4 * (COUNT_LIMIT + 1), 16 * (COUNT_LIMIT + 1))
# A search with a filter or a phrase that matches no more versions than this in the whole archive
# is read once and starts from its hits (queries.list_articles): about 2 µs a hit, 10 ms for
# 5,000, where the filtered articles tested against the hits cost 25 ms at 60,000 of them,
# whatever the hits.
FEW_HITS = 5_000


def few_hits(session, query: str | None) -> list[int] | None:
    """SQLite: the versions the query's indexed pieces match, if FEW_HITS or fewer (read from the
    index up to that many and no further); None for more."""
    ids = list(session.scalars(text(f"SELECT rowid FROM {INDEX} WHERE {INDEX} MATCH :match LIMIT :n")
                               .bindparams(match=fts5_query(plan(query).indexed), n=FEW_HITS + 1)))
    return ids if len(ids) <= FEW_HITS else None


def needs_positions(query: str | None) -> bool:
    """Whether the query is more than one token: a phrase (three characters and more) or several
    pieces, which FTS5 answers by merging doclists and comparing positions, not from one doclist."""
    indexed = plan(query).indexed
    return len(indexed) > 1 or any(len(piece_tokens(p)) > 1 for p in indexed)


def hits_since(query: str | None, since: int):
    """SQLite: the versions from id `since` up that match the query's indexed pieces, as an IN list.
    FTS5 seeks to `since` in each doclist, so only that tail of a common word's hits is read."""
    return text(f"SELECT rowid FROM {INDEX} WHERE {INDEX} MATCH :match AND rowid >= :since").bindparams(
        match=fts5_query(plan(query).indexed), since=since)


def index_count(session, query: str | None) -> int | None:
    """How many articles match, straight from the SQLite index (one entry per article), when
    every piece can use it; None otherwise. Saves joining thousands of hits only to count them."""
    wanted = plan(query)
    if session.get_bind().dialect.name != "sqlite" or not wanted.pieces or wanted.scanned:
        return None
    return session.scalar(text(f"SELECT count(*) FROM {INDEX} WHERE {INDEX} MATCH :match")
                          .bindparams(match=fts5_query(wanted.indexed)))


def count_is_bounded(session) -> bool:
    """Whether a search's total is counted only up to COUNT_LIMIT (PostgreSQL).

    A tsvector's match is known only once it has been read: the GIN index names the candidate
    versions, but a phrase (three characters and more) is rechecked in each one's tsvector, and a
    word in most articles makes the planner read them all (detoasting each): counting every hit
    of a common word took 135-226 ms at 20,000 articles (bench/scale), linear in the archive.
    Counting stops after COUNT_LIMIT + 1 hits instead; the pages and the API say "more than".
    SQLite's FTS5 index counts any word from its doclists (`index_count`), exactly."""
    return session.get_bind().dialect.name == "postgresql"


# The planner costs no detoasting: article_bigrams' own pages are small (every tsvector lives in its
# TOAST table), so it reads the whole table to test each tsvector rather than start from the GIN
# index: 120-220 ms at 20,000 articles for a rare word (bench/scale), linear in the archive.
_BITMAP_ONLY = ("enable_seqscan", "enable_indexscan")
# index_hits looks at the index table's first pages (in physical order, which knows nothing of a
# query's words) before its GIN index: HEAD_SAMPLE_PAGES to see how densely the query matches, and
# if at that density the hits it needs lie within the first HEAD_PAGES, it reads on up to them.
# A phrase in a third of 500,000 articles has its 1,001 hits within about 20 pages (136 rows each,
# 0.4-0.8 ms a page), where the bitmap ANDs five posting lists of hundreds of thousands of entries
# (29-35 ms; bench/scale); a rare query costs the sample (about 1 ms).
HEAD_SAMPLE_PAGES = 2
HEAD_PAGES = 40


def _first_matching_part(rows: str, column_: str) -> str:
    """SQL: the index row `rows` (an alias of article_bigrams' rows) is the lowest part of its
    version whose tsvector `column_` matches the tsquery :q. A long version is indexed in parts
    (pipeline.reading.bigrams.tsvector_parts), a row each: a hit counts at that part, so that a
    LIMIT counts versions. The parts below are asked only of a part after the first (235 rows of
    500,535 at 2,000,000 versions), found by the version's id (OFFSET 0: never through the GIN
    index, a posting list per row)."""
    return (f"({rows}.part = 0 OR NOT EXISTS (SELECT 1 FROM (SELECT {column_} FROM {INDEX} AS below "
            f"WHERE below.version_id = {rows}.version_id AND below.part < {rows}.part OFFSET 0) AS below "
            f"WHERE below.{column_} @@ CAST(:q AS tsquery)))")


# queries._from_candidates: a phrase's page is read from its candidates only when the walk of the
# newest articles would probe at least this many (about 22 ms at 5.5 µs a probe, bench/scale).
CANDIDATES_FROM_WALK = 4_000


@dataclass
class IndexHits:
    ids: list[int]  # every matching version's id; only some of them when `more`
    more: bool  # the limit was reached: more than `total` match
    # With `more`, from the GIN index: the share of the index table's pages read to find them. A
    # bitmap is read in the table's order, which knows nothing of a query's words, so the hits
    # over it estimate how many match in all (`expected`).
    read_share: float | None = None

    @property
    def total(self) -> int:
        """How many match, or with `more`, a number fewer than match (at least len(ids) do)."""
        return len(self.ids) - 1 if self.more else len(self.ids)

    def expected(self) -> float | None:
        """About how many versions match in all (None when unknown); only a choice of plan rests
        on it, never a number shown."""
        if not self.more:
            return float(len(self.ids))
        return len(self.ids) / self.read_share if self.read_share else None


def _head(session, q: str, column_: str, first: int, last: int | None, n: int) -> list[tuple[int, int]]:
    """PostgreSQL: (version_id, page) of the index rows whose `column_` matches tsquery `q` in the table's pages
    [first, last) (to its end when `last` is None), in physical order, at most `n` (a TID range
    scan: the same pages whatever else reads the table; OFFSET 0 keeps the query's words away
    from the planner, which would answer them from the GIN index)."""
    if last is not None and last <= first:
        return []
    upper = "" if last is None else " AND ctid < CAST(:hi AS tid)"
    return [tuple(row) for row in session.execute(
        text(f"SELECT version_id, page FROM (SELECT version_id, part, {column_}, (ctid::text::point)[0] AS page "
             f"FROM {INDEX} WHERE ctid >= CAST(:lo AS tid){upper} OFFSET 0) AS head "
             f"WHERE {column_} @@ CAST(:q AS tsquery) AND {_first_matching_part('head', column_)} LIMIT :n")
        .bindparams(q=q, lo=f"({first},0)", n=n, **({} if last is None else {"hi": f"({last},0)"})))]


def index_hits(session, query: str | None, limit: int) -> IndexHits | None:
    """PostgreSQL, a query of one indexed piece: the matching versions, stopping after `limit`: a
    common word costs at most `limit` hits, and the caller walks the newest articles for its page.
    They are read from the table's first pages when the query is dense enough there (see
    HEAD_PAGES), else from the GIN index (a bitmap: a word's posting list, a phrase's candidates
    rechecked). None for another database or query."""
    wanted = plan(query)
    if session.get_bind().dialect.name != "postgresql" or len(wanted.pieces) != 1 or not wanted.indexed:
        return None
    q, column_ = tsquery(wanted.indexed[0]), tsquery_column(wanted.indexed[0])
    pages = session.scalar(text("SELECT pg_relation_size(CAST(:t AS regclass)) / current_setting('block_size')::int")
                           .bindparams(t=INDEX))
    whole = pages <= HEAD_SAMPLE_PAGES
    rows = _head(session, q, column_, 0, None if whole else HEAD_SAMPLE_PAGES, limit + 1)
    wanting = limit + 1 - len(rows)
    if wanting > 0 and not whole and rows and wanting * HEAD_SAMPLE_PAGES / len(rows) <= HEAD_PAGES - HEAD_SAMPLE_PAGES:
        whole = pages <= HEAD_PAGES
        rows += _head(session, q, column_, HEAD_SAMPLE_PAGES, None if whole else HEAD_PAGES, wanting)
    if len(rows) <= limit and not whole:
        with _bitmap_only(session):
            rows = session.execute(text(f"SELECT version_id, (ctid::text::point)[0] FROM {INDEX} WHERE {column_} "
                                        f"@@ CAST(:q AS tsquery) AND {_first_matching_part(INDEX, column_)} LIMIT :n")
                                   .bindparams(q=q, n=limit + 1)).all()
    ids = sorted(version_id for version_id, _ in rows)
    if len(rows) <= limit:
        return IndexHits(ids, more=False)
    # A bitmap reads the table in page order too, so either way the hits' last page says how much was read.
    return IndexHits(ids, more=True, read_share=min(1.0, (max(page for _, page in rows) + 1) / pages) if pages else None)


def _bitmap_only(session):
    return _planner_off(session, *_BITMAP_ONLY)


@contextmanager
def _planner_off(session, *names: str):
    """The planner's methods `names` (enable_*) off for the statements inside, and back to what
    they were after, in one round trip each way (a search sets them for one or two statements of
    its transaction; reading them back from pg_settings cost 0.7-0.9 ms, a RESET each 0.1-0.3)."""
    was = session.execute(text(
        "SELECT " + ", ".join(f"was.s{n}" for n in range(len(names)))
        + " FROM (SELECT " + ", ".join(f"current_setting('{name}') AS s{n}" for n, name in enumerate(names))
        + " OFFSET 0) AS was, LATERAL (SELECT " + ", ".join(f"set_config('{name}', 'off', true)" for name in names)
        + " WHERE was.s0 IS NOT NULL) AS switched")).one()
    try:
        yield
    finally:
        session.execute(text("SELECT " + ", ".join(f"set_config('{name}', :s{n}, true)" for n, name in enumerate(names)))
                        .bindparams(**{f"s{n}": value for n, value in enumerate(was)}))


def is_one_term(query: str | None) -> bool:
    """PostgreSQL: whether the query is one indexed piece asked as one lexeme (a word, two or three
    CJK characters), whose GIN posting list is exactly its hits: no tsvector is read to find them."""
    wanted = plan(query)
    return len(wanted.pieces) == 1 and bool(wanted.indexed) and len(tsquery_tokens(wanted.indexed[0])) == 1


def candidates(session, query: str | None, limit: int) -> list[int] | None:
    """PostgreSQL, a query of one indexed piece: the versions that hold all its terms anywhere, if
    no more than `limit` do (else None). The GIN index answers that without reading a tsvector (a
    phrase's match is known only once its positions are compared in each), and every match of the
    piece is among them; for one term (`is_one_term`) they are its matches."""
    wanted = plan(query)
    if len(wanted.pieces) != 1 or not wanted.indexed:
        return None
    with _bitmap_only(session):
        piece = wanted.indexed[0]
        rows = session.scalars(text(f"SELECT version_id FROM {INDEX} WHERE {tsquery_column(piece)} "
                                    "@@ CAST(:q AS tsquery) LIMIT :n")
                               .bindparams(q=tsquery(piece, adjacent=False), n=limit + 1)).all()
    return sorted(set(rows)) if len(rows) <= limit else None


# newest_hits: what reading one index row in the list's order and testing its tsvector costs,
# against sorting one candidate by the row's own date: about 5 µs against 1 (bench/scale, 2,000,000
# versions: the walk down 1,070 rows for a phrase of 9,352 candidates 8.7 ms, their sort 16).
WALK_ROW_COST = 5
# A walk reads at most this many times the rows its density promises before the candidates are
# sorted instead: a query's hits need not be spread evenly over the years (尔滨氢燃, 1,925 hits,
# walked 100 ms for its page, where its candidates sort in 2).
WALK_SLACK = 4
_NEWEST = "published_at DESC, article_id DESC"  # the list's order (revision 0012 keeps it in the index table)


def newest_hits(session, query: str | None, expected: float | None, offset: int, limit: int) -> list[int]:
    """PostgreSQL, an unfiltered query of one indexed piece: its page, the versions of the hits
    `offset` to `offset + limit` in the list's order (newest first), read from the index table
    alone: each row carries its article's date and id (revision 0012), so no article is joined.

    Either the rows are walked in that order down the B-tree and each tested (a dense query: about
    (offset + limit) × rows / `expected` of them, `expected` the hits IndexHits saw), or the
    candidates (the versions holding all its terms, from the GIN index without reading a tsvector)
    are sorted by their rows' date and tested in that order (a rare one): whichever costs fewer
    microseconds by WALK_ROW_COST. A walk longer than WALK_SLACK times its promise gives way to
    the sort."""
    piece = plan(query).indexed[0]
    q, column_ = tsquery(piece), tsquery_column(piece)
    rows = rows_about(session, INDEX)

    def page(newest: str, **params) -> list[int]:
        """The page among the rows `newest` yields in the list's order (OFFSET 0 there: sorted
        first, then tested in that order, the test a filter on the sorted rows)."""
        return list(session.scalars(text(
            f"SELECT version_id FROM (SELECT version_id, part, {column_}, published_at, article_id FROM {INDEX} "
            f"{newest}) AS newest WHERE {column_} @@ CAST(:q AS tsquery) "
            f"AND {_first_matching_part('newest', column_)} ORDER BY {_NEWEST} LIMIT :n OFFSET :offset")
            .bindparams(q=q, n=limit, offset=offset, **params)))

    needed = offset + limit
    if expected and rows and needed * rows / expected * WALK_ROW_COST <= expected:
        cap = int(WALK_SLACK * needed * rows / expected) + 1
        with _walk_only(session):
            ids = page(f"ORDER BY {_NEWEST} LIMIT :cap", cap=cap)
        if len(ids) == limit or cap >= rows:
            return ids
    with _bitmap_only(session):
        return page(f"WHERE {column_} @@ CAST(:candidates AS tsquery) ORDER BY {_NEWEST} OFFSET 0",
                    candidates=tsquery(piece, adjacent=False))


def rows_about(session, table_name: str) -> float:
    """PostgreSQL: about how many rows the table holds, from the planner's statistics; counted if
    it was never analysed."""
    estimate = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)")
                              .bindparams(t=table_name))
    return estimate if estimate and estimate > 0 else session.scalar(text(f"SELECT count(*) FROM {table_name}"))


def _walk_only(session):
    """The index table in the list's order, down its B-tree: never a bitmap of all its hits sorted."""
    return _planner_off(session, "enable_bitmapscan", "enable_seqscan", "enable_sort")


def probe_condition(version_id, query: str | None) -> ColumnElement:
    """PostgreSQL: whether the version `version_id` (a column) matches every indexed piece of the
    query, asked of its own tsvector (a correlated test per version: OFFSET 0 keeps the planner
    from turning it into a join that reads every hit first)."""
    bigrams = table(INDEX, column("version_id"), column("terms"), column("trigrams"))
    return and_(*(select(literal(1)).select_from(bigrams).where(
        bigrams.c.version_id == version_id,
        bigrams.c[tsquery_column(piece)].op("@@")(cast(bindparam(f"p{number}", tsquery(piece)), TSQUERY)))
        .offset(0).exists()
        for number, piece in enumerate(plan(query).indexed)))


# --- the highlighted excerpt ---------------------------------------------------------------

def _hits(text_: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Where the pieces occur, as (start, end), leftmost first, not overlapping: CJK pieces
    anywhere, words only whole (as the index finds them)."""
    lowered = text_.lower() if len(text_.lower()) == len(text_) else text_
    found = []
    for piece in pieces:
        at = lowered.find(piece)
        while at >= 0:
            end = at + len(piece)
            whole = is_cjk(piece[0]) or (
                (at == 0 or not _word_char(lowered[at - 1])) and (end == len(lowered) or not _word_char(lowered[end])))
            if whole:
                found.append((at, end))
            at = lowered.find(piece, at + 1)
    found.sort(key=lambda span: (span[0], -span[1]))
    out: list[tuple[int, int]] = []
    for start, end in found:
        if not out or start >= out[-1][1]:
            out.append((start, end))
    return out


def _word_char(char: str) -> bool:
    return char.isalnum() and not is_cjk(char)


def snippet(text_: str, query: str | None, width: int = 60) -> list[tuple[str, bool]]:
    """A short excerpt around the first hit, as (text, is_hit) pieces to escape and mark up."""
    if not text_:
        return []
    hits = _hits(text_, query_pieces(query))
    if not hits:
        return [(text_[:width * 2] + ("…" if len(text_) > width * 2 else ""), False)]
    start = max(0, hits[0][0] - width // 2)
    end = min(len(text_), start + width * 2)
    pieces: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    at = start
    for hit_start, hit_end in hits:
        if hit_start >= end:
            break
        hit_start, hit_end = max(hit_start, at), min(hit_end, end)
        if hit_start > at:
            pieces.append((text_[at:hit_start], False))
        if hit_end > hit_start:
            pieces.append((text_[hit_start:hit_end], True))
        at = max(at, hit_end)
    if at < end:
        pieces.append((text_[at:end], False))
    if end < len(text_):
        pieces.append(("…", False))
    return pieces
