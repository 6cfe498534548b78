"""WARC export at scale: records a second, bytes a version against the archive's own storage, and
the export's memory, which must not grow with the archive.

    .venv/bin/python -m bench.warc [--articles 20000] [--edits 1000] [-o warc.json]

Generates a replica of `--articles` articles, crawls it into a fresh SQLite archive (the crawl's
end trains the raw pages' dictionary, as in service), edits `--edits` of them and crawls again
(revisiting every article). Then it runs `portal-archive export --format warc` three times, each
in a process of its own: over the whole archive, over one channel (a fifth of it) and over one
article; and imports the whole export into a fresh archive (`portal-archive import`, unless
`--no-import`), checking that it exports the same versions. Each child's wall time, CPU and peak
resident memory (VmHWM) are measured: a flat memory shows as the same peak for one article, a
fifth of the archive and all of it.
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


def measured(*args: str, env: dict | None = None) -> tuple[dict, str, str]:
    """A portal-archive command in a child: its wall time, CPU and peak memory, stdout and stderr."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**ENV, **(env or {})})
    out, err = child.stdout.read().decode(), child.stderr.read().decode()  # a line or two each
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0, out[-3000:] + err[-3000:]
    peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", err)[1])
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1)}, out, err


def export(db: str, prefix: Path, *extra: str) -> dict:
    """One export in a child process: its wall time, CPU and peak memory, and what it wrote."""
    figures, _out, said = measured("export", "--db", db, "--format", "warc", "-o", str(prefix), *extra)
    files = sorted(prefix.parent.glob(prefix.name + "-*.warc.gz"))
    index = prefix.with_name(prefix.name + ".cdxj")
    records = sum(1 for _ in open(index)) if index.exists() else 0
    return {"said": said.splitlines()[0], **figures, "files": len(files),
            "warc_bytes": sum(f.stat().st_size for f in files),
            "cdxj_bytes": index.stat().st_size if index.exists() else 0,
            "records": records, "records_per_s": round(records / figures["wall_s"])}


def import_back(files: list[Path], db: str, original: str) -> dict:
    """The export imported into a fresh archive (wall time, CPU, peak memory), then compared with
    the original version by version, times aside."""
    url = _scalar(original, "select canonical_url from articles limit 1")
    base_url = "/".join(url.split("/")[:3])
    figures, out, _err = measured("import", "--no-progress", "--db", db, *map(str, files),
                                  env={"PORTAL_ARCHIVE_BASE_URL": base_url})
    captures = int(re.search(r"(\d+) captures of portal articles", out)[1])
    return {"said": out.splitlines()[0], **figures, "captures_per_s": round(captures / figures["wall_s"]),
            "equal_to_the_original": same_versions(original, db)}


def _scalar(db: str, sql: str):
    engine = create_engine(db)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


def same_versions(a: str, b: str) -> bool:
    """Whether two archives export the same versions (`export --all-versions`), times aside; streamed."""
    from itertools import zip_longest

    from pipeline.archive.db import open_archive, session_scope
    from pipeline.archive.export import export_rows
    from pipeline.reading.profile import load_profile

    profile = load_profile("cpsia")
    timeless = ("valid_from", "valid_to", "fetched_at")
    engines = [open_archive(db, auto_upgrade=False) for db in (a, b)]
    try:
        with session_scope(engines[0]) as one, session_scope(engines[1]) as two:
            pairs = zip_longest(export_rows(one, profile, all_versions=True),
                                export_rows(two, profile, all_versions=True))
            return all(x is not None and y is not None
                       and {k: v for k, v in x.items() if k not in timeless}
                       == {k: v for k, v in y.items() if k not in timeless} for x, y in pairs)
    finally:
        for engine in engines:
            engine.dispose()


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
    return _scalar(db, "select min(aid) from articles")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="Measure this archive instead of building one (SQLite URL).")
    parser.add_argument("--keep", type=Path, help="Build the archive in this directory and keep it.")
    parser.add_argument("--no-import", action="store_true", help="Do not import the export back.")
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
        back = None
        if not args.no_import:
            back = import_back(sorted((root / "all").glob("portal-*.warc.gz")),
                               f"sqlite:///{root / 'imported.sqlite'}", db)
    figures = {
        "articles": args.articles, "edits": args.edits, "archive_built_s": built and round(built, 1), **stored,
        "export": whole, "export_one_channel": channel, "export_one_article": one, "import": back,
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
