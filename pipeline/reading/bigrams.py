"""What a search means, once, as pure text: the tokens a version is indexed by and the pieces a query asks for.

Chinese is written without spaces and most of its words are two characters (储能, 光伏, 电网), so
no word list is needed: every run of CJK ideographs is split into overlapping bigrams
(储能电站 → 储能 能电 电站). Latin words and numbers are words, lowercased (PV → pv, 5G → 5g).
Anything else (blanks, punctuation, symbols) separates.

A query is split the same way into *pieces*: its CJK runs and its words. Every piece must occur
in the title, the lede or the body of a version (each piece on its own, in any of the three):

- a CJK piece as a substring: 储能 finds 储能电站; a piece of three or more characters is the
  phrase of its bigrams (储能电站 is 储能, 能电, 电站 at consecutive positions of one run of one
  field), which is exactly "contains this substring";
- a word as a whole word, case-insensitively: pv finds "PV 组件", not "pvc".

So "储能, 电站" and "储能 电站" are the same query (two pieces), and 2025年 is the word 2025 and the
piece 年. A one-character CJK piece has no bigram; the archive answers it by a bounded scan
(pipeline/archive/search.py).

The tokens carry positions. Consecutive bigrams of one run are adjacent (one apart); anything
else is at least two apart, so a phrase never runs from one CJK run, or one field, into the next.
The archive renders the same positioned tokens for SQLite (space-separated text for FTS5, a
filler token where a gap is needed) and for PostgreSQL (a tsvector literal).

PostgreSQL also keeps each run's trigrams, each at its first bigram's position
(储能电站 → 储能电 at 1, 能电站 at 2; a tsvector of their own beside the terms), and a piece of
three or more characters is asked as the phrase of its trigrams (`tsquery_tokens`): the same
meaning, since a run holds the trigrams at consecutive positions exactly where it holds the piece. Its GIN index then names far fewer
candidates for a rare phrase of common bigrams, whose tsvectors are all read to compare positions
(宁累计建成车: 1,582 of 500,000 articles, each of its five bigrams in more than 30% of them;
bench/scale), and a three-character piece is one lexeme, answered without reading a tsvector.
FTS5 compares positions in its doclists, not in the documents, and keeps the bigrams alone.
A change here changes what is indexed: it needs a migration that rebuilds the index.
"""
from __future__ import annotations

import re
from collections import Counter
from itertools import chain
from operator import add
from typing import Iterator

# Han ideographs, the basic block and every extension (A to I, the compatibility blocks), and 〇.
CJK_RANGES = (
    (0x3007, 0x3007),
    (0x3400, 0x4DBF),    # Extension A
    (0x4E00, 0x9FFF),    # the basic block
    (0xF900, 0xFAFF),    # compatibility ideographs
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2EE5F),  # Extensions C, D, E, F, I
    (0x2F800, 0x2FA1F),  # compatibility supplement
    (0x30000, 0x323AF),  # Extensions G, H
)
MAX_PIECES = 8
MAX_PIECE_LENGTH = 100  # characters; a longer piece is cut (and so matches a little more)


_CJK_CLASS = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in CJK_RANGES)
_CJK = re.compile(f"[{_CJK_CLASS}]")
# A CJK run, or a word: alphanumeric characters (str.isalnum(): what \w holds besides "_")
# that are not CJK. One regex pass instead of a Python test per character: this runs on every
# version the archive writes.
_RUNS = re.compile(f"([{_CJK_CLASS}]+)|((?:(?![{_CJK_CLASS}])[^\\W_])+)")


def is_cjk(char: str) -> bool:
    return _CJK.match(char) is not None


def runs(text: str) -> Iterator[tuple[bool, str]]:
    """The text's CJK runs (True, run) and words (False, lowercased word), in order."""
    for match in _RUNS.finditer(text):
        cjk, word = match.groups()
        yield (True, cjk) if cjk else (False, word.lower())


def bigrams(run: str) -> list[str]:
    return [a + b for a, b in zip(run, run[1:])]


def trigrams(run: str) -> list[str]:
    return [a + b + c for a, b, c in zip(run, run[1:], run[2:])]


def tokens(text: str | None, start: int = 1) -> list[tuple[int, str]]:
    """(position, token) pairs: adjacent positions only for consecutive bigrams of one CJK run."""
    out: list[tuple[int, str]] = []
    position = start - 2
    for cjk, run in runs(text or ""):
        position += 2  # a gap before every run or word
        if cjk:
            pairs = bigrams(run)
            out += [(position + i, pair) for i, pair in enumerate(pairs)]
            position += max(len(pairs) - 1, 0)
        else:
            out.append((position, run[:MAX_PIECE_LENGTH]))  # as a query cuts it; a tsvector lexeme is bounded too
    return out


