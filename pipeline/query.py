"""Reading the archive: find an article by any of its names, its history, its versions."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit
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
    aid = article_aid(profile, ref, base_url=base_url, session=session)
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
