"""A portal profile: the one place that knows the portal's selectors and URL patterns."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from w3lib.url import url_query_cleaner

PROFILES_DIR = Path(__file__).parent / "profiles"


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Channel:
    slug: str
    name: str
    typeid: int


@dataclass(frozen=True)
class Profile:
    name: str
    site_name: str
    timezone: str
    gb_family: tuple[str, ...]
    title_suffix: re.Pattern
    channels: tuple[Channel, ...]
    channel_root: str
    list_page: str
    mobile_url: str
    article_re: re.Pattern
    mobile_article_re: re.Pattern
    channel_list_re: re.Pattern
    tracking_params: tuple[str, ...]
    list: dict
    article: dict
    labels: dict
    origin_source_re: re.Pattern

    # --- channels -------------------------------------------------------
    def channel(self, key: str) -> Channel:
        """A channel by slug or by name; ProfileError names the known ones."""
        for ch in self.channels:
            if key in (ch.slug, ch.name):
                return ch
        known = ", ".join(f"{c.slug} ({c.name})" for c in self.channels)
        raise ProfileError(f"unknown channel {key!r}; known channels: {known}")

    def channel_root_url(self, base_url: str, channel: Channel) -> str:
        return urljoin(base_url, self.channel_root.format(slug=channel.slug, typeid=channel.typeid))

    def list_page_url(self, base_url: str, channel: Channel, page: int) -> str:
        if page <= 1:
            return self.channel_root_url(base_url, channel)
        return urljoin(base_url, self.list_page.format(slug=channel.slug, typeid=channel.typeid, page=page))

    def mobile_article_url(self, base_url: str, aid: int) -> str:
        return urljoin(base_url, self.mobile_url.format(aid=aid))

    # --- article URLs -----------------------------------------------------
    def aid_of(self, url: str) -> int | None:
        """The article id for any URL form of an article, else None."""
        parts = urlsplit(url)
        match = self.article_re.match(parts.path)
        if match:
            return int(match["aid"])
        match = self.mobile_article_re.match(f"{parts.path}?{parts.query}")
        if match:
            return int(match["aid"])
        return None

    def is_channel_list(self, url: str) -> bool:
        return bool(self.channel_list_re.match(urlsplit(url).path))

    def takedown_redirect(self, target: str, base_url: str) -> bool:
        """Whether an article URL redirecting to `target` (absolute) says the article is gone: the
        portal sends a taken-down article to its channel's list, or to the home page."""
        return self.is_channel_list(target) or target.rstrip("/") + "/" == base_url.rstrip("/") + "/"

    def clean_url(self, url: str) -> str:
        """The URL to request: no fragment, no tracking parameters.

        Desktop article pages ignore their query entirely, so it is dropped;
        the mobile form keeps only what names the article.
        """
        parts = urlsplit(url)
        if self.article_re.match(parts.path):
            return parts._replace(query="", fragment="").geturl()
        if self.mobile_article_re.match(f"{parts.path}?{parts.query}"):
            return url_query_cleaner(url, ("aid",))
        return url_query_cleaner(url, self.tracking_params, remove=True)


def _compile(pattern: str) -> re.Pattern:
    return re.compile(pattern)


@cache
def load_profile(name_or_path: str = "cpsia") -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(p.stem for p in PROFILES_DIR.glob("*.toml"))
        raise ProfileError(f"no portal profile {name_or_path!r} (known: {known})") from None
    urls = data["urls"]
    return Profile(
        name=data["name"],
        site_name=data["site_name"],
        timezone=data["timezone"],
        gb_family=tuple(data["gb_family"]),
        title_suffix=_compile(data["title_suffix_pattern"]),
        channels=tuple(Channel(**c) for c in data["channels"]),
        channel_root=urls["channel_root"],
        list_page=urls["list_page"],
        mobile_url=urls["mobile_url"],
        article_re=_compile(urls["article"]),
        mobile_article_re=_compile(urls["mobile_article"]),
        channel_list_re=_compile(urls["channel_list"]),
        tracking_params=tuple(urls["tracking_params"]),
        list=data["list"],
        article=data["article"],
        labels={k: v for k, v in data["labels"].items() if k != "origin_source"},
        origin_source_re=_compile(data["labels"]["origin_source"]),
    )