def document_tokens(fields: list[str | None]) -> list[tuple[int, str]]:
    """The tokens of several fields in one position space, a gap between fields."""
    out: list[tuple[int, str]] = []
    for field in fields:
        out += tokens(field, start=(out[-1][0] + 2) if out else 1)
    return out


def document_terms(fields: list[str | None]) -> list[tuple[int, str]]:
    """PostgreSQL's positioned terms: document_tokens(fields) and, at the position of every bigram
    followed by an adjacent one (the next of its run), the trigram the two spell; by position."""
    items = document_tokens(fields)
    out: list[tuple[int, str]] = []
    for (position, token), after in zip(items, items[1:] + [(0, "")]):
        out.append((position, token))
        if after[0] == position + 1 and is_cjk(token[0]):
            out.append((position, token + after[1][1]))
    return out


def query_pieces(query: str | None) -> list[str]:
    """The distinct pieces of a query, in order: CJK runs as typed, words lowercased."""
    pieces: list[str] = []
    for _cjk, run in runs(query or ""):
        run = run[:MAX_PIECE_LENGTH]
        if run not in pieces:
            pieces.append(run)
    return pieces[:MAX_PIECES]


def piece_tokens(piece: str) -> list[str]:
    """The tokens a piece is a phrase of; none for a single CJK character (no bigram holds it)."""
    return bigrams(piece) if is_cjk(piece[0]) else [piece]


def tsquery_tokens(piece: str) -> list[str]:
    """The terms PostgreSQL asks a piece as, a phrase of them: its trigrams when it has any (see
    the module's docstring; they are kept in a column of their own, `tsquery_column`), else its
    tokens."""
    return trigrams(piece) if is_cjk(piece[0]) and len(piece) > 2 else piece_tokens(piece)


def tsquery_column(piece: str) -> str:
    """Which of PostgreSQL's two tsvectors of a version holds the piece's terms: `trigrams` for a
    CJK piece of three characters or more, `terms` (bigrams and words) for any other."""
    return "trigrams" if is_trigram(tsquery_tokens(piece)[0]) else "terms"


# --- the two renderings of one set of tokens ------------------------------------------------

# A private-use character: FTS5's unicode61 tokenizer takes it for a token (category Co), and no
# query can ask for it (it is neither CJK nor alphanumeric, so queries treat it as a separator).
FILLER = "\ue000"


def fts5_text(text: str | None) -> str:
    """One field as FTS5 text: its tokens separated by spaces, a filler token where two bigrams
    follow each other without being adjacent (two CJK runs split by punctuation). The same tokens
    as tokens(), rendered straight from the runs: this runs on every version the archive writes,
    so the runs are found in one call and a run's bigrams joined without a Python step each."""
    out: list[str] = []
    last_cjk = False
    for cjk, word in _RUNS.findall(text or ""):
        if not cjk:
            out.append(word.lower()[:MAX_PIECE_LENGTH])
            last_cjk = False
        elif len(cjk) > 1:
            if last_cjk:
                out.append(FILLER)
            out.append(" ".join(map(add, cjk, cjk[1:])))
            last_cjk = True
    return " ".join(out)


def fts5_query(pieces: list[str]) -> str | None:
    """An FTS5 MATCH expression: every piece that has tokens, as a quoted phrase, ANDed; None if
    no piece has any. Tokens are alphanumeric or CJK, so quoting needs no escaping."""
    phrases = ['"' + " ".join(piece_tokens(p)) + '"' for p in pieces if piece_tokens(p)]
    return " AND ".join(phrases) or None


# PostgreSQL keeps at most 16,383 as a position and 256 positions per lexeme in a tsvector; a
# longer document is cut into parts that overlap by more positions than the longest phrase spans,
# so a phrase is always whole inside some part. A part's positions restart at 1.
TSVECTOR_MAX_POSITION = 16_000
TSVECTOR_MAX_OCCURRENCES = 255
PART_OVERLAP = MAX_PIECE_LENGTH


