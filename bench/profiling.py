"""`python -m bench --profile`: where the time per page goes, crawl against baseline.

One crawl of the first size's replica (default 5,000 articles) runs under
cProfile inside the crawling process (bench/profile_crawl.py), then the two
revisits of that archive (conditional and not), and one run of the bare
spider. Each also runs once without the profiler, so the reports can say
how much cProfile inflated the figures. The reports
(bench/results/profile-{bare,crawl,revisit-conditional,revisit-unconditional}-N.txt,
with the raw .pstats beside them) hold the time per page by area, the
project's own functions by inclusive time, and the top functions by
cumulative and by total (own) time.

Areas partition the profiled time: a Python function belongs to the area of
its module; a C function (zstd, zlib, sqlite3, lxml, nh3 have areas of their own)
or a standard-library helper is charged to the areas of its callers, in
proportion to the time each caller spent in it.
"""
from __future__ import annotations

import io
import json
import pstats
import re
import shutil
import site
import sys
import sysconfig
from collections import defaultdict
from pathlib import Path

from bench import FAST_ENV
from bench.measure import BenchFailure, run_checked
from bench.nginx import NginxServer
from bench.sites import build_site
from bench.truth import check_archive, export_versions

RESULTS = Path(__file__).resolve().parent / "results"
TOP = 40

# (area, substrings of the file path or of a C function's name); first match wins.
IDLE = "idle: waiting for the network (wall time, not CPU)"
AREAS = (
    (IDLE, ("'poll' of 'select", "'select' of 'select", "epoll")),
    ("compression (zstd, zlib)", ("zstd", "zlib", "/pipeline/reading/compression.py")),
    ("hashing (sha256, blake2b)", ("_hashlib", "blake2b", "sha256", "'hexdigest'", "'digest'")),
    ("database (SQLAlchemy, sqlite3, archive stage)",
     ("/sqlalchemy/", "sqlite3", "/pipeline/archive/", "/spiders/stages.py", "/ops/lease.py", "/ops/crawl.py",
      "/ops/crawl_archive.py")),
    ("cleaning (nh3, text and date rules)",
     ("nh3", "/pipeline/reading/clean.py", "/pipeline/reading/html.py", "/pipeline/reading/text.py",
      "/pipeline/reading/dates.py", "/zoneinfo/")),
    ("dedupe (fingerprints, content hash input)", ("/pipeline/reading/fingerprint.py",)),
    ("decoding (GB18030)", ("/pipeline/reading/decode.py", "/encodings/")),
    ("parsing (lxml, parsel, cssselect, extraction)",
     ("lxml", "/parsel/", "/cssselect/", "/pipeline/reading/", "/bench/bare_spider.py")),
    ("spider logic (URL rules, requests, items)", ("/spiders/",)),
    ("logging", ("/logging/",)),
    ("startup (imports, schema, settings)", ("importlib", "/alembic/", "/ops/config.py", "marshal",
                                             "/mako/", "/tomllib/")),
    ("Scrapy + Twisted stack (engine, downloader, HTTP, middlewares, signals)",
     ("/scrapy/", "/twisted/", "/asyncio/", "/w3lib/", "/zope/", "/pydispatch/", "/itemadapter/",
      "/tldextract/", "/queuelib/", "/protego/", "/incremental/")),
)
OTHER = "other"
# Where a function's own time is charged to its callers instead.
STDLIB = sysconfig.get_paths()["stdlib"]
SITE = tuple(site.getsitepackages())


def _direct_area(func: tuple) -> str | None:
    filename, _, name = func
    where = filename if filename != "~" else name
    for area, needles in AREAS:
        if any(n in where for n in needles):
            return area
    if filename == "~" or (filename.startswith(STDLIB) and not filename.startswith(SITE)):
        return None  # charged to callers
    return OTHER


def areas(stats: pstats.Stats) -> dict[str, float]:
    """Own time (s) per area, summing to the profile's total."""
    raw = stats.stats  # func -> (cc, nc, tottime, cumtime, callers{func: (cc, nc, tt, ct)})
    resolved: dict[tuple, dict[str, float]] = {}

    def shares(func: tuple, depth: int = 0) -> dict[str, float]:
        """Fractions of func's own time per area."""
        if func in resolved:
            return resolved[func]
        area = _direct_area(func)
        if area is not None or depth > 12 or func not in raw:
            result = {area or OTHER: 1.0}
        else:
            resolved[func] = {OTHER: 1.0}  # cycle guard
            callers = raw[func][4]
            # Charge by the time each caller spent in func; by call counts if no time was measured.
            column = 2 if sum(edge[2] for edge in callers.values()) else 1
            total = sum(edge[column] for edge in callers.values())
            result = defaultdict(float)
            if not total:
                result[OTHER] = 1.0
            for caller, edge in callers.items():
                for a, f in shares(caller, depth + 1).items():
                    result[a] += edge[column] / total * f
            result = dict(result)
        resolved[func] = result
        return result

    out: dict[str, float] = defaultdict(float)
    for func, (_, _, tottime, _, _) in raw.items():
        for area, fraction in shares(func).items():
            out[area] += tottime * fraction
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _short(text: str) -> str:
    for prefix in sorted(SITE, key=len, reverse=True):
        text = text.replace(prefix + "/", "")
    return text.replace(str(Path(__file__).resolve().parent.parent) + "/", "").replace(STDLIB + "/", "")


