"""Fixed facts about the portal: its name, its channels, its clock and date formats.

Everything here mirrors /work/shared/portal/PORTAL.md; the spider's profile carries
the same facts independently, so a mismatch shows up as a failing comparison.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

SITE_NAME = "中国电源产业网"

# The portal runs on Asia/Shanghai, which has had no DST since 1991: a fixed
# offset is exact and keeps the replica free of tz database differences.
PORTAL_TZ = timezone(timedelta(hours=8))

# The replica's own clock starts here and advances one day per mutation round.
# Nothing in the replica ever reads the real clock.
EPOCH_NOW = "2026-02-12T12:00:00+08:00"

PAGE_SIZE = 20  # list items per channel page, as on the portal


@dataclass(frozen=True)
class Channel:
    slug: str
    name: str
    typeid: int

    @property
    def root(self) -> str:
        return f"/news/{self.slug}/"


CHANNELS: tuple[Channel, ...] = (
    Channel("hyzx", "行业资讯", 1),
    Channel("zcfg", "政策法规", 2),
    Channel("djyd", "党建园地", 3),
    Channel("qydt", "企业动态", 4),
    Channel("jsqy", "技术前沿", 5),
)
CHANNEL_BY_SLUG = {c.slug: c for c in CHANNELS}

# How `.info .time` shows the publication date. The portal mixes all three.
DATE_STYLES = ("date", "datetime", "cn")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def to_iso(moment: datetime) -> str:
    return moment.astimezone(PORTAL_TZ).isoformat()


def published_moment(created: datetime, style: str) -> datetime:
    """What a reader can know of the publication time from the page.

    Pages showing only a date carry no time of day, so the ground truth is
    midnight; the datetime style shows hours and minutes, never seconds.
    """
    local = created.astimezone(PORTAL_TZ).replace(second=0, microsecond=0)
    if style == "datetime":
        return local
    return local.replace(hour=0, minute=0)


def display_date(published_at: str, style: str) -> str:
    moment = parse_iso(published_at)
    if style == "datetime":
        return moment.strftime("%Y-%m-%d %H:%M")
    if style == "cn":
        return moment.strftime("%Y年%m月%d日")
    return moment.strftime("%Y-%m-%d")


def list_date(published_at: str) -> str:
    return parse_iso(published_at).strftime("%Y-%m-%d")


def article_path(channel: Channel, created: datetime, aid: int) -> str:
    local = created.astimezone(PORTAL_TZ)
    return f"/news/{channel.slug}/{local:%Y}/{local:%m%d}/{aid}.html"
