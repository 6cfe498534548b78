"""Crawl throughput: the full pipeline against a bare Scrapy crawl of the same nginx-served replica.

    python -m bench [--sizes 5000,20000] [--large] [--repeat 2] [--postgres URL] [-o FILE]
    python -m bench --profile

For each size it generates a replica, writes it as static files and serves
them with nginx on 127.0.0.1. Then, per repeat and alternating which goes
first: (a) the bare spider (bench/bare_spider.py); (b) `portal-archive
crawl` into a fresh SQLite archive, whose export is then checked against the
replica's ground truth; (c) two revisits of that whole archive with nothing
changed, with and without conditional requests, each of which must write
nothing. Every run is its own process; its wall time, CPU (user+sys) and peak
RSS come from wait4(2). Figures are medians (min–max) over the repeats;
ratios against (a) are taken per repeat, pair by pair, then summarised.
With --postgres URL, (b) and (c) run a second time into a fresh database
created on that server for each repeat (and dropped after it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import FAST_ENV, compile_checkout, report
from bench.measure import BenchFailure, Measured, Spawner, run_checked
from bench.nginx import NginxServer, nginx_binary
from bench.postgres import FreshDatabases, shown
from bench.sites import BenchSite, build_site
from bench.truth import check_archive, check_unchanged, export_versions

DEFAULT_SIZES = (5000, 20000)
LARGE_SIZE = 50000
PROFILE_SIZE = 5000
# 3 repeats of 5,000 + 20,000 took ~32 min on the shared 2-core build machine; 2 fit in ~21.
DEFAULT_REPEAT = 2
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"
# Bounds, not expectations: a run slower than 15 pages/s (10x below what
# this machine does under load) is killed and reported as a failure.
MIN_PAGES_PER_S = 15
START_ALLOWANCE_S = 120

# The crawl's environment: the baseline does not read robots.txt either, and
# no log lines per page (the crawl's own default is INFO, it logs little).
CRAWL_ENV = {**FAST_ENV, "PORTAL_ARCHIVE_OBEY_ROBOTS": "false", "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
REVISITS = {
    "revisit_conditional": ("--revisit", "all", "--incremental"),
    "revisit_unconditional": ("--revisit", "all", "--incremental", "--no-conditional"),
}
SUMMARY_COUNTS = ("pages", "articles seen", "new", "versions written", "unchanged", "taken down", "restored",
                  "duplicates linked", "quarantined", "failed fetches")


def timeout_for(pages: int) -> float:
    return START_ALLOWANCE_S + pages / MIN_PAGES_PER_S


def python_env() -> dict:
    """The environment for every child: the project importable, no stray archive settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_ARCHIVE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def sample(measured: Measured, pages: int, repeat: int, extra: dict | None = None) -> dict:
    if pages <= 0:
        raise BenchFailure(f"{measured.argv[2:4]} fetched no pages")
    return {
        "repeat": repeat,
        "pages": pages,
        "wall_s": measured.wall_s,
        "user_s": measured.user_s,
        "sys_s": measured.sys_s,
        "pages_per_s": pages / measured.wall_s,
        "cpu_s_per_1000_pages": measured.cpu_s / pages * 1000,
        "peak_rss_mib": measured.peak_rss_kib / 1024,
        "load1_before": os.getloadavg()[0],
        **(extra or {}),
    }


def parse_summary(stdout: str) -> dict:
    """The counts of `portal-archive crawl`'s summary line."""
    match = re.search(r"run (\d+) (\w+):", stdout)
    if not match:
        raise BenchFailure(f"no crawl summary in the output: {stdout[-500:]!r}")
    counts = {"run_id": int(match.group(1)), "status": match.group(2)}
    for name in SUMMARY_COUNTS:
        found = re.search(rf"(\d+) {name}\b", stdout)
        counts[name] = int(found.group(1)) if found else None
    return counts


