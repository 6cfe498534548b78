"""Retries that back off: Scrapy retries at once, which hammers a portal that is already struggling."""
from __future__ import annotations

import asyncio


class RetryBackoff:
    """Delays a retried request by base * 2^(n-1) seconds before it is downloaded again."""

    def __init__(self, base: float):
        self.base = base

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getfloat("RETRY_BACKOFF_BASE", 0.5))

    async def process_request(self, request):
        retries = request.meta.get("retry_times", 0)
        if retries and self.base > 0:
            await asyncio.sleep(self.base * 2 ** (retries - 1))
        return None
