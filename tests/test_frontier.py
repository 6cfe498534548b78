"""The distributed crawl's reliable frontier (spiders/frontier.py) on a real Redis server, without a crawl:
who owns what, what goes back to the queue when a worker dies, and what the dupefilter lets through."""
import uuid

import pytest
import redis
import scrapy
from scrapy.utils.test import get_crawler

from spiders.frontier import SEED, TOKEN, Frontier, Ownership, ReliableQueue


class Spider(scrapy.Spider):
    name = "portal"

    def parse(self, response):
        pass


@pytest.fixture
def client(redis_server):
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def base():
    return f"portal-archive:run:test-{uuid.uuid4().hex[:8]}"


def queue_of(client, base, worker):
    crawler = get_crawler(Spider, {"PORTAL_ARCHIVE_FRONTIER": base, "PORTAL_ARCHIVE_WORKER": worker})
    spider = Spider.from_crawler(crawler)
    return ReliableQueue(client, spider, f"{base}:requests")


def alive(client, frontier, worker):
    client.set(frontier.heartbeat_of(worker), "1", ex=30)


def test_a_popped_request_is_owned_until_done_and_survives_its_worker(client, base):
    a = queue_of(client, base, "a")
    b = queue_of(client, base, "b")
    alive(client, a.frontier, "a")
    alive(client, a.frontier, "b")
    a.push(scrapy.Request("http://127.0.0.1/list_1.html", priority=100))
    a.push(scrapy.Request("http://127.0.0.1/view.php?aid=7", priority=50, meta={"aid": 7}))
    request = a.pop()
    assert request.url.endswith("list_1.html") and request.meta[TOKEN]  # the higher priority first
    assert len(a) == 1 and a.frontier.pending() == 2  # one queued, one owned by a
    # b sees a alive: nothing to take back.
    assert b.frontier.reclaim() == 0
    client.delete(a.frontier.heartbeat_of("a"))  # a dies
    assert b.frontier.reclaim() == 1
    again = b.pop()
    assert again.url == request.url and again.priority == 100  # back with its priority, past the dupefilter
    b.frontier.done([again.meta[TOKEN]])
    assert b.frontier.pending() == 1
    assert client.smembers(a.frontier.owners) == {b"b"}


def test_the_push_marks_and_queues_in_one_step_and_a_successor_takes_over(client, base):
    q = queue_of(client, base, "a")
    article = scrapy.Request("http://127.0.0.1/view.php?aid=7", meta={"aid": 7})
    mobile = scrapy.Request("http://127.0.0.1/m/view.php?aid=7", meta={"aid": 7})
    q.push(article)
    q.push(mobile)  # the same article: marked already, not queued twice
    assert len(q) == 1
    assert q.frontier.seen("aid:7")
    popped = q.pop()
    retry = popped.replace(dont_filter=True, meta={**popped.meta, "retry_times": 1})
    q.push(retry)  # a retry is not filtered; queuing it settles what its first try owed
    assert not client.hlen(q.frontier.inflight)
    second = q.pop()
    assert second.meta["retry_times"] == 1 and len(q) == 0
    assert TOKEN.encode() not in second.meta[TOKEN]  # queued without its predecessor's entry


def test_seeds_are_owned_too_and_go_back_to_the_seed_list(client, base):
    f = Frontier(client, base, "a")
    other = Frontier(client, base, "b")
    client.rpush(f.seeds, b'{"kind": "list", "url": "u1"}', b'{"kind": "list", "url": "u2"}')
    taken = f.claim_seeds(5)
    assert len(taken) == 2 and client.hget(f.inflight, taken[0]) == SEED
    f.done(taken[:1])
    assert other.reclaim() == 1  # a never beat: dead
    assert client.lrange(f.seeds, 0, -1) == [taken[1]]


def test_items_settle_their_page_only_when_all_are_archived(client, base):
    f = Frontier(client, base, "a")
    client.zadd(f.queue, {b"page": 0, b"list": -100, b"repeat": 10})
    list_page, page, repeat = f.pop(), f.pop(), f.pop()
    owned = Ownership(f)
    owned.taken(list_page)
    owned.let_go(list_page)  # a list page: done when its callback is
    owned.taken(page)
    item, other = object(), object()
    owned.carries_item(page, item)
    owned.carries_item(page, other)
    owned.let_go(page)
    assert client.hkeys(f.inflight) == [repeat, page] or client.hkeys(f.inflight) == [page, repeat]
    owned.settled([item])
    owned.settled([other])
    assert client.hkeys(f.inflight) == [repeat]
    # The archive may be done with an item before its callback has resumed (an item that filled
    # a batch written in the crawl's process, a page read twice): the entry waits for both.
    owned.taken(repeat)
    seen_before = object()
    owned.carries_item(repeat, seen_before)
    owned.settled([seen_before])
    assert client.hkeys(f.inflight) == [repeat]
    owned.let_go(repeat)
    assert client.hlen(f.inflight) == 0 and f.pending() == 0


def test_a_list_page_is_not_done_before_the_next_page_it_yielded_is_queued(client, base):
    q = queue_of(client, base, "a")
    q.spider.ownership = owned = Ownership(q.frontier)
    q.push(scrapy.Request("http://127.0.0.1/list_1.html", priority=100))
    page = q.pop()
    token = page.meta[TOKEN]
    owned.taken(token)
    following = scrapy.Request("http://127.0.0.1/list_2.html", priority=100)
    owned.carries_request(token, following)
    owned.let_go(token)  # the callback has returned; Scrapy has not queued its request yet
    assert client.hkeys(q.frontier.inflight) == [token]
    q.push(following)
    assert client.hlen(q.frontier.inflight) == 0 and len(q) == 1
    assert q.pop().url.endswith("list_2.html")


def test_a_leaving_worker_gives_back_what_it_still_owns(client, base):
    f = Frontier(client, base, "a")
    alive(client, f, "a")
    client.zadd(f.queue, {b"page": -50})
    f.pop()
    assert f.release() == 1
    assert client.zrange(f.queue, 0, -1, withscores=True) == [(b"page", -50.0)]