def own_functions(stats: pstats.Stats, pages: int, limit: int = 30) -> list[str]:
    """The project's functions (spiders/, pipeline/) by inclusive time."""
    rows = [(ct, nc, func) for func, (_, nc, _, ct, _) in stats.stats.items()
            if re.search(r"/(spiders|pipeline|bench)/", func[0])]
    rows.sort(reverse=True)
    return [f"{ct / pages * 1000:9.3f} ms/page {ct:8.2f} s {nc:>8} calls  {_short(func[0])}:{func[1]}({func[2]})"
            for ct, nc, func in rows[:limit]]


READER = "reader process (decoding, parsing, cleaning; not profiled, CPU as measured)"
WRITER = "archive writer process (the database; not profiled, CPU as measured)"


def report_text(title: str, pstats_file: Path, pages: int, plain: dict, profiled: dict,
                reader_cpu_s: float = 0.0, writer_cpu_s: float = 0.0) -> tuple[str, dict]:
    stats = pstats.Stats(str(pstats_file))
    total = stats.total_tt
    by_area = areas(stats)
    idle = by_area.get(IDLE, 0.0)
    # cProfile times by the wall clock; without the idle wait that is the
    # process's CPU (the crawl is CPU-bound), so this scales it back to a plain run.
    # The plain run's CPU includes the helper processes', which the profile does not
    # see: it is taken out here and shown as areas of their own.
    helpers = {READER: reader_cpu_s, WRITER: writer_cpu_s}
    own_cpu = max(plain["cpu_s"] - reader_cpu_s - writer_cpu_s, 0.0)
    scale = own_cpu / (total - idle) if total > idle else 1.0
    lines = [
        title,
        "",
        f"pages fetched: {pages}",
        f"without the profiler: {plain['wall_s']:.1f} s wall, {plain['cpu_s']:.1f} s CPU = "
        f"{plain['cpu_s'] / pages * 1000:.2f} ms CPU/page, {pages / plain['wall_s']:.0f} pages/s",
        f"under cProfile:       {profiled['wall_s']:.1f} s wall, {profiled['cpu_s']:.1f} s CPU; "
        f"profiled time {total:.1f} s = {total / pages * 1000:.2f} ms/page",
        f"cProfile inflates CPU by {1 / scale:.2f}x; 'est. ms/page' scales each busy area back by {scale:.2f}",
        "(the inflation is larger for many small Python calls than for long C calls)",
        "",
        "Own time by area (C functions and stdlib helpers charged to their callers):",
        f"{'area':<72} {'share':>6} {'ms/page':>8} {'est. ms/page':>12}",
    ]
    for area, seconds in by_area.items():
        estimate = seconds / pages * 1000 * (scale if area != IDLE else 1.0)
        lines.append(f"{area:<72} {seconds / total:6.1%} {seconds / pages * 1000:8.3f} {estimate:12.3f}")
    for helper, cpu_s in helpers.items():
        if cpu_s:
            lines.append(f"{helper:<72} {'':>6} {'':>8} {cpu_s / pages * 1000:12.3f}")
    lines += ["", "The project's functions by inclusive time (under cProfile):", *own_functions(stats, pages)]
    for order, heading in (("cumulative", "by cumulative time"), ("tottime", "by total (own) time")):
        buffer = io.StringIO()
        pstats.Stats(str(pstats_file), stream=buffer).sort_stats(order).print_stats(TOP)
        body = buffer.getvalue()
        body = body[body.find("   ncalls"):] if "   ncalls" in body else body
        lines += ["", f"Top {TOP} functions {heading}:", _short(body).rstrip()]
    summary = {"pages": pages, "profiled_s": total, "cpu_inflation": 1 / scale,
               "plain_cpu_ms_per_page": plain["cpu_s"] / pages * 1000,
               "areas_ms_per_page_est": {a: s / pages * 1000 * (scale if a != IDLE else 1.0)
                                         for a, s in by_area.items()}}
    for helper, cpu_s in helpers.items():
        if cpu_s:
            summary["areas_ms_per_page_est"][helper] = cpu_s / pages * 1000
    return "\n".join(lines) + "\n", summary


KINDS = {  # what each profiled run is; the revisits revisit the crawl's archive, nothing changed
    "bare": ("bare Scrapy spider (baseline)", []),
    "crawl": ("portal-archive crawl (full pipeline)", ["--revisit", "none"]),
    "revisit-conditional": ("portal-archive crawl --revisit all --incremental (conditional requests)",
                            ["--revisit", "all", "--incremental"]),
    "revisit-unconditional": ("portal-archive crawl --revisit all --incremental --no-conditional",
                              ["--revisit", "all", "--incremental", "--no-conditional"]),
}


