"""How fast the web archive browser answers over a 20,000-article archive.

    .venv/bin/python bench/web_latency.py            # builds var/bench-web-20000.sqlite once, then reuses it
    .venv/bin/python bench/web_latency.py --rebuild  # builds it again

The archive is written through the real write path (pipeline.archive.versions.record_article
and record_gone, batches of one transaction each), from pages the replica renders
for its own ground truth and that the spider's extraction and the cleaning and
dedupe stages read, exactly as a crawl would, minus the HTTP round trips: a
crawl of 20,000 articles over HTTP takes minutes and measures the crawler, not
the browser. A round of portal changes (edits, takedowns, republications, new
articles) is written as a second run, so that there are versions, diffs and a
change feed to show.

Then `portal-archive web` itself is started on 127.0.0.1 and every endpoint is
asked REQUESTS times over one keep-alive connection, after one warm-up request;
the script prints min / median / max per endpoint and whether the three
required ones (article list, search, article page) answer under 200 ms at the
median.
"""
from __future__ import annotations

import argparse
import http.client
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from pipeline.archive import runs  # noqa: E402
from pipeline.archive.db import open_archive, session_scope  # noqa: E402
from pipeline.archive.models import Article  # noqa: E402
from pipeline.archive.versions import record_article, record_gone, record_quarantine  # noqa: E402
from pipeline.reading.chain import read_page  # noqa: E402
from pipeline.reading.profile import load_profile  # noqa: E402
from pipeline.reading.records import ArticleGone, Rejected  # noqa: E402

BASE_URL = "http://portal.test"
BATCH = 500  # items per transaction, as the archive stage writes them
REQUIRED_MS = 200
CHANGES = {"edits": 400, "takedowns": 150, "republish": 80, "new": 300}


def page_item(profile, state, index, article, fetched_at: datetime):
    """What the crawl's reader makes of the replica's page for `article`."""
    from replica import route

    response = route(state, article.path, "", index)
    headers = dict(response.headers)
    url = BASE_URL + article.path
    if response.status != 200:
        return ArticleGone(url, article.aid, response.status, fetched_at, f"HTTP {response.status}",
                           raw=response.body, headers=headers)
    return read_page(profile, response.body, url=url, aid=article.aid, headers=headers, fetched_at=fetched_at,
                     method="profile")


def write_run(engine, items, label: str) -> None:
    run_id = runs.start_run(engine, "backfill", BASE_URL, {"benchmark": label})
    counts: dict[str, int] = {}
    started = time.monotonic()
    for at in range(0, len(items), BATCH):
        with session_scope(engine) as session:
            for item in items[at:at + BATCH]:
                if isinstance(item, ArticleGone):
                    outcome = record_gone(session, run_id, item, 1)
                elif isinstance(item, Rejected):
                    record_quarantine(session, run_id, item)
                    outcome = "quarantined"
                else:
                    outcome, _linked = record_article(session, run_id, item)
                counts[outcome] = counts.get(outcome, 0) + 1
        done = min(at + BATCH, len(items))
        print(f"\r  {label}: {done}/{len(items)} written ({time.monotonic() - started:.0f} s)", end="", flush=True)
    print()
    runs.finish_run(engine, run_id, "succeeded", {f"archive/{k}": v for k, v in counts.items()})


def build(db_file: Path, articles: int, seed: int) -> None:
    from replica import generate, mutate
    from replica.index import build_index

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    profile = load_profile("cpsia")
    print(f"building {db_file} from a {articles}-article replica (seed {seed})")
    state = generate(articles, seed=seed, defects={"no_body": 5, "bad_bytes": 5})
    engine = open_archive(f"sqlite:///{db_file}", auto_upgrade=True)
    first = datetime.fromisoformat(state.now)
    index = build_index(state)
    items = [page_item(profile, state, index, a, first) for a in sorted(state.articles.values(), key=lambda a: a.aid)]
    write_run(engine, items, "run 1 (every article)")

    report = mutate(state, seed=seed, **CHANGES)
    second = first + timedelta(days=1)
    index = build_index(state)
    changed = sorted({int(a) for key in ("edited", "taken_down", "republished") for a in report[key]}
                     | set(report["new"]))
    items = [page_item(profile, state, index, state.articles[aid], second) for aid in changed]
    write_run(engine, items, "run 2 (a round of portal changes)")
    engine.dispose()


def archived_articles(db_file: Path) -> int:
    if not db_file.exists():
        return 0
    engine = open_archive(f"sqlite:///{db_file}", auto_upgrade=False)
    with session_scope(engine) as session:
        count = session.scalar(select(func.count()).select_from(Article))
    engine.dispose()
    return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path | str) -> tuple[subprocess.Popen, int]:
    """`portal-archive web` on a free loopback port, over a SQLite file or any database URL."""
    port = free_port()
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "web", "--port", str(port), "--db", url], cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("the web server did not start")


