"""What the scale benchmark measures besides the web: export, verify, size on disk, peak memory of
the crawl's writer, the migrations' time. Each runs the product's own command in a subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import FAST_ENV
from bench.harness import parse_summary

ROOT = Path(__file__).resolve().parents[2]
COPY_MARGIN_BYTES = 5 * 2**30  # left free beside a copy: the WAL, the server's own files, everything else


def cli(*args: str, env: dict | None = None, timeout: float = 7200) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    return time.perf_counter() - started, done


def export_rate(url: str, versions: int) -> dict:
    seconds, done = cli("export", "--all-versions", "--format", "jsonl", "-o", os.devnull, "--db", url)
    if done.returncode:
        return {"error": done.stderr.strip()[-500:]}
    return {"seconds": round(seconds, 1), "versions_per_s": round(versions / seconds)}


def verify_time(url: str) -> dict:
    seconds, done = cli("verify", "--db", url)
    return {"seconds": round(seconds, 1), "ok": done.returncode == 0,
            "said": (done.stdout.strip().splitlines() or [""])[-1][:300]}


def vacuum_analyze(url: str) -> float:
    """PostgreSQL: VACUUM (ANALYZE) the whole archive; its seconds."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()
    return round(time.perf_counter() - started, 1)


def size_on_disk(url: str) -> float:
    """MB: the SQLite file with its WAL, or pg_database_size."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sum(Path(f"{parsed.database}{s}").stat().st_size for s in ("", "-wal")
                   if Path(f"{parsed.database}{s}").exists()) / 2**20
    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.scalar(text("SELECT pg_database_size(current_database())"))
    engine.dispose()
    return size / 2**20


# --- peak memory of a process tree ------------------------------------------------------------

def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def peak_rss_mb(pid: int) -> float:
    """VmHWM of one process (its peak resident set), in MB."""
    value = _status(pid).get("VmHWM", "0 kB").split()[0]
    return int(value) / 1024


class TreeWatcher(threading.Thread):
    """Polls the process tree under `pid`, remembering each process's VmHWM and command line."""

    def __init__(self, pid: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peaks: dict[int, tuple[str, float]] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            todo = [self.pid]
            while todo:
                pid = todo.pop()
                peak = peak_rss_mb(pid)
                if peak:
                    try:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
                    except OSError:
                        cmd = "?"
                    self.peaks[pid] = (cmd, max(peak, self.peaks.get(pid, ("", 0.0))[1]))
                todo += _children(pid)
            time.sleep(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def writer_memory(url: str, directory: Path, in_place: bool = False, replica_articles: int = 300,
                  seed: int = 7) -> dict:
    """A small crawl of a fresh replica into a copy of the big archive, with the writer process on;
    the peak RSS of the crawl's process and of each child (the writer, the reader). A copy, so
    that the next run of the benchmark finds the archive it built; `in_place`: into the archive
    itself, which then holds the replica's articles and run as well.

    Revisits and gap probes are off: the archive's own articles are on a host that does not exist
    here; what is measured is the write path at this archive size."""
    if in_place:
        if held := _replica_articles_held(url, replica_articles):
            first, last = held
            return {"error": f"the archive already holds the writer probe's replica articles (aids {first}-{last}, "
                             "from an earlier --in-place run): a crawl of them writes nothing, and its memory "
                             "would say nothing of the write path; run the phase on a copy (without --in-place) "
                             "or on a freshly built archive", "in_place": True}
        return {**_crawl_memory(url, replica_articles, seed), "in_place": True}
    url = copy_archive(url, "writer", directory)
    try:
        return _crawl_memory(url, replica_articles, seed)
    finally:
        drop_archive(url)


def _replica_articles_held(url: str, replica_articles: int) -> tuple[int, int] | None:
    """The replica's aid range, if the archive holds any of it (every replica starts at the same
    aid, whatever its seed; the synthetic archive's own aids are far from them)."""
    from replica.generator import FIRST_AID

    last = FIRST_AID + replica_articles - 1
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            held = conn.scalar(text("SELECT count(*) FROM articles WHERE aid BETWEEN :first AND :last"),
                               {"first": FIRST_AID, "last": last})
    finally:
        engine.dispose()
    return (FIRST_AID, last) if held else None


def _crawl_memory(url: str, replica_articles: int, seed: int) -> dict:
    from replica import ReplicaServer, generate, save_state

    with tempfile.TemporaryDirectory() as tmp:
        save_state(generate(replica_articles, seed=seed), Path(tmp) / "site")
        with ReplicaServer(Path(tmp) / "site") as site:
            env = {**os.environ, **FAST_ENV, "PORTAL_ARCHIVE_WRITE_PROCESS": "1",
                   "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING"}
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "crawl", "--base-url", site.url, "--db", url,
                 "--revisit", "none", "--no-gap-probes"], cwd=ROOT, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            watcher = TreeWatcher(process.pid)
            watcher.start()
            out, err = process.communicate(timeout=1800)
            watcher.stop()
            seconds = time.perf_counter() - started
    processes = sorted(watcher.peaks.values(), key=lambda p: -p[1])
    crawl = watcher.peaks.get(process.pid, ("", 0.0))[1]
    children = [{"cmd": cmd, "peak_rss_mb": round(mb, 1)} for pid, (cmd, mb) in watcher.peaks.items()
                if pid != process.pid]
    writer = max((c["peak_rss_mb"] for c in children if "archive-writer" in c["cmd"]), default=None)
    measured = {"exit": process.returncode, "seconds": round(seconds, 1), "crawl_peak_rss_mb": round(crawl, 1),
                "writer_peak_rss_mb": writer, "children": children, "processes": len(processes),
                "said": (out.strip().splitlines() or [""])[0][:200] if process.returncode == 0 else err[-500:]}
    # The figures are of the write path only if the crawl wrote: every replica article new.
    new = parse_summary(out).get("new") if process.returncode == 0 else None
    if new != replica_articles:
        return {"error": f"the writer probe's crawl archived {new if new is not None else 'no'} new articles of "
                         f"the replica's {replica_articles}: its memory figures would say nothing of the write path",
                "not_measured": measured}
    return measured


# --- migrations --------------------------------------------------------------------------------

class NoRoomForCopy(RuntimeError):
    """The disk cannot hold a copy of the archive beside it."""


def room_for_copy(needed_bytes: float, where: Path) -> None:
    free = shutil.disk_usage(where).free
    if free < needed_bytes * 1.1 + COPY_MARGIN_BYTES:
        raise NoRoomForCopy(f"a copy of the archive needs {needed_bytes / 2**30:.1f} GB and {where} has "
                            f"{free / 2**30:.1f} GB free: run the phase again with --in-place")


def copy_archive(url: str, label: str, directory: Path) -> str:
    """A private copy of the archive (a file copy; CREATE DATABASE … TEMPLATE), if the disk that
    holds the archives (`directory`) has room for it (else NoRoomForCopy)."""
    parsed = make_url(url)
    room_for_copy(size_on_disk(url) * 2**20, directory)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        target = Path(f"{parsed.database}.{label}")
        shutil.copyfile(parsed.database, target)
        return f"sqlite:///{target}"
    name = f"{parsed.database}_{label}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"'))
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_archive(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def migrations(url: str, directory: Path, in_place: bool = False) -> dict:
    """On a copy: down to 0005 (the trigram index back, raw pages back to zlib), then the time of
    `portal-archive db upgrade` (0006 builds the bigram index, 0007 trains a dictionary and
    recompresses every page), then `verify`. `in_place`: on the archive itself, which ends at
    head again (its raw pages compressed with a newly trained dictionary)."""
    from alembic import command

    from pipeline.archive.db import alembic_config

    copy = url if in_place else copy_archive(url, "migrations", directory)
    try:
        started = time.perf_counter()
        command.downgrade(alembic_config(copy), "0005")
        down = time.perf_counter() - started
        up, done = cli("db", "upgrade", "--db", copy)
        checked = verify_time(copy) if done.returncode == 0 else None
        return {"downgrade_to_0005_s": round(down, 1), "upgrade_0005_to_head_s": round(up, 1),
                "upgrade_ok": done.returncode == 0, "verify_after": checked,
                "said": done.stderr.strip()[-300:] if done.returncode else "", "in_place": in_place}
    finally:
        if not in_place:
            drop_archive(copy)
