"""One run under cProfile, inside the crawling process (the bench runs this in a subprocess).

    python -m bench.profile_crawl crawl URL --db URL --out FILE.pstats [--revisit all] [--incremental] [--no-conditional]
    python -m bench.profile_crawl bare URL --out FILE.pstats

`crawl` runs what `portal-archive crawl --no-gap-probes` runs with those
options (ops.crawl.run_crawl, the same plan, the environment's
settings), minus the CLI's option parsing; the archive must already be at
the newest schema (`portal-archive db upgrade`). `bare` is the baseline spider.
The last line of stdout is the run's summary as JSON.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import resource
from dataclasses import asdict


def profiled(out: str, function, *args):
    """function(*args) under cProfile; the profile goes to `out` however the call ends."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return function(*args)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


def profile_crawl(base_url: str, db: str, out: str, revisit: str, incremental: bool, conditional: bool) -> dict:
    from ops.config import load_settings
    from ops.crawl import CrawlPlan, run_crawl
    from spiders.walk import ListWalk

    settings = load_settings().replace(base_url=base_url, db=db)
    plan = CrawlPlan(revisit=revisit, walk=ListWalk(mode="incremental" if incremental else "full"),
                     conditional=conditional, probe_gaps=False)
    summary = profiled(out, run_crawl, settings, plan)
    # The helper processes (spiders/helpers.py) are not under the profiler; they have been
    # waited for by now, so their CPU is this process's children's. The archive writer
    # reports its own in the run's stats; the rest is the reader's.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    writer_cpu_s = _run_stats(db, summary.id).get("archive/writer_cpu_s", 0.0)
    return {**asdict(summary), "reader_cpu_s": children.ru_utime + children.ru_stime - writer_cpu_s,
            "writer_cpu_s": writer_cpu_s}


def _run_stats(db: str, run_id: int) -> dict:
    from pipeline.archive.db import make_engine, session_scope
    from pipeline.archive.models import CrawlRun

    engine = make_engine(db)
    try:
        with session_scope(engine) as session:
            return dict(session.get(CrawlRun, run_id).stats or {})
    finally:
        engine.dispose()


def profile_bare(base_url: str, out: str, settings: dict) -> dict:
    from bench.bare_spider import crawl

    stats = profiled(out, crawl, base_url, settings)
    return {"pages_fetched": stats.get("downloader/response_count", 0), "status": stats.get("finish_reason")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["crawl", "bare"])
    parser.add_argument("base_url")
    parser.add_argument("--out", required=True)
    parser.add_argument("--db", help="The archive (crawl only).")
    parser.add_argument("--revisit", choices=["none", "all"], default="none")
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--no-conditional", action="store_true")
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                        help="An extra Scrapy setting for the bare spider (housekeeping).")
    args = parser.parse_args(argv)
    if args.what == "crawl":
        if not args.db:
            parser.error("crawl needs --db")
        result = profile_crawl(args.base_url, args.db, args.out, args.revisit, args.incremental,
                               not args.no_conditional)
    else:
        result = profile_bare(args.base_url, args.out, dict(item.split("=", 1) for item in args.set))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