def endpoints(db_file: Path, rng: random.Random) -> list[tuple[str, bool, list[str]]]:
    """(name, required under 200 ms, paths); searches use phrases taken from the archive itself."""
    import sqlite3

    q = urllib.parse.quote
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        aids = [r[0] for r in conn.execute("SELECT aid FROM articles ORDER BY aid")]
        edited = [r[0] for r in conn.execute(
            "SELECT DISTINCT a.aid FROM articles a JOIN article_versions v ON v.article_id = a.id "
            "WHERE v.change = 'edited' ORDER BY a.aid")]
        bodies = [r[0] for r in conn.execute(
            "SELECT body_text FROM article_versions WHERE valid_to IS NULL ORDER BY random() LIMIT 200")]
        channel = conn.execute("SELECT channel FROM articles GROUP BY channel ORDER BY count(*) DESC").fetchone()[0]
    phrases = []
    for body in bodies:
        at = rng.randrange(max(1, len(body) - 8))
        phrases.append(body[at:at + 6])
    return [
        ("article list, page 1", True, ["/"]),
        ("article list, page 100", True, ["/?page=100"]),
        ("article list, channel + date range + status", True,
         [f"/?channel={q(channel)}&from=2025-01-01&to=2025-12-31&status=live"]),
        ("article list, edited at least once", True, ["/?status=edited"]),
        ("search, 6-character phrase (bigram phrase)", True, [f"/?q={q(p)}" for p in phrases]),
        ("search, common 4-character term (many hits)", True, [f"/?q={q('新型储能')}", f"/?q={q('光伏发电')}"]),
        ("search, 2 characters (one bigram)", False, [f"/?q={q('光伏')}", f"/?q={q('储能')}"]),
        ("article page", True, [f"/articles/{rng.choice(aids)}" for _ in range(200)]),
        ("article page, edited article", True, [f"/articles/{a}" for a in edited]),
        ("diff page", False, [f"/articles/{a}/diff" for a in edited]),
        ("changes", False, ["/changes"]),
        ("runs dashboard", False, ["/runs"]),
        ("API: article list + search", False, [f"/api/articles?q={q(p)}" for p in phrases]),
        ("API: article", False, [f"/api/articles/{rng.choice(aids)}" for _ in range(200)]),
    ]


def measure(port: int, paths: list[str], requests: int, rng: random.Random, *, budget_s: float | None = None,
            timeout: float = 30) -> list[float]:
    """Milliseconds of `requests` GETs over one keep-alive connection, after one warm-up request;
    fewer once `budget_s` seconds are spent (a slow endpoint then shows in few requests, not in a
    run that never ends)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def get(path: str) -> float:
        start = time.perf_counter()
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        elapsed = (time.perf_counter() - start) * 1000
        if answer.status != 200:
            raise SystemExit(f"GET {path} answered {answer.status}")
        return elapsed

    get(paths[0])  # warm-up: templates compiled, pages of the database in the cache
    started = time.perf_counter()
    timings = []
    for i in range(requests):
        timings.append(get(paths[i % len(paths)] if len(paths) < requests else rng.choice(paths)))
        if budget_s is not None and time.perf_counter() - started > budget_s:
            break
    conn.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--db", type=Path, help="SQLite file (default var/bench-web-ARTICLES.sqlite)")
    parser.add_argument("--rebuild", action="store_true", help="build the archive again even if it exists")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per endpoint")
    args = parser.parse_args()
    db_file = args.db or ROOT / "var" / f"bench-web-{args.articles}.sqlite"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    have = 0 if args.rebuild else archived_articles(db_file)
    if have < args.articles:
        started = time.monotonic()
        build(db_file, args.articles, args.seed)
        print(f"built in {time.monotonic() - started:.0f} s")
    have = archived_articles(db_file)
    print(f"archive {db_file}: {have} articles")

    process, port = start_server(db_file)
    rng = random.Random(args.seed)
    failures = []
    try:
        print(f"\n{'endpoint':<48} {'min':>8} {'median':>8} {'max':>8}   (ms, {args.requests} requests each)")
        for name, required, paths in endpoints(db_file, rng):
            timings = measure(port, paths, args.requests, rng)
            median = statistics.median(timings)
            verdict = ""
            if required:
                verdict = "ok" if median < REQUIRED_MS else f"SLOWER THAN {REQUIRED_MS} ms"
                if median >= REQUIRED_MS:
                    failures.append(name)
            print(f"{name:<48} {min(timings):8.1f} {median:8.1f} {max(timings):8.1f}   {verdict}")
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"\n{'all required endpoints under ' + str(REQUIRED_MS) + ' ms at the median' if not failures else 'too slow: ' + ', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
