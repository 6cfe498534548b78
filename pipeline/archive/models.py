"""The archive's tables. The schema itself changes only through migrations/.

An article is one portal article (one aid) however it was reached; each
distinct content it ever had is one row of article_versions. Exactly one
version per article is open (valid_to IS NULL): a partial unique index
enforces it, and (article_id, version) is unique, so a concurrent second
writer fails instead of forking the history.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
    TypeDecorator,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware in Python, UTC in the database (SQLite has no zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the archive; attach a zone first")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # crawl, backfill, demo
    # The daemon job that started it (incremental, deep, ...), or null for a manual run.
    job: Mapped[str | None] = mapped_column(String(50), index=True)
    # running, succeeded, degraded (archived, but its health crossed a threshold: pipeline/health.py),
    # failed, interrupted (stopped by a signal), abandoned
    # (its process died without closing it), skipped (a missed schedule slot)
    status: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    base_url: Mapped[str] = mapped_column(Text)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    articles_seen: Mapped[int] = mapped_column(Integer, default=0)
    articles_new: Mapped[int] = mapped_column(Integer, default=0)
    versions_written: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    taken_down: Mapped[int] = mapped_column(Integer, default=0)
    restored: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    fetch_failures: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Requests sent to the portal (every attempt, robots.txt included), and how many the run
    # was allowed by the request budget (null: no budget). A run that died before counting is
    # charged its whole allowance (pipeline/budget.py).
    requests: Mapped[int | None] = mapped_column(Integer)
    allowance: Mapped[int | None] = mapped_column(Integer)
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    # Field coverage, fallback and quarantine rates of the run.
    health: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    # Who runs it, so a run whose process died can be told from one still going.
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_started: Mapped[str | None] = mapped_column(String(100))  # that process's start (ops/lease.py)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    backfill_id: Mapped[int | None] = mapped_column(ForeignKey("backfills.id"), index=True)


class Article(Base):
    __tablename__ = "articles"
    # A channel's list, newest first, read in order and stopped at the page (revision 0009).
    __table_args__ = (
        Index("ix_articles_channel_published_at", "channel", "published_at"),
        # The articles edited at least once, newest first (revision 0010).
        Index("ix_articles_edited", "published_at", "id", sqlite_where=text("edits > 0"),
              postgresql_where=text("edits > 0")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    aid: Mapped[int] = mapped_column(BigInteger, unique=True)
    canonical_url: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(50), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # live, taken_down
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    current_version: Mapped[int] = mapped_column(Integer)
    # The current version's publication time: revisit tiers go by an article's age.
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Consecutive runs that found the article gone; a takedown needs
    # Settings.takedown_confirmations of them.
    missing_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), index=True)
    # The open version's content hash, so an unchanged revisit reads one row.
    content_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of the normalized body text: exact-republication lookup.
    body_hash: Mapped[str] = mapped_column(String(64), index=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    # Checks that found the portal had changed the article (an edit, a takedown, a return):
    # with first_seen_at and last_checked_at, all the revisit policy needs of its history.
    changes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How many of its versions are edits (change `edited`): kept by triggers on article_versions
    # (revision 0010), never written here; the "edited at least once" list reads it.
    edits: Mapped[int] = mapped_column(Integer, server_default="0")
    # When it was published, as well as the archive could tell when it first saw it (the revisit
    # policy goes by an article's age): pages often show only the day, so an article first seen
    # on the day its page names was born when first seen, one found later at the day it names.
    # Fixed then: a later correction of the page's date does not make the article older.
    born_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    versions: Mapped[list["ArticleVersion"]] = relationship(
        back_populates="article", order_by="ArticleVersion.version"
    )
    duplicate_of: Mapped["Article | None"] = relationship(remote_side=[id])


class CompressionDictionary(Base):
    """A zstd dictionary trained on the archive's own raw pages (pipeline/archive/rawpages.py).

    Never changed or deleted once a page names it: a retrain (the portal's
    template changed) adds a row, and the newest row is the one new pages use.
    """

    __tablename__ = "dictionaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    algorithm: Mapped[str] = mapped_column(String(20))  # zstd
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # The pages it was trained on (how many, their bytes as fetched), and what it did to those of
    # them held out of the training, as stored bytes over fetched bytes and bytes a page.
    samples: Mapped[int] = mapped_column(Integer)
    sample_bytes: Mapped[int] = mapped_column(BigInteger)
    ratio: Mapped[float] = mapped_column(Float)
    bytes_per_page: Mapped[float] = mapped_column(Float)
    # The newest raw page when it was trained: the pages after it are the ones it is judged on.
    trained_through: Mapped[int] = mapped_column(BigInteger)
    # Why it was trained: the archive's first, or the template change that retired its predecessor.
    reason: Mapped[str] = mapped_column(Text)


class RawPage(Base):
    """The bytes as fetched, compressed, so any version can be re-parsed later.

    `codec` and `dictionary_id` say how (pipeline/reading/compression.py): rows
    written before dictionaries are `zlib` until recompressed.
    """

    __tablename__ = "raw_pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    http_status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    encoding: Mapped[str | None] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    codec: Mapped[str] = mapped_column(String(20), server_default="zlib")
    # Indexed: a dictionary is judged by its newest pages, and pages without one are found to recompress.
    dictionary_id: Mapped[int | None] = mapped_column(ForeignKey("dictionaries.id"), index=True)

    dictionary: Mapped[CompressionDictionary | None] = relationship()


class ArticleVersion(Base):
    __tablename__ = "article_versions"
    __table_args__ = (
        UniqueConstraint("article_id", "version"),
        # One open version per article, enforced by the database itself.
        Index(
            "uq_article_versions_open",
            "article_id",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        # The change feed's count, and "has this article an edit" (revision 0008).
        Index("ix_article_versions_change", "change", "article_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    version: Mapped[int] = mapped_column(Integer)
    # created, edited, reextracted, taken_down, restored; indexed with article_id (revision 0008)
    change: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    crawl_run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    raw_page_id: Mapped[int] = mapped_column(ForeignKey("raw_pages.id"))
    # profile, or fallback:<extractor>-<version> (spiders/fallback.py)
    extraction: Mapped[str] = mapped_column(String(40), default="profile")

    canonical_url: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lede: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    editor: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    origin_source: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    # Not part of the content hash: they change whenever neighbours are published.
    related: Mapped[list] = mapped_column(JSON, default=list)
    context: Mapped[dict] = mapped_column(JSON, default=dict)

    article: Mapped[Article] = relationship(back_populates="versions")
    raw_page: Mapped[RawPage] = relationship()


class ParagraphFingerprint(Base):
    """Hashes of an article's substantial paragraphs: the index behind near-duplicate lookup."""

    __tablename__ = "paragraph_fingerprints"

    paragraph_hash: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), primary_key=True, index=True)