def profile(args, workdir: Path, env: dict) -> int:
    from replica import expected_articles

    size = args.sizes[0]
    site_ = build_site(size, args.seed, workdir / "site")
    crawl_env = {**env, **FAST_ENV, "PORTAL_ARCHIVE_OBEY_ROBOTS": "false", "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
    timeout = 600 + site_.pages / 5
    jobs = f"REMOTE_CONTROL_JOBS_DIR={workdir / 'scrapy-jobs'}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    summaries = {}
    with NginxServer(site_.www) as server:
        expected = expected_articles(site_.state, server.url)

        def measured(kind: str, profiled: bool) -> tuple[dict, dict]:
            db = f"sqlite:///{workdir / f'archive-{profiled}.sqlite'}"  # one per mode, crawled then revisited
            options = KINDS[kind][1]
            if kind == "crawl":
                run_checked([sys.executable, "-m", "ops.cli", "db", "upgrade", "--db", db], env=crawl_env,
                            timeout=300, what="portal-archive db upgrade")
            if kind == "bare":
                argv = ([sys.executable, "-m", "bench.profile_crawl", "bare", "--out", str(workdir / "bare.pstats")]
                        if profiled else [sys.executable, "-m", "bench.bare_spider"]) + [server.url, "-s", jobs]
            elif profiled:
                argv = [sys.executable, "-m", "bench.profile_crawl", "crawl", server.url, "--db", db,
                        "--out", str(workdir / f"{kind}.pstats"), *options]
            else:
                argv = [sys.executable, "-m", "ops.cli", "crawl", "--base-url", server.url, "--db", db,
                        *options, "--no-gap-probes"]
            result = run_checked(argv, env=env if kind == "bare" else crawl_env, timeout=timeout,
                                 what=f"{kind} ({'profiled' if profiled else 'plain'})", log=workdir / f"{kind}.log")
            if kind != "bare":
                rows = export_versions(db, env=env, timeout=timeout)
                check_archive(rows, expected)  # and so the revisits wrote no version either
            info = json.loads(result.stdout.strip().splitlines()[-1]) if profiled else {}
            return {"wall_s": result.wall_s, "cpu_s": result.cpu_s}, info

        for kind, (what, _) in KINDS.items():
            print(f"profiling {kind} over {size} articles ...", file=sys.stderr, flush=True)
            plain, _ = measured(kind, profiled=False)
            profiled, info = measured(kind, profiled=True)
            pages = info.get("pages_fetched", 0)
            if kind in ("bare", "crawl") and pages != site_.pages:
                raise BenchFailure(f"the profiled {kind} run fetched {pages} of {site_.pages} pages")
            if kind != "bare" and info.get("versions_written", 0) != (site_.article_pages if kind == "crawl" else 0):
                raise BenchFailure(f"the profiled {kind} run wrote {info.get('versions_written')} versions")
            title = f"python -m bench --profile: {what}, replica of {size} articles served by nginx, seed {args.seed}"
            text, summaries[kind] = report_text(title, workdir / f"{kind}.pstats", pages, plain, profiled,
                                                reader_cpu_s=info.get("reader_cpu_s", 0.0),
                                                writer_cpu_s=info.get("writer_cpu_s", 0.0))
            path = RESULTS / f"profile-{kind}-{size}.txt"
            path.write_text(text, "utf-8")
            # The raw profile too, for snakeviz / pstats (bench/results/ is not committed).
            shutil.copyfile(workdir / f"{kind}.pstats", RESULTS / f"profile-{kind}-{size}.pstats")
            print(f"wrote {_short(str(path))}", file=sys.stderr)
    (RESULTS / f"profile-{size}.json").write_text(json.dumps(summaries, indent=1) + "\n")
    print(compare(summaries))
    return 0


def compare(summaries: dict) -> str:
    """Every run's estimated ms/page per area, side by side."""
    kinds = list(summaries)
    names = sorted({a for k in kinds for a in summaries[k]["areas_ms_per_page_est"]},
                   key=lambda a: -max(summaries[k]["areas_ms_per_page_est"].get(a, 0) for k in kinds))
    width = max(len(k) for k in kinds) + 1
    lines = ["CPU ms per page without the profiler: " + ", ".join(
                 f"{k} {summaries[k]['plain_cpu_ms_per_page']:.2f}" for k in kinds),
             f"{'area: estimated ms/page (cProfile inflation removed)':<72}"
             + "".join(f"{k:>{width}}" for k in kinds)]
    for name in names:
        lines.append(f"{name:<72}" + "".join(
            f"{summaries[k]['areas_ms_per_page_est'].get(name, 0):{width}.3f}" for k in kinds))
    return "\n".join(lines)
