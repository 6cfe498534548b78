"""The portal spider on a shared Redis frontier (scrapy-redis), for `portal-archive worker`.

Workers take seeds (channel roots, known articles with their validators,
aids to probe) from the run's seed list, and share one scheduler queue and
one dupefilter. Article requests are deduplicated by aid across workers, so
the desktop, mobile and tracking forms of an article are fetched once per
run whichever worker meets them first.

What a worker takes it owns until it is done with it (spiders/frontier.py):
this spider tells the frontier when a callback has run to its end, and the
archive stage tells it when a batch is committed.

Scrapy 2.13 moved spiders to `async def start()`; scrapy-redis 0.9.1 still
feeds spiders through `start_requests()`/`next_requests()` and the idle
signal. This spider defines `start()` itself over `next_requests()`, and
its own idle rule (scrapy-redis measures idleness from import time).
"""
from __future__ import annotations

import json
import time
import warnings

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, ScrapyDeprecationWarning
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.spiders import RedisMixin

from pipeline.reading.records import Visit
from spiders.frontier import PARENT, TOKEN, Frontier, Ownership, fingerprint
from spiders.portal import PortalSpider
from spiders.stages import ARCHIVED
from spiders.walk import ListWalk

# scrapy-redis 0.9.1 still calls APIs Scrapy 2.19 deprecates (spider= on stats, Spider.log).
warnings.filterwarnings("ignore", category=ScrapyDeprecationWarning, module="scrapy_redis")


class AidDupeFilter(RFPDupeFilter):
    """One fingerprint per aid (spiders.frontier.fingerprint), and a filter that only looks: the
    queue's push marks a fingerprint in the same step that queues its request."""

    def request_fingerprint(self, request):
        return fingerprint(request)

    def request_seen(self, request):
        return bool(self.server.sismember(self.key, self.request_fingerprint(request)))


class DistributedPortalSpider(RedisMixin, PortalSpider):
    name = "portal"

    def __init__(self, *args, seeds_key: str, idle_seconds: float, **kwargs):
        super().__init__(*args, walk=ListWalk(mode=kwargs.pop("walk_mode", "full")), **kwargs)
        self.redis_key = seeds_key
        self.idle_seconds = idle_seconds
        self.last_active = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        settings = crawler.settings
        spider.frontier = Frontier(spider.server, settings["PORTAL_ARCHIVE_FRONTIER"],
                                   settings["PORTAL_ARCHIVE_WORKER"])
        spider.ownership = Ownership(spider.frontier)
        crawler.signals.connect(spider._active, signal=signals.response_received)
        crawler.signals.connect(spider.ownership.settled, signal=ARCHIVED)
        # An item the stage raised on, or dropped, will never be committed: its page is done with
        # (Scrapy logs why), or the worker would wait for it forever.
        for signal in (signals.item_error, signals.item_dropped):
            crawler.signals.connect(spider._item_lost, signal=signal)
        crawler.signals.connect(spider._not_queued, signal=signals.request_dropped)
        return spider

    def _active(self, *args, **kwargs):
        self.last_active = time.monotonic()

    def _item_lost(self, item, **kwargs):
        self.ownership.settled([item])

    def _not_queued(self, request, spider=None):
        """A request the dupefilter turned away: someone else has it. Made from a seed, the seed is
        done; yielded by a callback, it no longer holds that callback's entry."""
        self.frontier.done([request.meta.pop(TOKEN, None)])
        self.ownership.let_go(request.meta.pop(PARENT, None))

    async def start(self):
        for request in self.next_requests():
            yield request

    def next_requests(self):
        """Requests from the run's seeds, each seed owned by this worker until its request is queued."""
        for data in self.frontier.claim_seeds(self.redis_batch_size):
            request = self.make_request_from_data(data)
            if request is None:
                self.frontier.done([data])
                continue
            request.meta[TOKEN] = data
            yield request

    def article_request(self, target, probe=False, aid=None):
        request = super().article_request(target, probe, aid)
        # The shared dupefilter decides (by aid); the local set only spares Redis a round trip.
        return request.replace(dont_filter=False) if request is not None else None

    def make_request_from_data(self, data):
        seed = json.loads(data)
        if seed["kind"] == "list":
            return self.list_request(seed["url"], seed.get("page", 1), kind=seed.get("budget", "list"))
        return self.article_request(Visit(seed["url"], seed.get("etag"), seed.get("last_modified"),
                                            kind=seed.get("budget", "revisit")),
                                    probe=seed.get("probe", False))

    # --- done with a request: its callback (or errback) ran to its end, what it yielded is queued,
    # and its items are archived (spiders/frontier.py, Ownership) ---------------------------------
    # A callback that raises is done too (Scrapy logs it): owning its request on would only
    # have it fail again in another worker, and keep the run from ending.
    async def parse_list(self, response):
        async for output in self._owned(super().parse_list(response), response.meta.get(TOKEN)):
            yield output

    async def parse_article(self, response):
        async for output in self._owned(super().parse_article(response), response.meta.get(TOKEN)):
            yield output

    async def _owned(self, outputs, token):
        self.ownership.taken(token)
        try:
            async for output in outputs:
                self._carry(token, output)
                yield output
        except Exception:
            self.ownership.let_go(token)
            raise
        self.ownership.let_go(token)

    def on_error(self, failure):
        token = failure.request.meta.get(TOKEN)
        self.ownership.taken(token)
        try:
            for output in super().on_error(failure):
                self._carry(token, output)
                yield output
        except Exception:
            self.ownership.let_go(token)
            raise
        self.ownership.let_go(token)

    def _carry(self, token, output) -> None:
        if isinstance(output, Request):
            self.ownership.carries_request(token, output)
        else:
            self.ownership.carries_item(token, output)

    def spider_idle(self):
        if self.frontier.pending() > 0:
            # Queued work, or work another worker owns (and may yet give back by dying).
            self.last_active = time.monotonic()
        self.schedule_next_requests()
        if time.monotonic() - self.last_active >= self.idle_seconds:
            return  # idle long enough: let the worker close
        raise DontCloseSpider