class Quarantine(Base):
    """A fetched page that could not become a version, kept with its reason."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    aid: Mapped[int | None] = mapped_column(BigInteger, index=True)
    reason: Mapped[str] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    raw_page_id: Mapped[int | None] = mapped_column(ForeignKey("raw_pages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    raw_page: Mapped[RawPage | None] = relationship()


class FetchFailure(Base):
    """A request that still failed after retries: retried next run, never forgotten."""

    __tablename__ = "fetch_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    aid: Mapped[int | None] = mapped_column(BigInteger, index=True)
    reason: Mapped[str] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ArticleCheck(Base):
    """What one successful or failed look at an article found: the revisit policy's evidence.

    Compact on purpose (one is written for every article request): times are whole seconds
    since the Unix epoch, the outcome a small code (pipeline.archive.outcomes.Outcome).
    """

    __tablename__ = "article_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    crawl_run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"))
    at: Mapped[int] = mapped_column(BigInteger)
    # Seconds since the article's previous successful check; null for its first.
    interval: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[int] = mapped_column(SmallInteger)


class RevisitModel(Base):
    """The revisit policy's learned state (one row): the evidence summed so far, up to which
    check it is summed, and the population model last fitted on it (pipeline/revisit.py)."""

    __tablename__ = "revisit_model"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checks_seen: Mapped[int] = mapped_column(BigInteger, default=0)  # article_checks.id summed up to
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    model: Mapped[dict] = mapped_column(JSON, default=dict)
    fitted_on: Mapped[int] = mapped_column(BigInteger, default=0)  # intervals in the evidence at the fit
    fitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Lease(Base):
    """A named, expiring lock held in the archive itself: one writer per job across processes and hosts."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(Text)  # host:pid:token
    # The holder's process start (<boot id>:<start ticks>), so a reused pid is not taken for it.
    holder_started: Mapped[str | None] = mapped_column(String(100))
    job: Mapped[str] = mapped_column(String(100))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Backfill(Base):
    """One backfill request (its options), resumable across runs until done."""

    __tablename__ = "backfills"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # hash of the normalized options
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20))  # running, done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BackfillArticle(Base):
    """An article a backfill has archived: a restarted backfill does not fetch it again."""

    __tablename__ = "backfill_articles"

    backfill_id: Mapped[int] = mapped_column(ForeignKey("backfills.id"), primary_key=True)
    aid: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class AidProbe(Base):
    """An aid missing between archived ones, probed directly; remembered so it is not probed every run."""

    __tablename__ = "aid_probes"

    aid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    result: Mapped[str] = mapped_column(String(20))  # found, missing, failed
    probed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=1)


# APScheduler 3's job store table, declared here so that the migrations own
# it like every other table (the job store's own create is then a no-op).
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
