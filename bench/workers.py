"""Distributed crawl throughput with 1, 2 and 3 workers (issue 4), in one run.

    .venv/bin/python -m bench.workers [--articles 3000] [--repeat 1]

Starts throwaway PostgreSQL and Redis servers and a replica, then for each
worker count runs `crawl --distributed` plus N `portal-archive worker`s into
a fresh PostgreSQL database, and reports pages/s (pages fetched / wall time
until the last worker left, minus the workers' idle wait). The machine has 2
cores shared by the replica, PostgreSQL, Redis, the coordinator and the
workers, so this measures contention as much as the crawler.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import FAST_ENV
from replica import ReplicaServer, generate, save_state
from tests.servers import PostgresServer, RedisServer

IDLE = 3.0


def one_run(site_url: str, pg: PostgresServer, redis_url: str, workers: int) -> dict:
    db = pg.create_database()
    env = {**os.environ, **FAST_ENV, "PORTAL_ARCHIVE_DB": db, "PORTAL_ARCHIVE_REDIS": redis_url,
           "PORTAL_ARCHIVE_LOG_LEVEL": "ERROR", "PORTAL_ARCHIVE_WORKER_IDLE_SECONDS": str(IDLE),
           "PORTAL_ARCHIVE_OBEY_ROBOTS": "false"}
    started = time.perf_counter()
    coordinator = subprocess.Popen([sys.executable, "-m", "ops.cli", "crawl", "--distributed", "--base-url",
                                    site_url], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs = [subprocess.Popen([sys.executable, "-m", "ops.cli", "worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(workers)]
    for p in procs:
        p.wait(timeout=1800)
    workers_done = time.perf_counter()
    out, _ = coordinator.communicate(timeout=600)
    pages = int(out.split(" pages,")[0].rsplit(" ", 1)[-1])
    seconds = workers_done - started - IDLE
    return {"workers": workers, "pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 1),
            "summary": out.strip()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("-o", "--output", default="bench/results/workers.json")
    args = parser.parse_args(argv)
    pg, redis_server = PostgresServer().start(), RedisServer().start()
    results: dict[int, list[dict]] = {1: [], 2: [], 3: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            save_state(generate(args.articles, seed=1), Path(tmp) / "site")
            with ReplicaServer(Path(tmp) / "site") as site:
                for _ in range(args.repeat):
                    for workers in (1, 2, 3):  # alternating, so drift in machine load hits all alike
                        results[workers].append(one_run(site.url, pg, redis_server.url, workers))
    finally:
        pg.stop()
        redis_server.stop()
    table = {n: {"median_pages_per_s": statistics.median(r["pages_per_s"] for r in runs),
                 "runs": runs} for n, runs in results.items()}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(table, indent=2))
    base = table[1]["median_pages_per_s"]
    for n, row in table.items():
        print(f"{n} worker(s): {row['median_pages_per_s']:.1f} pages/s ({row['median_pages_per_s'] / base:.2f}x of one)")


if __name__ == "__main__":
    main()