def tsvector_parts(fields: list[str | None]) -> list[tuple[str, str]]:
    """The document as tsvector literals, a pair per part (usually one part): its terms (bigrams
    and words) and its trigrams, two columns, so that a query reads only the one it asks (a
    version's trigrams are as long as its terms: in one tsvector every probe of a word read
    both).

    A document of one part (nearly all: no position past TSVECTOR_MAX_POSITION, no lexeme more
    than TSVECTOR_MAX_OCCURRENCES times) is rendered straight from its tokens in order, a lexeme
    once per occurrence: PostgreSQL's tsvector input merges a lexeme's positions itself. This runs
    on every version the archive writes on PostgreSQL, and gathering each lexeme's positions in
    Python took 1.1-1.4 ms a version of bench/scale's build; here a run's bigrams and positions
    are added whole and the literal is formatted in one call (0.7-0.8 ms). Tokens are
    alphanumeric or CJK, so none needs quoting. Any other document is cut from the positioned
    terms (`_cut`). Either way the meaning is that of `_cut(document_terms(fields))`.
    """
    tokens, positions, triples, triple_positions = _positioned(fields)
    if not tokens:
        return [("", "")]
    first = positions[0]
    if positions[-1] - first >= TSVECTOR_MAX_POSITION or (
            len(tokens) > TSVECTOR_MAX_OCCURRENCES and max(Counter(tokens).values()) > TSVECTOR_MAX_OCCURRENCES):
        return _cut(document_terms(fields))  # a trigram occurs no more often than its first bigram
    if first != 1:
        positions = [p - first + 1 for p in positions]
        triple_positions = [p - first + 1 for p in triple_positions]
    return [(_literal(tokens, positions), _literal(triples, triple_positions))]


def _literal(tokens: list[str], positions: list[int]) -> str:
    return " ".join(["'%s':%d"] * len(tokens)) % tuple(chain.from_iterable(zip(tokens, positions)))


def is_trigram(token: str) -> bool:
    return len(token) == 3 and is_cjk(token[0])


def _positioned(fields: list[str | None]) -> tuple[list[str], list[int], list[str], list[int]]:
    """document_terms(fields) as four lists, a run at a time: the terms (bigrams and words) and
    their positions, the trigrams and theirs."""
    tokens: list[str] = []
    positions: list[int] = []
    triples: list[str] = []
    triple_positions: list[int] = []
    for field in fields:
        position = positions[-1] if positions else -1  # two before the field's first position
        for cjk, word in _RUNS.findall(field or ""):
            position += 2  # a gap before every run or word
            if not cjk:
                tokens.append(word.lower()[:MAX_PIECE_LENGTH])
                positions.append(position)
            elif len(cjk) > 1:
                tokens += map(add, cjk, cjk[1:])
                positions += range(position, position + len(cjk) - 1)
                if len(cjk) > 2:
                    triples += map(add, map(add, cjk, cjk[1:]), cjk[2:])
                    triple_positions += range(position, position + len(cjk) - 2)
                position += len(cjk) - 2
            # one character: no bigram, only its gap
    return tokens, positions, triples, triple_positions


def _cut(items: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """Positioned terms (in position order) as pairs of tsvector literals (terms, trigrams), cut
    into parts within PostgreSQL's limits, each next part starting PART_OVERLAP positions before
    the last one's end."""
    parts: list[tuple[str, str]] = []
    start = 0
    while start < len(items) or not parts:
        counts: dict[str, int] = {}
        end = start
        first = items[start][0] if start < len(items) else 1
        while end < len(items):
            position, token = items[end]
            if position - first >= TSVECTOR_MAX_POSITION or counts.get(token, 0) >= TSVECTOR_MAX_OCCURRENCES:
                break
            counts[token] = counts.get(token, 0) + 1
            end += 1
        positions: dict[str, list[int]] = {}
        for position, token in items[start:end]:
            positions.setdefault(token, []).append(position - first + 1)
        literal = {kind: " ".join(f"'{_tsquote(t)}':{','.join(map(str, p))}"
                                  for t, p in positions.items() if is_trigram(t) == kind) for kind in (False, True)}
        parts.append((literal[False], literal[True]))
        if end >= len(items):
            break
        back = end
        while back > start + 1 and items[back - 1][0] >= items[end][0] - PART_OVERLAP:
            back -= 1
        start = back
    return parts


def _tsquote(token: str) -> str:
    if "'" not in token and "\\" not in token:  # a word or a bigram: nearly always
        return token
    return token.replace("\\", "\\\\").replace("'", "''")


def tsquery(piece: str, adjacent: bool = True) -> str:
    """A piece as a tsquery literal: one lexeme, or the phrase of its trigrams (<->); with
    `adjacent` false, its trigrams anywhere (&), which a GIN index answers without reading a
    tsvector, and whose matches hold every match of the phrase."""
    return (" <-> " if adjacent else " & ").join(f"'{_tsquote(t)}'" for t in tsquery_tokens(piece))
