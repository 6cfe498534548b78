"""Checking the archive's invariants: what must hold however the archive was written.

The writers (pipeline/versions.py) keep these by construction and the schema
enforces some of them (one open version, unique version numbers), but a
restore from backup, a hand-made SQL fix or a bug in a future writer can
break any of them; `portal-archive verify` says which, and where.

The archive is read in chunks of articles by id, each chunk's versions and raw
pages streamed, so memory stays bounded whatever the archive's size. The one
exception is the duplicate links: their graph (two integers per linked
article) is held whole, because a cycle can run across any two chunks.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby, pairwise

from sqlalchemy import column, exists, func, select, table, text
from sqlalchemy.orm import Session, aliased

from pipeline.archive.models import Article, ArticleVersion, Quarantine, RawPage
from pipeline.archive.rawpages import Dictionaries
from pipeline.archive.search import INDEX
from pipeline.reading.compression import CorruptPage
from pipeline.reading.fingerprint import HASHED_FIELDS, content_hash

# Articles per read; with their versions' text and raw pages this is a few MB.
CHUNK_ARTICLES = 500
# Violations listed per check; the rest are only counted.
EXAMPLES_PER_CHECK = 20


@dataclass
class Check:
    name: str
    invariant: str
    unit: str  # what one examined row is
    examined: int = 0
    violations: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def violation(self, message: str) -> None:
        self.violations += 1
        if len(self.examples) < EXAMPLES_PER_CHECK:
            self.examples.append(message)


def _checks() -> dict[str, Check]:
    specs = (
        ("one-open-version", "exactly one open version (valid_to null) per article", "articles"),
        ("version-numbers", "versions numbered 1..n without gaps; articles.current_version = n", "articles"),
        ("validity-chain", "each version valid until the next begins; only the last open; "
                           "valid_to >= valid_from", "versions"),
        ("content-hash", "each version's content hash recomputed from its stored fields", "versions"),
        ("article-hash", "articles.content_hash = the open version's content hash", "articles"),
        ("raw-pages", "each version's raw page exists, decompresses (with its codec and dictionary), "
                      "and matches its sha256 and size", "versions"),
        ("quarantined-pages", "each quarantined page's raw page exists, decompresses, and matches its "
                              "sha256 and size", "quarantined pages"),
        ("article-has-versions", "every article has at least one version", "articles"),
        ("version-has-article", "every version belongs to an article", "versions"),
        ("status", "an article is taken_down iff its open version's change is taken_down", "articles"),
        ("edits", "articles.edits = the number of its versions whose change is edited", "articles"),
        ("duplicate-of", "duplicate_of never points to the article itself, to a missing article, "
                         "or round a cycle", "linked articles"),
        ("search-index", "the search index holds exactly the open versions (on PostgreSQL, each under its "
                         "date and article)", "open versions"),
    )
    return {name: Check(name, invariant, unit) for name, invariant, unit in specs}


@dataclass
class VerifyReport:
    checks: list[Check]
    articles: int

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def lines(self) -> list[str]:
        """One line per check with the rows it examined, then its violations."""
        width = max(len(c.name) for c in self.checks)
        out = []
        for c in self.checks:
            verdict = "ok  " if c.ok else "FAIL"
            tail = "" if c.ok else f", {c.violations} violation{'s' if c.violations != 1 else ''}"
            out.append(f"{verdict} {c.name:<{width}}  {c.examined} {c.unit} examined{tail}  ({c.invariant})")
            out.extend(f"       {example}" for example in c.examples)
            if c.violations > len(c.examples):
                out.append(f"       … and {c.violations - len(c.examples)} more")
        failed = [c for c in self.checks if not c.ok]
        if failed:
            total = sum(c.violations for c in failed)
            out.append(f"{len(failed)} of {len(self.checks)} checks failed "
                       f"({total} violation{'s' if total != 1 else ''}): "
                       + ", ".join(c.name for c in failed))
        else:
            out.append(f"all {len(self.checks)} checks hold over {self.articles} articles")
        return out


_VERSION_COLUMNS = (
    ArticleVersion.id, ArticleVersion.article_id, ArticleVersion.version, ArticleVersion.change,
    ArticleVersion.content_hash, ArticleVersion.valid_from, ArticleVersion.valid_to,
    *(getattr(ArticleVersion, name) for name in HASHED_FIELDS),
)


def verify_archive(session: Session, *, chunk: int = CHUNK_ARTICLES,
                   progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Check every invariant over the whole archive; never writes."""
    checks = _checks()
    total = session.scalar(select(func.count()).select_from(Article)) or 0
    dictionaries = Dictionaries(session)
    done = 0
    last_id = 0
    while True:
        articles = session.execute(
            select(Article.id, Article.aid, Article.status, Article.current_version, Article.content_hash,
                   Article.edits)
            .where(Article.id > last_id).order_by(Article.id).limit(chunk)).all()
        if not articles:
            break
        first_id, last_id = articles[0].id, articles[-1].id
        _check_versions(session, checks, articles, first_id, last_id)
        _check_raw_pages(session, checks, articles, first_id, last_id, dictionaries)
        done += len(articles)
        if progress:
            progress(done, total)
    _check_quarantined_pages(session, checks["quarantined-pages"], dictionaries)
    _check_orphan_versions(session, checks["version-has-article"])
    _check_duplicate_links(session, checks["duplicate-of"])
    _check_search_index(session, checks["search-index"])
    return VerifyReport(list(checks.values()), done)


