"""Portal dates: `2025-05-07`, `2025-05-07 10:35`, `2025年05月07日`, with or without a `发布时间:` label.

A date without an offset is the portal's local time. A date that carries its own
offset (`2018-10-17T23:30:00-04:00`, `…Z`: structured data on pages the fallback
reads) keeps it: moving it into the portal's zone would move the day.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

DATE_PATTERNS = (
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
               r"(?:[ T\u3000]+(?P<H>\d{1,2})[:：](?P<M>\d{2})(?:[:：](?P<S>\d{2})(?:\.\d+)?)?"
               r"(?:\s?(?P<tz>Z|[+-]\d{2}:?\d{2})(?![\d:]))?)?"),
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日"
               r"(?:\s*(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{2})\s*分?(?:\s*[:：]?\s*(?P<S>\d{2})\s*秒?)?)?"),
)
NUMBERS = ("y", "m", "d", "H", "M", "S")


class DateParseError(ValueError):
    pass


def find_date(text: str, start: int = 0) -> re.Match | None:
    """The first date in `text` (from `start`) in any of the portal's forms."""
    best = None
    for pattern in DATE_PATTERNS:
        match = pattern.search(text, start)
        if match and (best is None or match.start() < best.start()):
            best = match
    return best


def offset_of(match: re.Match) -> timezone | None:
    """The offset a date carries itself (`Z`, `+08:00`, `-0400`), or None."""
    value = match.groupdict().get("tz")
    # Only in the ISO form structured data writes (`T`, or seconds): `09:00-11:30` is a time range.
    if not value or not (match["S"] or "T" in match.group(0)):
        return None
    if value == "Z":
        return timezone.utc
    sign = -1 if value[0] == "-" else 1
    digits = value[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_portal_date(text: str | None, tz: str = "Asia/Shanghai") -> datetime:
    """A timezone-aware datetime: in the date's own offset when it has one, else in the portal's
    zone; DateParseError if there is none."""
    if not text:
        raise DateParseError("no date on the page")
    for pattern in DATE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        parts = {k: int(match[k] or 0) for k in NUMBERS}
        try:
            return datetime(parts["y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"],
                            tzinfo=offset_of(match) or ZoneInfo(tz))
        except ValueError as exc:
            raise DateParseError(f"impossible date {match.group(0)!r}: {exc}") from None
    raise DateParseError(f"no date found in {text.strip()[:60]!r}")
