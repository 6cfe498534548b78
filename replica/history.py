"""Every version every article ever had, one JSON object a line in DIR/history.jsonl.

The state file only knows the present; an archive's recall can only be
measured against the past, including versions that lived for seconds. Live
mode (live.py) appends a line per version right after the save that made it
visible, so a line's `at` is when a crawler could first have seen it.

A line: {"aid", "version" (1, 2, … per aid), "kind" (created, edited,
taken_down, restored), "at" (UTC, ISO 8601), "expected"}. `expected` is the
manifest's record (manifest.expected_article) with site-relative URLs, so a
history does not depend on where the replica was served.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from .manifest import expected_article
from .state import Article, SiteState

HISTORY_FILE = "history.jsonl"
BASE_URL = ""  # URLs in `expected` stay site-relative: /news/…/10042.html
KINDS = ("created", "edited", "taken_down", "restored")


def history_path(directory: str | os.PathLike) -> Path:
    return Path(directory) / HISTORY_FILE


def expected_now(state: SiteState, article: Article) -> dict:
    return expected_article(state, article, BASE_URL)


def record(aid: int, version: int, kind: str, at: datetime, expected: dict) -> dict:
    return {"aid": aid, "version": version, "kind": kind, "at": at.isoformat(), "expected": expected}


def transition(before: dict | None, after: dict) -> str:
    """The kind of version that takes an article from `before` to `after`
    (expected records; None: the article was not known yet)."""
    if before is None:
        return "created" if after["status"] == "live" else "taken_down"
    if before["status"] != after["status"]:
        return "restored" if after["status"] == "live" else "taken_down"
    return "edited"


def append_history(directory: str | os.PathLike, records: list[dict]) -> None:
    """Append and flush: a reader (a test, live-report) sees whole lines only."""
    if not records:
        return
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    with open(history_path(directory), "a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()


def load_history(directory: str | os.PathLike) -> list[dict]:
    """Every line of DIR/history.jsonl, oldest first.

    A last line cut short (the writer was killed mid-write) is left out: it
    is the one version whose save may not have happened either.
    """
    text = history_path(directory).read_text(encoding="utf-8")
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]
    records = [json.loads(line) for line in complete if line.strip()]
    if tail.strip():
        try:
            records.append(json.loads(tail))
        except json.JSONDecodeError:
            pass
    return records


def latest_versions(history: list[dict]) -> dict[int, dict]:
    """The newest line per aid."""
    latest: dict[int, dict] = {}
    for line in history:
        current = latest.get(line["aid"])
        if current is None or line["version"] > current["version"]:
            latest[line["aid"]] = line
    return latest
