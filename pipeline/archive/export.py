"""The archive's public contract: its rows (export_rows, keys EXPORT_KEYS), written as JSON lines or CSV."""
from __future__ import annotations

import csv
import json
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from pipeline.archive.models import Article, ArticleVersion
from pipeline.reading.profile import Profile
from pipeline.reading.records import EXPORT_KEYS

# Spreadsheets run a cell as a formula when it starts with one of these, also
# after leading blanks they skip, and in the full-width and small forms an IME
# types (＝ ＋ － ＠ ﹦ …, which NFKC folds to ASCII), or with the minus sign.
FORMULA_STARTS = frozenset("=+-@\u2212")
# A cell that starts with a control character can break into the next cell or row.
CONTROL_STARTS = ("\t", "\r", "\n")


def _invisible(ch: str) -> bool:
    # Blanks, and format characters (zero-width space, BOM, bidi marks, soft hyphen) that show nothing.
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def formula_like(text: str) -> bool:
    if text.startswith(CONTROL_STARTS):
        return True
    first = next((ch for ch in text if not _invisible(ch)), "")
    return bool(first) and (first in FORMULA_STARTS or unicodedata.normalize("NFKC", first) in FORMULA_STARTS)


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if formula_like(text):
        return "'" + text
    return text


def write_jsonl(rows, out) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(rows, out) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_KEYS)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row[k]) for k in EXPORT_KEYS])
        count += 1
    return count


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
