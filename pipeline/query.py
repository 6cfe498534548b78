"""Reading the archive: find an article by any of its names, its history, its versions."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from pipeline.models import Article, ArticleVersion
from spiders.profile import Profile

EXPORT_KEYS = (
    "aid", "url", "channel", "version", "valid_from", "valid_to", "status", "change", "title",
    "published_at", "lede", "body", "editor", "source", "origin_source", "tags", "duplicate_of",
    "content_hash", "fetched_at",
)


class NotFound(LookupError):
    pass


def find_article(session: Session, profile: Profile, ref: str) -> Article:
    """ARTICLE as an aid or as any URL form of it (desktop, mobile, tracking parameters)."""
    ref = ref.strip()
    if ref.isdigit():
        aid = int(ref)
    else:
        aid = profile.aid_of(ref)
        if aid is None:
            raise NotFound(f"{ref!r} is neither an aid nor an article URL of {profile.name}")
    article = session.scalars(select(Article).where(Article.aid == aid)).one_or_none()
    if article is None:
        raise NotFound(f"article {aid} is not in the archive")
    return article


def versions_of(session: Session, article: Article) -> list[ArticleVersion]:
    return list(session.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article.id)
                                .order_by(ArticleVersion.version)))


def version_of(session: Session, article: Article, number: int) -> ArticleVersion:
    version = session.scalars(select(ArticleVersion).where(
        ArticleVersion.article_id == article.id, ArticleVersion.version == number)).one_or_none()
    if version is None:
        raise NotFound(f"article {article.aid} has no version {number} (it has 1..{article.current_version})")
    return version


def _iso(value: datetime | None, tz: ZoneInfo | None = None) -> str | None:
    if value is None:
        return None
    return (value.astimezone(tz) if tz else value).isoformat()


def export_rows(session: Session, profile: Profile, *, all_versions: bool = False,
                as_of: datetime | None = None, batch: int = 500):
    """The archive's public contract: one dict per article (or per version), keys EXPORT_KEYS."""
    tz = ZoneInfo(profile.timezone)
    original = aliased(Article)
    query = (select(ArticleVersion, Article.aid, original.canonical_url)
             .join(Article, ArticleVersion.article_id == Article.id)
             .outerjoin(original, Article.duplicate_of_id == original.id))
    if as_of is not None:
        query = query.where(ArticleVersion.valid_from <= as_of,
                            or_(ArticleVersion.valid_to.is_(None), ArticleVersion.valid_to > as_of))
    elif not all_versions:
        query = query.where(ArticleVersion.valid_to.is_(None))
    query = query.order_by(Article.aid, ArticleVersion.version).execution_options(yield_per=batch)
    for version, aid, duplicate_of in session.execute(query):
        yield {
            "aid": aid,
            "url": version.canonical_url,
            "channel": version.channel,
            "version": version.version,
            "valid_from": _iso(version.valid_from),
            "valid_to": _iso(version.valid_to),
            "status": "taken_down" if version.change == "taken_down" else "live",
            "change": version.change,
            "title": version.title,
            "published_at": _iso(version.published_at, tz),
            "lede": version.lede,
            "body": version.body_text,
            "editor": version.editor,
            "source": version.source,
            "origin_source": version.origin_source,
            "tags": list(version.tags or []),
            "duplicate_of": duplicate_of,
            "content_hash": version.content_hash,
            "fetched_at": _iso(version.fetched_at),
        }
