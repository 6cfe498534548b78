"""bench/scale: the synthetic history's shape, and a small build checked end to end (the search
against a substring scan, verify on the result)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.scale.build import done_chunks, load_progress, mark_done
from bench.scale.synthetic import MAX_EVENTS, plan_events

ROOT = Path(__file__).resolve().parent.parent


def test_the_plan_writes_exactly_the_versions_asked_for_and_most_articles_keep_one():
    events = plan_events(10_000, 40_000, seed=3)
    assert sum(events) == 30_000
    assert sum(1 for n in events if n == 0) > 7_000
    assert max(events) <= MAX_EVENTS
    assert plan_events(10_000, 40_000, seed=3) == events  # resumable builds depend on it


@given(st.permutations(range(12)), st.integers(0, 12))
def test_chunks_finished_out_of_order_are_remembered_exactly(order, finished):
    """Lanes finish chunks out of order; a resumed build must redo exactly the ones not finished."""
    progress = load_progress(Path("/nonexistent"), {})
    for number in order[:finished]:
        mark_done(progress, number)
    assert done_chunks(progress) == set(order[:finished])
    assert progress["chunks_done"] not in progress["done_beyond"]
    assert all(n > progress["chunks_done"] for n in progress["done_beyond"])


def test_a_small_scale_run_builds_through_the_write_path_and_search_equals_a_scan(tmp_path):
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, "-m", "bench.scale", "--articles", "300", "--versions", "700",
                    "--queries", "25", "--phases", "build,check,verify,size", "--dir", str(tmp_path),
                    "-o", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["build"]["versions"] == 700
    assert result["build"]["outcomes"]["archive/new"] == 300
    assert result["check"]["queries"] == 25 and result["check"]["differences"] == []
    assert result["verify"]["ok"]
    # Built once: a second run finds it and builds nothing.
    again = subprocess.run([sys.executable, "-m", "bench.scale", "--articles", "300", "--versions", "700",
                            "--phases", "size", "--dir", str(tmp_path)], cwd=ROOT, check=True,
                           capture_output=True, text=True, timeout=600)
    assert "chunk" not in again.stdout and "upgraded" not in again.stdout
    # An archive behind the newest revision (built before it, or a migration phase cut short) is
    # brought to head before it is measured, and the results say from where.
    from alembic import command

    from pipeline.archive.db import alembic_config, head_revision

    command.downgrade(alembic_config(f"sqlite:///{tmp_path / 'sqlite-300-700-s1.sqlite'}"), "0008")
    behind = subprocess.run([sys.executable, "-m", "bench.scale", "--articles", "300", "--versions", "700",
                             "--phases", "size", "--dir", str(tmp_path), "-o", str(out)], cwd=ROOT, check=True,
                            capture_output=True, text=True, timeout=600)
    assert "the archive was at revision 0008" in behind.stdout
    upgraded = json.loads(out.read_text())["build"]["upgraded"]
    assert (upgraded["from"], upgraded["to"]) == ("0008", head_revision())
    # The writer's memory, measured on the archive itself: its crawl writes the replica's 300
    # articles. A second such run would crawl articles the archive holds and write nothing: refused,
    # with no figure that could pass for one.
    for expected in ("measured", "refused"):
        subprocess.run([sys.executable, "-m", "bench.scale", "--articles", "300", "--versions", "700",
                        "--phases", "writer", "--in-place", "--dir", str(tmp_path), "-o", str(out)],
                       cwd=ROOT, check=True, capture_output=True, timeout=600)
        writer = json.loads(out.read_text())["writer"]
        if expected == "measured":
            assert "300 new" in writer["said"] and writer["writer_peak_rss_mb"] > 0, writer
        else:
            assert "writer_peak_rss_mb" not in writer and "already holds" in writer["error"], writer


def test_a_copy_the_disk_cannot_hold_is_refused_with_the_way_out(tmp_path):
    from bench.scale import probes

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(probes.NoRoomForCopy, match="--in-place"):
        probes.room_for_copy(free, tmp_path)
    probes.room_for_copy(1024, tmp_path)  # a small one is made
