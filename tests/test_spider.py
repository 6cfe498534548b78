"""The spider's rules on saved responses: no network, no database (the city-scrapers pattern).

Each test builds the response a fetch would have given (from a recorded page under
tests/files/, or a bare status and headers), hands it to the spider's callback and
reads what comes out: requests, or the archive's records.
"""
import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from pipeline.reading.records import ArticleGone, ArticleNotModified, CleanArticle, FetchFailed, Rejected, Visit
from spiders.portal import PortalSpider
from spiders.reader import PageReader
from spiders.walk import ListWalk

FILES = Path(__file__).parent / "files"
BASE = "http://portal.test/"
ARTICLE = BASE + "news/djyd/2025/0507/12873.html"
LIST = BASE + "news/djyd/"
GB = {"Content-Type": "text/html; charset=gb2312"}


def make_spider(**kwargs) -> PortalSpider:
    crawler = get_crawler(PortalSpider, {"RETRY_TIMES": 2})
    return PortalSpider.from_crawler(crawler, base_url=BASE, reader=PageReader(processes=0), **kwargs)


def collect(outputs) -> list:
    async def drain():
        return [x async for x in outputs]
    return asyncio.run(drain())


def response(url: str, body: bytes = b"", status: int = 200, headers: dict | None = None, **meta):
    request = Request(url, meta=meta)
    return HtmlResponse(url, status=status, body=body, headers=headers or GB, request=request)


def list_page(spider, body: bytes | None = None, **meta):
    raw = (FILES / "list-djyd-1.html").read_bytes() if body is None else body
    return collect(spider.parse_list(response(LIST, raw, **{"page": 1, "quiet": 0, **meta})))


def article_page(spider, url=ARTICLE, body: bytes | None = None, status=200, headers=None, **meta):
    raw = (FILES / "article-12873.html").read_bytes() if body is None else body
    aid = spider.profile.aid_of(url)
    answer = response(url, raw, status, headers, aid=aid, **meta) if raw else \
        Response(url, status=status, headers=headers or {}, request=Request(url, meta={"aid": aid, **meta}))
    return collect(spider.parse_article(answer))


def listed_aids(spider) -> list[int]:
    outputs = list_page(make_spider())
    return [r.meta["aid"] for r in outputs if isinstance(r, Request) and "aid" in r.meta]


# --- list pages ----------------------------------------------------------------------------

def test_a_list_page_asks_only_for_the_articles_the_archive_does_not_hold():
    listed = listed_aids(make_spider())
    known = set(listed[:2])
    spider = make_spider(known_aids=lambda aids: {a for a in aids if a in known})
    outputs = list_page(spider)
    articles = [r for r in outputs if isinstance(r, Request) and "aid" in r.meta]
    assert [r.meta["aid"] for r in articles] == listed[2:]
    assert all(r.meta["budget"] == "new" and r.priority == 50 for r in articles)
    assert not any("If-None-Match" in r.headers for r in articles)  # new articles: nothing to validate
    following = [r for r in outputs if isinstance(r, Request) and "aid" not in r.meta]
    assert [r.url for r in following] == [BASE + "news/djyd/list_3_2.html"] and following[0].priority == 100
    assert spider.listed_new == set(listed[2:])


def test_an_incremental_walk_stops_at_a_page_with_nothing_new():
    listed = set(listed_aids(make_spider()))
    spider = make_spider(walk=ListWalk(mode="incremental", slack=0),
                         known_aids=lambda aids: {a for a in aids if a in listed})
    outputs = list_page(spider)
    assert [o for o in outputs if isinstance(o, Request)] == []
    assert spider.crawler.stats.get_value("portal/list_walk_stopped_early") == 1


def test_a_broken_list_page_is_fetched_again_then_recorded_as_failed():
    cut = (FILES / "list-djyd-1.html").read_bytes()[:3000]  # the connection dropped mid-page
    (retry,) = list_page(make_spider(), cut)
    assert isinstance(retry, Request) and retry.url == LIST and retry.meta["retry_times"] == 1
    (failed,) = list_page(make_spider(), cut, retry_times=2)
    assert isinstance(failed, FetchFailed) and failed.aid is None and "truncated page" in failed.reason


# --- article pages -------------------------------------------------------------------------

def test_an_article_page_comes_back_as_the_archives_record_read_once():
    spider = make_spider()
    outputs = article_page(spider)
    article = outputs[0]
    assert isinstance(article, CleanArticle) and article.aid == 12873 and article.title.startswith("部市共建")
    assert article.page.raw() == (FILES / "article-12873.html").read_bytes() and article.content_hash
    # Its related links are a second path to articles the lists may have shifted away: new ones only.
    follows = [o for o in outputs[1:] if isinstance(o, Request)]
    assert follows and all(r.meta["budget"] == "new" for r in follows)
    # How it was read is tallied, and in the run's stats once the spider closes.
    spider.closed("finished")
    assert spider.crawler.stats.get_value("clean/ok") == 1
    assert spider.crawler.stats.get_value("clean/extraction/profile") == 1


