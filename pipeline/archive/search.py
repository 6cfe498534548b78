"""Full-text search over the current version of each article, made for Chinese.

Chinese has no spaces, so a search is for substrings: every whitespace-
separated term must occur in the title, the lede or the body. Terms of three
or more characters use the trigram index that revision 0003 keeps (SQLite
FTS5 `tokenize='trigram'`, PostgreSQL pg_trgm). A trigram index cannot answer
for one or two characters (光伏 has no trigram), so such terms are a LIKE
condition: on their own they scan every current version (still fast at tens
of thousands of articles, see the README), next to a longer term they only
filter its hits.
"""
from __future__ import annotations

import re

from sqlalchemy import and_, or_, text
from sqlalchemy.sql.elements import ColumnElement

TRIGRAM = 3
MAX_TERMS = 8
MAX_TERM_LENGTH = 100
SEARCHED = ("title", "lede", "body_text")
# Control characters (NUL included) mean nothing in a search and upset FTS5.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def search_terms(query: str | None) -> list[str]:
    """The distinct terms of a query, in order; blank and control characters separate them."""
    cleaned = _CONTROL.sub(" ", query or "")
    terms = []
    for term in cleaned.split():
        term = term[:MAX_TERM_LENGTH]
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


def fts5_phrase(term: str) -> str:
    """A term as an FTS5 string: its own quotes doubled, so no query syntax gets through."""
    return '"' + term.replace('"', '""') + '"'


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(version, term: str, dialect: str) -> ColumnElement:
    pattern = _like_pattern(term)
    columns = [getattr(version, name) for name in SEARCHED]
    if dialect == "postgresql":
        # ILIKE on the bare column is what the gin_trgm_ops indexes serve.
        return or_(*(c.ilike(pattern, escape="\\") for c in columns))
    return or_(*(c.like(pattern, escape="\\") for c in columns))


def search_condition(version, query: str | None, dialect: str) -> ColumnElement | None:
    """A WHERE condition on `version` (an open ArticleVersion alias), or None for no search."""
    terms = search_terms(query)
    if not terms:
        return None
    indexed = [t for t in terms if len(t) >= TRIGRAM]
    conditions = []
    if dialect == "sqlite" and indexed:
        match = " AND ".join(fts5_phrase(t) for t in indexed)
        conditions.append(version.id.in_(
            text("SELECT rowid FROM article_search WHERE article_search MATCH :match")
            .bindparams(match=match)))
        terms = [t for t in terms if len(t) < TRIGRAM]
    conditions += [_contains(version, t, dialect) for t in terms]
    return and_(*conditions)


def index_count(session, query: str | None) -> int | None:
    """How many articles match, straight from the SQLite index (one entry per article), when
    every term can use it; None otherwise. Saves joining thousands of hits only to count them."""
    terms = search_terms(query)
    if session.get_bind().dialect.name != "sqlite" or not terms or any(len(t) < TRIGRAM for t in terms):
        return None
    return session.scalar(text("SELECT count(*) FROM article_search WHERE article_search MATCH :match")
                          .bindparams(match=" AND ".join(fts5_phrase(t) for t in terms)))


def snippet(text_: str, query: str | None, width: int = 60) -> list[tuple[str, bool]]:
    """A short excerpt around the first hit, as (text, is_hit) pieces to escape and mark up."""
    terms = search_terms(query)
    if not text_:
        return []
    lowered = text_.lower()
    hits = [(lowered.find(t.lower()), t) for t in terms]
    hits = [(at, t) for at, t in hits if at >= 0]
    if not hits:
        return [(text_[:width * 2] + ("…" if len(text_) > width * 2 else ""), False)]
    first = min(at for at, _ in hits)
    start = max(0, first - width // 2)
    end = min(len(text_), start + width * 2)
    window = text_[start:end]
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.I)
    pieces: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    at = 0
    for m in pattern.finditer(window):
        if m.start() > at:
            pieces.append((window[at:m.start()], False))
        pieces.append((m.group(), True))
        at = m.end()
    if at < len(window):
        pieces.append((window[at:], False))
    if end < len(text_):
        pieces.append(("…", False))
    return pieces
