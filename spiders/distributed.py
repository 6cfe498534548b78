"""The portal spider on a shared Redis frontier (scrapy-redis), for `portal-archive worker`.

Workers pop seeds (channel roots, known articles with their validators,
aids to probe) from the run's seed list, and share one scheduler queue and
one dupefilter. Article requests are deduplicated by aid across workers, so
the desktop, mobile and tracking forms of an article are fetched once per
run whichever worker meets them first.

Scrapy 2.13 moved spiders to `async def start()`; scrapy-redis 0.9.1 still
feeds spiders through `start_requests()`/`next_requests()` and the idle
signal. This spider defines `start()` itself over `next_requests()`, and
its own idle rule (scrapy-redis measures idleness from import time).
"""
from __future__ import annotations

import json
import time
import warnings

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, ScrapyDeprecationWarning
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.spiders import RedisMixin

from pipeline.reading.records import Visit
from spiders.portal import PortalSpider
from spiders.walk import ListWalk

# scrapy-redis 0.9.1 still calls APIs Scrapy 2.19 deprecates (spider= on stats, Spider.log).
warnings.filterwarnings("ignore", category=ScrapyDeprecationWarning, module="scrapy_redis")


class AidDupeFilter(RFPDupeFilter):
    """Article requests are the same request whatever URL form they use: one fingerprint per aid."""

    def request_fingerprint(self, request):
        aid = request.meta.get("aid")
        if aid is not None:
            return f"aid:{aid}"
        return super().request_fingerprint(request)


class DistributedPortalSpider(RedisMixin, PortalSpider):
    name = "portal"

    def __init__(self, *args, seeds_key: str, idle_seconds: float, frontier_size=None, **kwargs):
        super().__init__(*args, walk=ListWalk(mode=kwargs.pop("walk_mode", "full")), **kwargs)
        self.redis_key = seeds_key
        self.idle_seconds = idle_seconds
        self.frontier_size = frontier_size or (lambda: 0)
        self.last_active = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        crawler.signals.connect(spider._active, signal=signals.response_received)
        return spider

    def _active(self, *args, **kwargs):
        self.last_active = time.monotonic()

    async def start(self):
        for request in self.next_requests():
            yield request

    def article_request(self, target, probe=False):
        request = super().article_request(target, probe)
        # The shared dupefilter decides (by aid); the local set only spares Redis a round trip.
        return request.replace(dont_filter=False) if request is not None else None

    def make_request_from_data(self, data):
        seed = json.loads(data)
        if seed["kind"] == "list":
            return self.list_request(seed["url"], seed.get("page", 1), kind=seed.get("budget", "list"))
        return self.article_request(Visit(seed["url"], seed.get("etag"), seed.get("last_modified"),
                                            kind=seed.get("budget", "revisit")),
                                    probe=seed.get("probe", False))

    def spider_idle(self):
        if self.count_size(self.redis_key) > 0 or self.frontier_size() > 0:
            self.last_active = time.monotonic()
        self.schedule_next_requests()
        if time.monotonic() - self.last_active >= self.idle_seconds:
            return  # idle long enough: let the worker close
        raise DontCloseSpider