def test_related_links_to_known_articles_are_left_to_the_revisit_plan():
    spider = make_spider(known_aids=set)
    outputs = article_page(spider)
    assert [o for o in outputs if isinstance(o, Request)] == []


def test_a_304_is_an_unchanged_article_and_a_404_a_gone_one():
    (unchanged,) = article_page(make_spider(), body=b"", status=304)
    assert isinstance(unchanged, ArticleNotModified) and unchanged.aid == 12873
    (gone,) = article_page(make_spider(), body=b"<html>gone</html>", status=404)
    assert isinstance(gone, ArticleGone) and gone.reason == "HTTP 404" and gone.raw == b"<html>gone</html>"


def test_a_redirect_to_the_channel_is_a_takedown_and_to_another_article_a_move():
    (gone,) = article_page(make_spider(), body=b"", status=302, headers={"Location": "/news/djyd/"})
    assert isinstance(gone, ArticleGone) and gone.reason.startswith("redirected to channel")
    moved = BASE + "news/djyd/2025/0508/12873.html"
    (follow,) = article_page(make_spider(), body=b"", status=301, headers={"Location": moved}, budget="revisit")
    assert isinstance(follow, Request) and follow.url == moved and follow.meta["budget"] == "revisit"


def test_a_cut_short_article_is_fetched_again_and_one_without_a_title_is_quarantined_at_once():
    page = (FILES / "article-12873.html").read_bytes()
    (retry,) = article_page(make_spider(), body=page[: len(page) // 2])
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    (given_up,) = article_page(make_spider(), body=page[: len(page) // 2], retry_times=2)
    assert isinstance(given_up, Rejected) and given_up.broken and given_up.reason.startswith("truncated page")
    assert given_up.page is not None and given_up.fields == {}
    untitled = page.replace(b"<h2>", b"<h3>").replace(b"</h2>", b"</h3>").replace(b"<title>", b"<x>") \
        .replace(b"</title>", b"</x>")
    (rejected,) = article_page(make_spider(fallback=False), body=untitled)
    assert isinstance(rejected, Rejected) and not rejected.broken and rejected.reason == "missing title"


# --- the order of a run's requests ----------------------------------------------------------

def test_under_a_budget_revisits_wait_until_the_list_walk_is_over():
    visits = [Visit(BASE + "news/hyzx/2025/0101/10001.html", etag='"a"')]
    spider = make_spider(revisit=visits, hold_revisits=True)

    async def run():
        start = spider.start()
        lists = [await anext(start) for _ in spider.channels]
        assert all(r.meta["budget"] == "list" for r in lists)
        waiting = asyncio.ensure_future(anext(start))
        await asyncio.sleep(0.05)
        assert not waiting.done(), "a revisit went out while the list pages were still being read"
        for _ in lists:
            spider._list_settled()
        revisit = await asyncio.wait_for(waiting, 1)
        assert revisit.meta["budget"] == "revisit" and revisit.headers[b"If-None-Match"] == b'"a"'
    asyncio.run(run())


def test_without_a_budget_revisits_go_out_beside_the_list_walk():
    visits = [Visit(BASE + "news/hyzx/2025/0101/10001.html")]
    spider = make_spider(revisit=visits, hold_revisits=False)

    async def run():
        return [r async for r in spider.start()]
    requests = asyncio.run(run())
    assert [r.meta["budget"] for r in requests] == ["list"] * len(spider.channels) + ["revisit"]


@pytest.mark.parametrize("kind, priority", [("revisit", 0), ("probe", 0), ("retry", 40)])
def test_a_planned_visit_carries_its_kind_for_the_budget(kind, priority):
    spider = make_spider()
    target = Visit(None, aid=10001, kind=kind) if kind == "probe" else Visit(ARTICLE, kind=kind)
    request = spider._visit(target)
    assert request.meta["budget"] == kind and request.priority == priority
    assert request.meta["probe"] == (kind == "probe")
    if kind == "probe":
        assert request.url.endswith("/m/view.php?aid=10001")


def test_times_are_utc():
    (unchanged,) = article_page(make_spider(), body=b"", status=304)
    assert unchanged.fetched_at.tzinfo == timezone.utc and unchanged.fetched_at <= datetime.now(timezone.utc)


def test_a_retry_waits_longer_and_gets_a_longer_timeout_up_to_four_times_the_setting():
    from spiders.middlewares import RetryBackoff

    crawler = get_crawler(settings_dict={"DOWNLOAD_TIMEOUT": 1.5, "RETRY_BACKOFF_BASE": 0.01})
    middleware = RetryBackoff.from_crawler(crawler)
    timeouts = []
    for retries in range(5):
        request = Request("http://portal.test/news/xydt/2025/0905/10926.html",
                          meta={"retry_times": retries} if retries else {})
        assert asyncio.run(middleware.process_request(request)) is None
        timeouts.append(request.meta.get("download_timeout"))
    # The first attempt keeps Scrapy's own (the setting); a page slower than it gets its chance.
    assert timeouts == [None, 3.0, 6.0, 6.0, 6.0]