def _label(article) -> str:
    return f"article {article.aid} (id {article.id})"


def _check_versions(session: Session, checks: dict[str, Check], articles, first_id: int, last_id: int) -> None:
    rows = session.execute(
        select(*_VERSION_COLUMNS).where(ArticleVersion.article_id.between(first_id, last_id))
        .order_by(ArticleVersion.article_id, ArticleVersion.version))
    by_article = {article_id: list(versions) for article_id, versions in groupby(rows, lambda r: r.article_id)}
    for article in articles:
        versions = by_article.get(article.id, [])
        label = _label(article)
        checks["article-has-versions"].examined += 1
        if not versions:
            checks["article-has-versions"].violation(f"{label} has no version")
            continue
        for name in ("one-open-version", "version-numbers", "article-hash", "status", "edits"):
            checks[name].examined += 1
        edits = sum(1 for v in versions if v.change == "edited")
        if article.edits != edits:
            checks["edits"].violation(f"{label} counts {article.edits} edits, its versions {edits}")
        _one_open_version(checks["one-open-version"], label, versions)
        _version_numbers(checks["version-numbers"], label, article, versions)
        _validity_chain(checks["validity-chain"], label, versions)
        _content_hashes(checks["content-hash"], label, versions)
        open_versions = [v for v in versions if v.valid_to is None]
        if len(open_versions) == 1:  # otherwise one-open-version has said so
            _agrees_with_open_version(checks, label, article, open_versions[0])


def _one_open_version(check: Check, label: str, versions) -> None:
    open_numbers = [v.version for v in versions if v.valid_to is None]
    if len(open_numbers) != 1:
        which = ", ".join(f"v{n}" for n in open_numbers) or "none"
        check.violation(f"{label} has {len(open_numbers)} open versions ({which})")


def _version_numbers(check: Check, label: str, article, versions) -> None:
    numbers = [v.version for v in versions]
    if numbers != list(range(1, len(numbers) + 1)):
        check.violation(f"{label} has versions {_numbers(numbers)}, expected 1..{len(numbers)}")
    if article.current_version != numbers[-1]:
        check.violation(f"{label} says current version {article.current_version}, "
                        f"its newest is v{numbers[-1]}")


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (", …" if len(numbers) > 10 else "")


def _validity_chain(check: Check, label: str, versions) -> None:
    for v in versions:
        check.examined += 1
        if v.valid_to is not None and v.valid_to < v.valid_from:
            check.violation(f"{label} v{v.version} ends before it begins "
                            f"({v.valid_from.isoformat()} → {v.valid_to.isoformat()})")
    for before, after in pairwise(versions):
        if before.valid_to is None:
            check.violation(f"{label} v{before.version} is open although v{after.version} follows it")
        elif before.valid_to != after.valid_from:
            kind = "overlaps" if before.valid_to > after.valid_from else "leaves a gap before"
            check.violation(f"{label} v{before.version} {kind} v{after.version}: valid to "
                            f"{before.valid_to.isoformat()}, next valid from {after.valid_from.isoformat()}")
    if versions[-1].valid_to is not None:
        check.violation(f"{label} newest version v{versions[-1].version} is closed "
                        f"({versions[-1].valid_to.isoformat()})")


