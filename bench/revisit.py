"""Visit cost with and without conditional requests (issue 3).

    .venv/bin/python -m bench.revisit [--articles 2000] [--rounds 3]

Builds a replica, crawls it once into a fresh SQLite archive, then revisits
every archived article repeatedly, alternating a revisit that sends the
validators the portal gave (If-None-Match / If-Modified-Since, answered 304)
with one that does not. Nothing changes on the replica, so both must write
zero versions; the bench checks that and reports wall time per revisit.
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


def crawl(base_url: str, db: str, *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ops.cli", "crawl", "--base-url", base_url, "--db", db,
                          "--no-gap-probes", *extra], capture_output=True, text=True,
                         env={**os.environ, **FAST_ENV, "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"crawl failed: {out.stderr[-2000:]}")
    return elapsed, out.stdout.strip()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-o", "--output", default="bench/results/revisit.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        save_state(generate(args.articles, seed=1), Path(tmp) / "site")
        with ReplicaServer(Path(tmp) / "site") as server:
            db = f"sqlite:///{tmp}/archive.sqlite"
            crawl(server.url, db)
            times = {"conditional": [], "unconditional": []}
            for _ in range(args.rounds):
                for mode, extra in (("conditional", ()), ("unconditional", ("--no-conditional",))):
                    server.reset_counts()
                    elapsed, summary = crawl(server.url, db, "--revisit", "all", "--incremental", *extra)
                    if "0 versions written" not in summary:
                        raise SystemExit(f"a revisit of an unchanged portal wrote versions: {summary}")
                    times[mode].append(elapsed)
                    counts = server.conditional_counts
            result = {
                "articles": args.articles,
                "rounds": args.rounds,
                **{mode: {"min": min(t), "median": statistics.median(t), "max": max(t)} for mode, t in times.items()},
                "last_conditional_round_304s": counts.get("not_modified", 0),
            }
    result["ratio_unconditional_over_conditional"] = result["unconditional"]["median"] / result["conditional"]["median"]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    for mode in ("conditional", "unconditional"):
        r = result[mode]
        print(f"revisit {args.articles} unchanged articles, {mode:>13}: "
              f"min {r['min']:.2f} s  median {r['median']:.2f} s  max {r['max']:.2f} s")
    print(f"unconditional / conditional (median): {result['ratio_unconditional_over_conditional']:.2f}x; "
          f"zero versions written in every revisit")


if __name__ == "__main__":
    main()
