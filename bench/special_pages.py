"""Cost of the portal's pathological pages: a 20 MB article and one nested 5,000 levels deep.

    .venv/bin/python -m bench.special_pages

Crawls a small replica twice into fresh SQLite archives, once plain and once
with one huge and one deeply nested article, and reports wall time and the
crawl process's peak RSS for both (the plain crawl is the baseline), and
whether the special articles were archived exactly.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import FAST_ENV
from replica import ReplicaServer, expected_articles, generate, save_state


def measured_crawl(base_url: str, db: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `portal-archive crawl` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ops.cli", "crawl", "--base-url", base_url, "--db", db],
                   check=True, capture_output=True, timeout=600,
                   env={**os.environ, **FAST_ENV, "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"})
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far; the plain crawl runs first.
    return elapsed, max(peak, before) / 1024


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, specials in (("plain", None), ("huge+nested", {"huge": 1, "nested": 1})):
            site = Path(tmp) / name
            state = generate(200, seed=5, specials=specials)
            save_state(state, site)
            with ReplicaServer(site) as server:
                db = f"sqlite:///{tmp}/{name}.sqlite"
                elapsed, peak = measured_crawl(server.url, db)
                expected = expected_articles(state, server.url)
            out = subprocess.run([sys.executable, "-m", "ops.cli", "export", "--db", db],
                                 check=True, capture_output=True, text=True).stdout
            rows = {r["aid"]: r for r in map(json.loads, out.splitlines())}
            special = [a for a, e in expected.items() if e.get("special")]
            exact = all(rows[a]["body"] == expected[a]["body"] and rows[a]["title"] == expected[a]["title"]
                        for a in special)
            results[name] = {"seconds": round(elapsed, 2), "peak_rss_mb": round(peak, 1),
                             "articles": len(rows), "specials_exact": exact if special else None}
    for name, r in results.items():
        print(f"{name:>12}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB, {r['articles']} articles"
              + (f", special pages archived exactly: {r['specials_exact']}" if r["specials_exact"] is not None else ""))


if __name__ == "__main__":
    main()