def crawl_stats(db_url: str, run_id: int) -> dict:
    """Scrapy's stats as the crawl run recorded them (304s, Scrapy's own elapsed time)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            stats = conn.execute(text("select stats from crawl_runs where id = :id"), {"id": run_id}).scalar()
    finally:
        engine.dispose()
    return json.loads(stats) if isinstance(stats, str) else dict(stats or {})


class Bench:
    def __init__(self, args, workdir: Path, spawner: Spawner):
        self.args = args
        self.workdir = workdir
        self.env = python_env()
        self.spawner = spawner
        self.results: dict = {}
        self.postgres: FreshDatabases | None = None

    # --- the runs ---------------------------------------------------------
    def bare(self, site: BenchSite, server: NginxServer, repeat: int) -> dict:
        stats_file = self.workdir / "bare-stats.json"
        nginx_cpu = server.cpu_seconds()
        measured = run_checked(
            [sys.executable, "-m", "bench.bare_spider", server.url, "--stats", str(stats_file),
             # housekeeping, not performance: Scrapy 2.19's remote control writes its job
             # file into the user's state dir by default
             "-s", f"REMOTE_CONTROL_JOBS_DIR={self.workdir / 'scrapy-jobs'}"],
            env=self.env, timeout=timeout_for(site.pages), what="the bare spider",
            log=self.workdir / "bare.log", spawner=self.spawner)
        stats = json.loads(stats_file.read_text())
        pages = stats.get("downloader/response_count", 0)
        if pages != site.pages or stats.get("item_scraped_count") != site.pages:
            raise BenchFailure(f"the bare spider fetched {pages} pages and yielded {stats.get('item_scraped_count')} "
                               f"items; the replica has {site.pages} list and article pages")
        return sample(measured, pages, repeat, {"scrapy_elapsed_s": stats.get("elapsed_time_seconds"),
                                                "nginx_cpu_s": server.cpu_seconds() - nginx_cpu})

    def crawl(self, site: BenchSite, server: NginxServer, db: str, repeat: int, *options: str) -> tuple[dict, dict]:
        argv = [sys.executable, "-m", "ops.cli", "crawl", "--base-url", server.url]
        env = {**self.env, **CRAWL_ENV}
        if db.startswith("sqlite"):
            argv += ["--db", db]
        else:
            env["PORTAL_ARCHIVE_DB"] = db  # a password stays out of the process list
        argv += [*(options or ("--revisit", "none")), "--no-gap-probes"]
        nginx_cpu = server.cpu_seconds()
        measured = run_checked(argv, env=env, timeout=timeout_for(site.pages),
                               what=f"portal-archive crawl {' '.join(options)}", log=self.workdir / "crawl.log",
                               spawner=self.spawner)
        counts = parse_summary(measured.stdout)
        if counts["status"] != "succeeded":
            raise BenchFailure(f"the crawl did not succeed: {measured.stdout.strip()}")
        stats = crawl_stats(db, counts["run_id"])
        extra = {"summary": measured.stdout.strip().splitlines()[0],
                 "scrapy_elapsed_s": stats.get("elapsed_time_seconds"),
                 "responses_304": stats.get("downloader/response_status_count/304", 0),
                 "nginx_cpu_s": server.cpu_seconds() - nginx_cpu}
        return sample(measured, counts["pages"], repeat, extra), counts

    # --- one size -----------------------------------------------------------
    def run_size(self, size: int) -> dict:
        entry: dict = {"articles": size, "runs": {}}
        self.results["sizes"][str(size)] = entry
        started = time.perf_counter()
        site = build_site(size, self.args.seed, self.workdir / f"site-{size}")
        entry.update(pages=site.pages, list_pages=site.list_pages, site_bytes=site.bytes,
                     build_s=round(time.perf_counter() - started, 1))
        self.say(f"{size} articles: replica built ({site.pages} list and article pages, "
                 f"{site.bytes / 2**20:.0f} MiB) in {entry['build_s']} s")
        backends = ["sqlite"] + (["postgresql"] if self.postgres else [])
        with NginxServer(site.www) as server:
            from replica import expected_articles

            expected = expected_articles(site.state, server.url)
            entry["nginx_url"] = server.url
            for repeat in range(self.args.repeat):
                steps = ["bare", *backends]
                for step in steps if repeat % 2 == 0 else reversed(steps):
                    if step == "bare":
                        self.record(entry, "bare", self.bare(site, server, repeat))
                    elif step == "sqlite":
                        db = f"sqlite:///{self.workdir / f'archive-{size}-{repeat}.sqlite'}"
                        self.archive_runs(entry, site, server, expected, db, repeat, "")
                        for suffix in ("", "-wal", "-shm"):
                            Path(db.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
                    elif step == "postgresql" and self.postgres:
                        self.postgres_runs(entry, site, server, expected, repeat)
            entry["nginx_error_log"] = server.error_log()[-1000:]
        entry["summary"] = {run: report.summarise(samples) for run, samples in entry["runs"].items()}
        entry["ratios"] = {run: report.paired_ratios(entry["runs"], run) for run in entry["runs"]
                           if run != report.BASELINE}
        entry["revisit_savings"] = report.revisit_savings(entry["runs"])
        entry["total_s"] = round(time.perf_counter() - started, 1)
        return entry

    def archive_runs(self, entry, site, server, expected, db, repeat, backend: str) -> None:
        """(b) then (c): crawl into the fresh archive `db`, check it, revisit it twice, check again."""
        suffix = f"@{backend}" if backend else ""
        crawled, counts = self.crawl(site, server, db, repeat)
        if counts["pages"] != site.pages or counts["new"] != site.article_pages:
            raise BenchFailure(f"the crawl fetched {counts['pages']} pages and archived {counts['new']} new "
                               f"articles; the replica has {site.pages} pages and {site.article_pages} articles")
        self.record(entry, "crawl" + suffix, crawled)
        started = time.perf_counter()
        before = export_versions(db, env=self.env, timeout=timeout_for(site.article_pages))
        entry["ground_truth" + suffix] = check_archive(before, expected, versions_per_article=1)
        self.say(f"  {'':>6}    ground truth checked in {time.perf_counter() - started:.1f} s: "
                 f"{entry['ground_truth' + suffix]}")
        revisits = list(REVISITS.items())
        for run, options in revisits if repeat % 2 == 0 else reversed(revisits):
            revisited, counts = self.crawl(site, server, db, repeat, *options)
            if counts["versions written"] != 0 or counts["new"] != 0:
                raise BenchFailure(f"a revisit of the unchanged replica wrote versions: {revisited['summary']}")
            if counts["articles seen"] != site.article_pages:
                raise BenchFailure(f"the revisit saw {counts['articles seen']} articles of {site.article_pages}")
            if run == "revisit_conditional" and revisited["responses_304"] != site.article_pages:
                raise BenchFailure(f"the conditional revisit got {revisited['responses_304']} 304 answers "
                                   f"for {site.article_pages} unchanged articles")
            self.record(entry, run + suffix, revisited)
        check_unchanged(before, export_versions(db, env=self.env, timeout=timeout_for(site.article_pages)))

    def postgres_runs(self, entry, site, server, expected, repeat) -> None:
        db = None
        try:
            db = self.postgres.create(f"{site.articles}_{repeat}")
            run_checked([sys.executable, "-m", "ops.cli", "db", "upgrade"],
                        env={**self.env, "PORTAL_ARCHIVE_DB": db}, timeout=300,
                        what="portal-archive db upgrade on PostgreSQL")
            self.archive_runs(entry, site, server, expected, db, repeat, "postgresql")
        except Exception as exc:  # any failure on PostgreSQL is reported; the SQLite figures stand
            error = str(exc) if isinstance(exc, BenchFailure) else f"{type(exc).__name__}: {exc}"
            note = f"PostgreSQL ({shown(self.args.postgres)}): the crawl fails: {error[:1500]}"
            self.results["postgres"] = {"status": "failed", "error": error[:4000]}
            self.note(note)
            self.postgres = None  # the rest of the bench goes on without it
        finally:
            if db:
                try:
                    self._pg_admin.drop(db)
                except Exception:
                    pass  # close() tries again at the end

    def record(self, entry: dict, run: str, result: dict) -> None:
        entry["runs"].setdefault(run, []).append(result)
        self.say(f"  {entry['articles']:>6} #{result['repeat'] + 1} {report.label(run):<51} "
                 f"{result['pages']:>6} pages  {result['wall_s']:7.1f} s  {result['pages_per_s']:6.0f} pages/s  "
                 f"{result['cpu_s_per_1000_pages']:6.2f} CPU s/1000 pages  {result['peak_rss_mib']:5.0f} MiB  "
                 f"(load {result['load1_before']:.1f})")

    # --- the whole bench ----------------------------------------------------
    def run(self) -> dict:
        args = self.args
        self.results = {
            "command": "python -m bench " + shlex.join(args.argv),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "repeat": args.repeat,
            "seed": args.seed,
            "baseline_settings": baseline_settings(),
            "crawl_env": CRAWL_ENV,
            "bytecode": args.bytecode,
            "sizes": {},
            "notes": [],
        }
        self._pg_admin = None
        if args.postgres:
            try:
                self.postgres = self._pg_admin = FreshDatabases(args.postgres)
                self.results["postgres"] = {"status": "ran", "server": shown(args.postgres)}
                self.note("on PostgreSQL the CPU figures are the crawl process's only; the server's are not counted")
            except BenchFailure as exc:
                self.results["postgres"] = {"status": "failed", "error": str(exc)}
                self.note(f"PostgreSQL part not run: {exc}")
        else:
            self.results["postgres"] = {"status": "skipped"}
            self.note("PostgreSQL part skipped: no --postgres URL given")
        try:
            for size in args.sizes:
                self.run_size(size)
        finally:
            if self._pg_admin:
                self._pg_admin.close()
            self.results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self.results

    def note(self, text: str) -> None:
        self.results.setdefault("notes", []).append(text)
        self.say(f"note: {text}")

    @staticmethod
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def baseline_settings() -> dict:
    from bench.bare_spider import SETTINGS

    return SETTINGS


def machine() -> dict:
    import scrapy

    nginx = nginx_binary()
    version = ""
    if nginx:
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "scrapy": scrapy.__version__, "nginx": version, "load_avg_at_start": os.getloadavg()}


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in re.split(r"[,\s]+", text.strip()) if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes {text!r} is not a list of article counts like 5000,20000")
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError("--sizes needs article counts of at least 10")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_sizes,
                   help="Replica sizes in articles, comma-separated (default: 5000,20000).")
    p.add_argument("--large", action="store_true", help=f"Also the {LARGE_SIZE:,}-article replica.")
    p.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="Runs of each kind per size (default: %(default)s).")
    p.add_argument("--seed", type=int, default=1, help="Seed of the replicas.")
    p.add_argument("--postgres", metavar="URL",
                   help="Also crawl into fresh databases on this PostgreSQL server (e.g. "
                        "postgresql+psycopg://user@127.0.0.1:5432/postgres); without it that part is skipped.")
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="Results JSON (default: bench/results/latest.json).")
    p.add_argument("--profile", action="store_true",
                   help="Instead: the bare spider, one crawl of the first size (default 5000) and its two "
                        "revisits, each under cProfile; writes bench/results/profile-*.txt.")
    p.add_argument("--markdown", action="store_true", help="Instead: print the results file as the README's table.")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv
    if args.repeat < 1:
        parser().error("--repeat must be at least 1")
    if args.markdown:
        print(report.markdown(json.loads(args.output.read_text())))
        return
    if args.profile:
        args.sizes = args.sizes or [PROFILE_SIZE]
    else:
        sizes = (args.sizes or list(DEFAULT_SIZES)) + ([LARGE_SIZE] if args.large else [])
        args.sizes = list(dict.fromkeys(sizes))
    if nginx_binary() is None:
        raise SystemExit("python -m bench: nginx is not installed (apt-get install -y nginx)")
    # Timed as installed: the checkout's modules compiled first (bench.compile_checkout).
    if not compile_checkout():
        raise SystemExit(f"python -m bench: the project's modules do not all compile (python -m compileall {ROOT})")
    args.bytecode = "the project's modules compiled before the runs, as an installed package has them"
    # SIGTERM unwinds like Ctrl-C: nginx and any running crawl are stopped, temporary files removed.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    # First, while this process is small: the runs' peak RSS must not include ours.
    # (The spawner closes first on the way out: a run it kills must not find its files gone.)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp, Spawner(python_env()) as spawner:
        if args.profile:
            from bench.profiling import profile

            sys.exit(profile(args, Path(tmp), python_env()))
        bench = Bench(args, Path(tmp), spawner)
        failure = None
        try:
            results = bench.run()
        except BenchFailure as exc:
            failure = exc
            results = bench.results
            results["failed"] = str(exc)
        for entry in results["sizes"].values():  # partial sizes too, for a failed run
            entry.setdefault("summary", {run: report.summarise(s) for run, s in entry["runs"].items()})
            entry.setdefault("ratios", {run: report.paired_ratios(entry["runs"], run) for run in entry["runs"]
                                        if run != report.BASELINE})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n")
    print(report.table(results))
    print(f"results: {args.output}")
    if failure is not None:
        print(f"\nBENCH FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
