"""Writing the synthetic history through the crawl's own batch write path, resumably.

Each chunk is one crawl run written by pipeline.archive.writer.ArchiveWriter in batches of
`batch` items, one transaction each, exactly as the crawl's writer process writes them. After
every chunk the archive's dictionary upkeep runs (pipeline.archive.rawpages.maintain, which
ops/crawl.py runs after every crawl): the first dictionary is trained once 500 article pages
are in, the pages before it are recompressed, and later chunks compress with it.

Chunks are made (bench/scale/synthetic.py: text, markup, compression, fingerprints) in a second
process while the one before is written, so the build takes the longer of the two, not their sum.

Progress is kept beside the archive (`progress` in the sidecar JSON): the chunks done, the
versions written and the seconds it took. A killed build goes on with the first chunk not
done; a chunk half written is written again, and the writer finds its first part unchanged.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import func, select

from pipeline.archive import rawpages, runs
from pipeline.archive.db import current_revision, head_revision, make_engine, open_archive, session_factory
from pipeline.archive.models import ArticleVersion
from pipeline.archive.writer import ArchiveWriter
from pipeline.reading.compression import Compressor

from bench.scale.synthetic import BASE_URL, CHUNK, make_chunk, plan_events


def load_progress(sidecar: Path, params: dict) -> dict:
    if sidecar.exists():
        progress = json.loads(sidecar.read_text())
        if progress.get("params") == params:
            return progress
    return {"params": params, "chunks_done": 0, "seconds": 0.0, "versions_written": 0, "outcomes": {}}


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


def build(url: str, sidecar: Path, params: dict, batch: int, log=print) -> dict:
    """Build (or finish building) the archive at `url`; the build's progress and throughput."""
    articles, versions, seed = params["articles"], params["versions"], params["seed"]
    progress = load_progress(sidecar, params)
    chunks = -(-articles // CHUNK)
    if progress["chunks_done"] >= chunks:
        return {**progress, **to_head(url, log)}
    events = plan_events(articles, versions, seed)
    engine = open_archive(url, auto_upgrade=True)
    session = session_factory(engine)()
    makers = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))

    def make(number: int):
        """The chunk, made in the maker process with the archive's current dictionary."""
        current = rawpages.current(session)
        session.commit()
        return makers.submit(make_chunk, number, articles, events, seed, Compressor(current)), current

    try:
        upcoming = None
        for number in range(progress["chunks_done"], chunks):
            started = time.monotonic()
            made_next, compressed_with = upcoming or make(number)
            chunk = made_next.result()
            waited = time.monotonic() - started
            # The next chunk is made while this one is written; not before the first dictionary
            # exists (the upkeep below trains it), or its pages would all wait to be recompressed.
            upcoming = make(number + 1) if compressed_with is not None and number + 1 < chunks else None
            run_id = runs.start_run(engine, "backfill", BASE_URL, {"benchmark": "scale", "chunk": number})
            writer = ArchiveWriter(session, run_id)
            outcomes: Counter = Counter()
            for items in [chunk.first, *chunk.rounds]:
                for at in range(0, len(items), batch):
                    outcomes.update(writer.write(items[at:at + batch]))
            runs.finish_run(engine, run_id, "succeeded", dict(outcomes))
            said = rawpages.maintain(session)
            if upcoming is None and number + 1 < chunks:
                upcoming = make(number + 1)
            elapsed = time.monotonic() - started
            progress["chunks_done"] = number + 1
            progress["seconds"] += elapsed
            progress["versions_written"] += chunk.versions
            for key, n in outcomes.items():
                progress["outcomes"][key] = progress["outcomes"].get(key, 0) + n
            sidecar.write_text(json.dumps(progress, indent=1))
            rate = progress["versions_written"] / max(progress["seconds"], 1e-9)
            left = (versions - progress["versions_written"]) / max(rate, 1e-9)
            log(f"  chunk {number + 1}/{chunks}: {chunk.versions} versions in {elapsed:.1f} s "
                f"({waited:.1f} s waiting for them to be made), {rate:.0f} versions/s overall, "
                f"about {left / 60:.0f} min left"
                + (f"; {said}" if said else ""))
        stored = session.scalar(select(func.count()).select_from(ArticleVersion))
        progress["versions_stored"] = stored
        sidecar.write_text(json.dumps(progress, indent=1))
    finally:
        makers.shutdown(cancel_futures=True)
        session.close()
        engine.dispose()
    return progress