def _content_hashes(check: Check, label: str, versions) -> None:
    for v in versions:
        check.examined += 1
        recomputed = content_hash({name: getattr(v, name) for name in HASHED_FIELDS})
        if recomputed != v.content_hash:
            check.violation(f"{label} v{v.version} stores hash {v.content_hash[:12]}, "
                            f"its fields hash to {recomputed[:12]}")


def _agrees_with_open_version(checks: dict[str, Check], label: str, article, open_version) -> None:
    if article.content_hash != open_version.content_hash:
        checks["article-hash"].violation(
            f"{label} stores hash {article.content_hash[:12]}, its open version "
            f"v{open_version.version} has {open_version.content_hash[:12]}")
    gone = open_version.change == "taken_down"
    if (article.status == "taken_down") != gone:
        checks["status"].violation(
            f"{label} is {article.status} but its open version v{open_version.version} "
            f"is {open_version.change}")


_PAGE_COLUMNS = (RawPage.id.label("page_id"), RawPage.sha256, RawPage.size, RawPage.codec,
                 RawPage.dictionary_id, RawPage.body)


def _check_raw_pages(session: Session, checks: dict[str, Check], articles, first_id: int, last_id: int,
                     dictionaries: Dictionaries) -> None:
    check = checks["raw-pages"]
    labels = {a.id: _label(a) for a in articles}
    rows = session.execute(
        select(ArticleVersion.article_id, ArticleVersion.version, ArticleVersion.raw_page_id, *_PAGE_COLUMNS)
        .outerjoin(RawPage, ArticleVersion.raw_page_id == RawPage.id)
        .where(ArticleVersion.article_id.between(first_id, last_id))
        .order_by(ArticleVersion.article_id, ArticleVersion.version)
        .execution_options(yield_per=50))
    for row in rows:
        label = labels.get(row.article_id)
        if label is None:
            continue  # a version without an article: version-has-article reports it
        check.examined += 1
        _read_back(check, f"{label} v{row.version} raw page {row.raw_page_id}", row, dictionaries)


def _read_back(check: Check, where: str, row, dictionaries: Dictionaries) -> None:
    """The page's bytes read back with its codec and dictionary, byte for byte against its sha256."""
    if row.page_id is None:
        check.violation(f"{where} does not exist")
        return
    try:
        raw = dictionaries.read(row.codec, row.body, row.dictionary_id)
    except CorruptPage as exc:
        check.violation(f"{where} does not decompress ({row.codec}"
                        f"{f', dictionary {row.dictionary_id}' if row.dictionary_id else ''}): {exc}")
        return
    digest = hashlib.sha256(raw).hexdigest()
    if digest != row.sha256:
        check.violation(f"{where} has sha256 {digest[:12]}, the row says {row.sha256[:12]}")
    if len(raw) != row.size:
        check.violation(f"{where} has {len(raw)} bytes, the row says {row.size}")


def _check_quarantined_pages(session: Session, check: Check, dictionaries: Dictionaries) -> None:
    rows = session.execute(
        select(Quarantine.id, Quarantine.url, Quarantine.raw_page_id, *_PAGE_COLUMNS)
        .outerjoin(RawPage, Quarantine.raw_page_id == RawPage.id)
        .where(Quarantine.raw_page_id.is_not(None)).order_by(Quarantine.id)
        .execution_options(yield_per=50))
    for row in rows:
        check.examined += 1
        _read_back(check, f"quarantined page {row.id} ({row.url}) raw page {row.raw_page_id}", row, dictionaries)


def _check_orphan_versions(session: Session, check: Check) -> None:
    check.examined = session.scalar(select(func.count()).select_from(ArticleVersion)) or 0
    rows = session.execute(
        select(ArticleVersion.id, ArticleVersion.article_id, ArticleVersion.version)
        .outerjoin(Article, ArticleVersion.article_id == Article.id)
        .where(Article.id.is_(None)).order_by(ArticleVersion.id))
    for row in rows:
        check.violation(f"version row {row.id} (v{row.version}) belongs to article id {row.article_id}, "
                        "which does not exist")


