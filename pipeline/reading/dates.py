"""Portal dates: `2025-05-07`, `2025-05-07 10:35`, `2025年05月07日`, with or without a `发布时间:` label."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

DATE_PATTERNS = (
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
               r"(?:[ T\u3000]+(?P<H>\d{1,2})[:：](?P<M>\d{2})(?:[:：](?P<S>\d{2}))?)?"),
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日"
               r"(?:\s*(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{2})\s*分?(?:\s*[:：]?\s*(?P<S>\d{2})\s*秒?)?)?"),
)


class DateParseError(ValueError):
    pass


def parse_portal_date(text: str | None, tz: str = "Asia/Shanghai") -> datetime:
    """A timezone-aware datetime in the portal's zone; DateParseError if there is none."""
    if not text:
        raise DateParseError("no date on the page")
    for pattern in DATE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        parts = {k: int(v) for k, v in match.groupdict(default="0").items()}
        try:
            return datetime(parts["y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"],
                            tzinfo=ZoneInfo(tz))
        except ValueError as exc:
            raise DateParseError(f"impossible date {match.group(0)!r}: {exc}") from None
    raise DateParseError(f"no date found in {text.strip()[:60]!r}")
