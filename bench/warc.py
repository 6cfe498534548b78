"""WARC export at scale: records a second, bytes a version against the archive's own storage, and
the export's memory, which must not grow with the archive.

    .venv/bin/python -m bench.warc [--articles 20000] [--edits 1000] [-o warc.json]

Generates a replica of `--articles` articles, crawls it into a fresh SQLite archive (the crawl's
end trains the raw pages' dictionary, as in service), edits `--edits` of them and crawls again
(revisiting every article), then runs `portal-archive export --format warc` twice in a process of
its own: over the whole archive, over one channel (a fifth of it) and over one article. Each
export's wall time, CPU and peak resident memory (VmHWM) are measured; a flat memory shows as the
same peak for one article, a fifth of the archive and all of it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import FAST_ENV
from replica import ReplicaServer, generate, load_state, mutate, save_state

ENV = {**os.environ, **FAST_ENV, "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}


def crawl(base_url: str, db: str, revisit: str) -> None:
    subprocess.run([sys.executable, "-m", "ops.cli", "crawl", "--base-url", base_url, "--db", db,
                    "--revisit", revisit], check=True, capture_output=True, timeout=7200, env=ENV)


# The export run in a child that says its own peak resident memory as it exits (VmHWM): the
# child's ru_maxrss would not do, as Linux carries the forking parent's peak (this bench holds the
# whole replica) across exec.
CHILD = ("import atexit, sys\n"
         "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status') "
         "if l.startswith('VmHWM'))))\n"
         "from ops.cli import main\n"
         "main(sys.argv[1:], prog_name='portal-archive')\n")


def export(db: str, prefix: Path, *extra: str) -> dict:
    """One export in a child process: its wall time, CPU and peak memory, and what it wrote."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, "export", "--db", db, "--format", "warc",
                              "-o", str(prefix), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    said = child.stderr.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0, said
    peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", said)[1])
    files = sorted(prefix.parent.glob(prefix.name + "-*.warc.gz"))
    index = prefix.with_name(prefix.name + ".cdxj")
    records = sum(1 for _ in open(index)) if index.exists() else 0
    return {"said": said.splitlines()[0], "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
            "files": len(files), "warc_bytes": sum(f.stat().st_size for f in files),
            "cdxj_bytes": index.stat().st_size if index.exists() else 0,
            "records": records, "records_per_s": round(records / wall)}


def storage(db: str) -> dict:
    engine = create_engine(db)
    with engine.connect() as conn:
        versions = conn.execute(text("select count(*) from article_versions")).scalar()
        pages, page_bytes, fetched = conn.execute(text(
            "select count(*), sum(length(body)), sum(size) from raw_pages "
            "where id in (select raw_page_id from article_versions)")).one()
        dictionaries = conn.execute(text("select coalesce(sum(length(data)), 0) from dictionaries")).scalar()
    engine.dispose()
    return {"versions": versions, "raw_pages": pages, "stored_bytes": page_bytes + dictionaries,
            "fetched_bytes": fetched}


def build(args, root: Path) -> tuple[float, str]:
    root.mkdir(parents=True, exist_ok=True)
    save_state(generate(args.articles, seed=args.seed), root / "site")
    db = f"sqlite:///{root / 'archive.sqlite'}"
    server = ReplicaServer(root / "site").start()
    try:
        started = time.perf_counter()
        crawl(server.url, db, "none")
        state = load_state(root / "site")
        mutate(state, seed=args.seed, edits=args.edits, takedowns=0, republish=0, new=0)
        save_state(state, root / "site")
        crawl(server.url, db, "all")
        return time.perf_counter() - started, db
    finally:
        server.stop()


def first_aid(db: str) -> int:
    engine = create_engine(db)
    with engine.connect() as conn:
        aid = conn.execute(text("select min(aid) from articles")).scalar()
    engine.dispose()
    return aid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="Measure this archive instead of building one (SQLite URL).")
    parser.add_argument("--keep", type=Path, help="Build the archive in this directory and keep it.")
    parser.add_argument("-o", "--output", type=Path, help="Write the figures as JSON here too.")
    args = parser.parse_args(argv)
    built = None
    with tempfile.TemporaryDirectory(prefix="bench-warc-") as tmp:
        root = Path(tmp)
        db = args.db
        if db is None:
            built, db = build(args, args.keep or root)
        stored = storage(db)
        whole = export(db, root / "all" / "portal")
        channel = export(db, root / "one" / "portal", "--channel", "djyd")
        one = export(db, root / "article" / "portal", "--article", str(first_aid(db)))
    figures = {
        "articles": args.articles, "edits": args.edits, "archive_built_s": built and round(built, 1), **stored,
        "export": whole, "export_one_channel": channel, "export_one_article": one,
        "warc_bytes_per_version": round(whole["warc_bytes"] / stored["versions"]),
        "stored_bytes_per_version": round(stored["stored_bytes"] / stored["versions"]),
        "fetched_bytes_per_version": round(stored["fetched_bytes"] / stored["raw_pages"]),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    text_out = json.dumps(figures, indent=2, ensure_ascii=False)
    print(text_out)
    if args.output:
        args.output.write_text(text_out + "\n")


if __name__ == "__main__":
    main()