def _check_search_index(session: Session, check: Check) -> None:
    """Ids only: which entries the index has, not what text each holds (an FTS5 contentless table
    keeps none to compare with; the write path and the property tests answer for that)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    key = "rowid" if sqlite else "version_id"
    index = table(INDEX, column(key))
    check.examined = session.scalar(select(func.count()).select_from(ArticleVersion)
                                    .where(ArticleVersion.valid_to.is_(None))) or 0
    # SQLite hashes a NOT IN list; PostgreSQL hashes it only if it fits in work_mem, and otherwise
    # scans the list again for every row: 500,000 open versions took more than 10 minutes
    # (bench/scale). There, NOT EXISTS: an anti-join.
    unindexed = (ArticleVersion.id.not_in(select(index.c[key])) if sqlite
                 else ~exists().where(index.c[key] == ArticleVersion.id))
    missing = session.scalars(select(ArticleVersion.id).where(ArticleVersion.valid_to.is_(None), unindexed)
                              .order_by(ArticleVersion.id))
    for version_id in missing:
        check.violation(f"open version row {version_id} is not in the search index")
    stale = session.scalars(text(
        f"SELECT DISTINCT {key} FROM {INDEX} WHERE {key} NOT IN (SELECT id FROM article_versions "
        f"WHERE valid_to IS NULL) ORDER BY {key}" if sqlite else
        f"SELECT DISTINCT b.{key} FROM {INDEX} b WHERE NOT EXISTS (SELECT 1 FROM article_versions v "
        f"WHERE v.id = b.{key} AND v.valid_to IS NULL) ORDER BY b.{key}"))
    for version_id in stale:
        check.violation(f"the search index holds version row {version_id}, which is not an open version "
                        "(rebuild the index: `portal-archive db upgrade` after a downgrade to 0004)")
    if not sqlite:  # each row's date and article give a search's page its order (revision 0012)
        misfiled = session.scalars(text(
            f"SELECT DISTINCT b.version_id FROM {INDEX} b JOIN article_versions v ON v.id = b.version_id "
            "WHERE b.published_at <> v.published_at OR b.article_id <> v.article_id ORDER BY b.version_id"))
        for version_id in misfiled:
            check.violation(f"the search index files version row {version_id} under another date or article "
                            "than the version's (rebuild the index: `portal-archive db upgrade` after a "
                            "downgrade to 0011)")


def _check_duplicate_links(session: Session, check: Check) -> None:
    target = aliased(Article)
    links: dict[int, int] = {}
    aids: dict[int, int] = {}
    rows = session.execute(
        select(Article.id, Article.aid, Article.duplicate_of_id, target.id.label("target_id"))
        .outerjoin(target, Article.duplicate_of_id == target.id)
        .where(Article.duplicate_of_id.is_not(None)).order_by(Article.id))
    for row in rows:
        check.examined += 1
        label = f"article {row.aid} (id {row.id})"
        if row.duplicate_of_id == row.id:
            check.violation(f"{label} is marked a duplicate of itself")
        elif row.target_id is None:
            check.violation(f"{label} is a duplicate of article id {row.duplicate_of_id}, which does not exist")
        else:
            links[row.id] = row.duplicate_of_id
            aids[row.id] = row.aid
    for cycle in _cycles(links):
        path = " → ".join(str(aids[node]) for node in [*cycle, cycle[0]])
        check.violation(f"articles {path} form a duplicate_of cycle")


def _cycles(links: dict[int, int]) -> list[list[int]]:
    """Each cycle of the duplicate_of graph once (every node has at most one outgoing link)."""
    state: dict[int, int] = {}  # 1: on the current walk, 2: done
    cycles = []
    for start in links:
        path = []
        node = start
        while node in links and node not in state:
            state[node] = 1
            path.append(node)
            node = links[node]
        if state.get(node) == 1:  # the walk came back to itself
            cycles.append(path[path.index(node):])
        for visited in path:
            state[visited] = 2
    return cycles
