"""The crawl's counters: every stats key the crawl, the archive and the reports share, in one place.

Scrapy's stats collector holds them during a crawl (`area/event`, as Scrapy's own
`downloader/response_count`); crawl_runs.stats keeps them; health, status, the runs
page, the distributed workers and the benchmarks read them. Names and sums only:
every layer may import this module.
"""
from __future__ import annotations

from pipeline.archive.outcomes import SAW_CONTENT, WROTE_VERSION, Written

# Scrapy's own
REQUESTS = "downloader/request_count"  # every request sent: the request budget's ledger
RESPONSES = "downloader/response_count"
FINISH_REASON = "finish_reason"
# An exception a callback raised (Scrapy logs it and goes on): spider_exceptions/count and
# spider_exceptions/<its class>. Never the portal's doing (the reader keeps what it cannot read).
CALLBACK_RAISED = "spider_exceptions/"

# The archive stage (spiders/stages.py): archive/<Written> per item, and
ARCHIVE = "archive/"
ARCHIVE_ERROR = "archive/error"  # why the archive stopped the crawl
WRITER_CPU = "archive/writer_cpu_s"
DICTIONARY_TRAINED = "archive/dictionary_trained"  # the id of the raw-page dictionary trained mid-crawl
PAGES_RECOMPRESSED = "archive/pages_recompressed"  # stored before it, recompressed with it by the writer
DUPLICATES = "archive/duplicates"  # articles found to be copies of earlier ones
REPEATED = "dedupe/repeat_in_crawl"  # an aid read twice in one crawl, archived once

# Reading (the reader's records, counted by the spider)
READ_OK = "clean/ok"
READ_REJECTED = "clean/rejected"
READ_BY = "clean/extraction/"  # + profile | fallback
READ_FIELD = "clean/field/"  # + a content field an archived article has

# The spider
LIST_PAGES = "portal/list_pages"
FETCH_FAILED = "portal/fetch_failed"
BROKEN_RETRIED = "portal/broken_page_retried"
EXPECTED_PAGES = "portal/expected_pages"  # the progress display's total
LISTED_NEW = "portal/listed_new"
LIST_WALK_STOPPED = "portal/list_walk_stopped_early"
SKIPPED_DONE = "portal/skipped_done"  # a resumed backfill's articles already archived
CONDITIONAL = "portal/conditional_requests"
READER_RESTARTED = "portal/reader_restarted"
GAPS_PROBED = "gaps/probed"
GAPS_FOUND = "gaps/found"
RETRY_FAILED_LISTS = "retry/failed_lists"
# Distributed runs (spiders/frontier.py): in-flight requests of dead workers put back in the
# queue, and those a leaving worker gave back unfinished.
FRONTIER_RECLAIMED = "frontier/reclaimed"
FRONTIER_GIVEN_BACK = "frontier/given_back"

# The request budget (spiders.middlewares.RequestBudget, pipeline/archive/budget.py)
BUDGET_ALLOWANCE = "budget/allowance"
BUDGET_SPENT = "budget/spent"
SPENT = "budget/spent/"  # + robots | list | new | retry | revisit | probe
LEFT = "budget/left/"  # requests not sent for lack of budget, + kind

# The revisit plan (pipeline/archive/revisit.py): revisit/<figure>
REVISIT = "revisit/"

# What a distributed worker adds to its run's counters in Redis.
SUMMED_BY_WORKERS = (RESPONSES, REQUESTS, ARCHIVE, "portal/", "gaps/", "retry/", "budget/", CALLBACK_RAISED)


def archive(outcome: Written | str) -> str:
    return ARCHIVE + str(outcome)


def count(stats: dict, key: str) -> int:
    value = stats.get(key, 0)
    return int(value) if isinstance(value, (int, float)) else 0


def total(stats: dict, prefix: str) -> int:
    """The sum of every counter under a prefix (budget/left/, ...)."""
    return sum(int(v) for k, v in stats.items() if k.startswith(prefix) and isinstance(v, (int, float)))


def callbacks_raised(stats: dict) -> str | None:
    """Why a run whose callbacks raised cannot be trusted, or None. A callback that raised left
    its page's work undone (the articles a list page led to, an article page's record), and
    nothing else in the stats shows it: the run must not pass for a success."""
    raised = count(stats, CALLBACK_RAISED + "count")
    if not raised:
        return None
    kinds = ", ".join(f"{key.removeprefix(CALLBACK_RAISED)} {int(n)}" for key, n in sorted(stats.items())
                      if key.startswith(CALLBACK_RAISED) and key != CALLBACK_RAISED + "count")
    return (f"{raised} page callbacks raised ({kinds}): a bug in the crawl; what those pages led to may be "
            "missing from the archive (the log has the tracebacks)")


def versions_written(stats: dict) -> int:
    return sum(count(stats, archive(o)) for o in WROTE_VERSION)


def articles_seen(stats: dict) -> int:
    return sum(count(stats, archive(o)) for o in SAW_CONTENT)


def unchanged(stats: dict) -> int:
    return count(stats, archive(Written.UNCHANGED)) + count(stats, archive(Written.NOT_MODIFIED))


def answered(stats: dict) -> int:
    """Items the archive recorded for the portal's answers (anything but a failed fetch)."""
    return sum(count(stats, archive(o)) for o in Written if o is not Written.FETCH_FAILED)


def read_counts(extraction: str | None, fields: dict | None) -> list[str]:
    """The keys to count for one page read: how it was read and which fields it has (a page
    rejected by cleaning: fields None)."""
    keys = []
    if extraction:
        keys.append(READ_BY + ("profile" if extraction == "profile" else "fallback"))
    if fields is None:
        keys.append(READ_REJECTED)
    else:
        keys.append(READ_OK)
        keys += [READ_FIELD + name for name, value in fields.items() if value]
    return keys
