"""Writing the synthetic history through the crawl's own batch write path, resumably.

Each chunk is one crawl run written by pipeline.archive.writer.ArchiveWriter in batches of
`batch` items, one transaction each, exactly as the crawl's writer process writes them. After
every chunk the archive's dictionary upkeep runs (pipeline.archive.rawpages.maintain, which
ops/crawl.py runs after every crawl): the first dictionary is trained once 500 article pages
are in, the pages before it are recompressed, and later chunks compress with it.

Chunks are written by `lanes` processes at once, each making its chunk (bench/scale/synthetic.py:
text, markup, compression, fingerprints) and then writing it, as concurrent crawl writers do: the
chunks hold disjoint articles, and the writer sorts its rows so that writers cannot deadlock one
another. One writer alone leaves the machine half idle, because the writer and the database take
turns (writer 53 % of a core, PostgreSQL 38 %, the maker 29 % at 2 M versions); two lanes use both
cores. Only the first chunk is written alone: the chunks after it wait for the dictionary it trains.

Progress is kept beside the archive (`progress` in the sidecar JSON): the chunks done, the
versions written and the wall-clock seconds it took. A killed build goes on with the chunks not
done; a chunk half written is written again from its start. The writer compares each item with
the article's current version, so an article whose later versions were already written takes
its first ones again as edits back to the older text: a few thousand more versions than the
plan (2,004,003 for 2,000,000 after one chunk of a 2 M build was cut off in its rounds).
"""
from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import func, select

from pipeline.archive import rawpages, runs
from pipeline.archive.db import current_revision, head_revision, make_engine, open_archive, session_factory
from pipeline.archive.models import ArticleVersion
from pipeline.archive.writer import ArchiveWriter
from pipeline.reading.compression import Compressor

from bench.scale.synthetic import BASE_URL, CHUNK, make_chunk, plan_events

LANES = 2  # one per core of the machines this is run on


def load_progress(sidecar: Path, params: dict) -> dict:
    if sidecar.exists():
        progress = json.loads(sidecar.read_text())
        if progress.get("params") == params:
            progress.setdefault("done_beyond", [])
            return progress
    return {"params": params, "chunks_done": 0, "done_beyond": [], "seconds": 0.0, "versions_written": 0,
            "outcomes": {}}


def mark_done(progress: dict, number: int) -> None:
    """Chunks finish out of order: `chunks_done` counts the unbroken run from the first, and
    `done_beyond` holds the ones finished past it."""
    beyond = set(progress["done_beyond"]) | {number}
    while progress["chunks_done"] in beyond:
        beyond.discard(progress["chunks_done"])
        progress["chunks_done"] += 1
    progress["done_beyond"] = sorted(beyond)


def done_chunks(progress: dict) -> set[int]:
    return set(range(progress["chunks_done"])) | set(progress["done_beyond"])


def to_head(url: str, log=print) -> dict:
    """Bring a built archive to the newest schema revision before it is measured, and say so when
    it was behind (built before a revision, or left by an interrupted migration phase): what every
    phase after it measures, the migrations phase included, is then the upgraded archive."""
    engine = make_engine(url)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if before == head:
        return {}
    started = time.monotonic()
    open_archive(url, auto_upgrade=True).dispose()
    seconds = round(time.monotonic() - started, 1)
    log(f"the archive was at revision {before}, behind {head}: upgraded first, in {seconds} s")
    return {"upgraded": {"from": before, "to": head, "seconds": seconds}}


_lane: dict = {}  # a lane process's archive session and plan, set up once by start_lane


def start_lane(url: str, params: dict, batch: int) -> None:
    engine = open_archive(url, auto_upgrade=False)
    _lane.update(engine=engine, session=session_factory(engine)(), batch=batch, params=params,
                 events=plan_events(params["articles"], params["versions"], params["seed"]))


def write_chunk(number: int) -> tuple[int, int, dict, float, float]:
    """In a lane: make chunk `number` with the archive's current dictionary and write it as one
    crawl run; the chunk, its versions, what the writer did, and the seconds making and writing."""
    engine, session, batch, params = _lane["engine"], _lane["session"], _lane["batch"], _lane["params"]
    started = time.monotonic()
    current = rawpages.current(session)
    session.commit()
    chunk = make_chunk(number, params["articles"], _lane["events"], params["seed"], Compressor(current))
    made = time.monotonic()
    run_id = runs.start_run(engine, "backfill", BASE_URL, {"benchmark": "scale", "chunk": number})
    writer = ArchiveWriter(session, run_id)
    outcomes: Counter = Counter()
    for items in [chunk.first, *chunk.rounds]:
        for at in range(0, len(items), batch):
            outcomes.update(writer.write(items[at:at + batch]))
    runs.finish_run(engine, run_id, "succeeded", dict(outcomes))
    return number, chunk.versions, dict(outcomes), made - started, time.monotonic() - made


def build(url: str, sidecar: Path, params: dict, batch: int, log=print, lanes: int = LANES) -> dict:
    """Build (or finish building) the archive at `url`; the build's progress and throughput."""
    articles, versions = params["articles"], params["versions"]
    progress = load_progress(sidecar, params)
    chunks = -(-articles // CHUNK)
    done = done_chunks(progress)
    todo = [n for n in range(chunks) if n not in done]
    if not todo:
        return {**progress, **to_head(url, log)}
    engine = open_archive(url, auto_upgrade=True)
    session = session_factory(engine)()
    pool = ProcessPoolExecutor(max_workers=lanes, mp_context=get_context("spawn"),
                               initializer=start_lane, initargs=(url, params, batch))
    try:
        pending: set = set()
        trained = False
        last = time.monotonic()
        while todo or pending:
            # Fill the lanes; while no dictionary exists, one chunk at a time (its upkeep trains one).
            trained = trained or rawpages.current(session) is not None
            session.commit()
            while todo and len(pending) < (lanes if trained else 1):
                pending.add(pool.submit(write_chunk, todo.pop(0)))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                number, written, outcomes, making, writing = future.result()
                said = rawpages.maintain(session)
                now = time.monotonic()
                progress["seconds"] += now - last
                last = now
                mark_done(progress, number)
                progress["versions_written"] += written
                for key, n in outcomes.items():
                    progress["outcomes"][key] = progress["outcomes"].get(key, 0) + n
                sidecar.write_text(json.dumps(progress, indent=1))
                rate = progress["versions_written"] / max(progress["seconds"], 1e-9)
                left = (versions - progress["versions_written"]) / max(rate, 1e-9)
                log(f"  chunk {number + 1}/{chunks}: {written} versions, made in {making:.1f} s and written "
                    f"in {writing:.1f} s; {rate:.0f} versions/s overall, about {left / 60:.0f} min left"
                    + (f"; {said}" if said else ""))
        stored = session.scalar(select(func.count()).select_from(ArticleVersion))
        progress["versions_stored"] = stored
        sidecar.write_text(json.dumps(progress, indent=1))
    finally:
        pool.shutdown(cancel_futures=True)
        session.close()
        engine.dispose()
    return progress
