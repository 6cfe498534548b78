"""The replica's whole world as plain data, and its one file on disk.

The state is the single source of truth: pages are rendered from it and the
ground truth manifest is read from it, so the two cannot disagree.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "state.json"
MUTATIONS_FILE = "mutations.json"  # every applied round's report, oldest first
FORMAT = 1

# The inner credit a reporter leaves at the very end of the last paragraph,
# e.g. "…等参加。(来源:“识政”微信公众号)". Capture uses ASCII parentheses.
INNER_CREDIT = re.compile(r"\(来源:([^()]+)\)$")


@dataclass
class Article:
    aid: int
    channel: str  # channel slug
    path: str  # fixed at creation; a later date correction does not move it
    title: str
    lede: str
    paragraphs: list[str]
    published_at: str  # ISO 8601, +08:00, as readable from the page
    date_style: str  # see site.DATE_STYLES
    editor: str
    source: str
    tags: list[str]
    modified_at: str  # ISO 8601; drives Last-Modified
    status: str = "live"  # "live" | "taken_down"
    takedown: str | None = None  # "404" | "redirect" once taken down
    duplicate_of: int | None = None  # aid of the original for republications
    defect: str | None = None  # "no_body" | "bad_bytes"
    special: str | None = None  # "hostile" | "huge" | "nested", see specials.py

    @property
    def live(self) -> bool:
        return self.status == "live"

    @property
    def origin_source(self) -> str | None:
        """The inner credit, derived from the body so the two never disagree."""
        if not self.paragraphs:
            return None
        match = INNER_CREDIT.search(self.paragraphs[-1])
        return match.group(1) if match else None


@dataclass
class SiteState:
    seed: int
    now: str  # the replica clock, ISO 8601
    round: int = 0  # mutation rounds applied so far
    generation: int = 0  # bumped by every save_state
    articles: dict[int, Article] = field(default_factory=dict)

    def next_aid(self) -> int:
        return max(self.articles, default=10000) + 1


def state_to_dict(state: SiteState) -> dict:
    return {
        "format": FORMAT,
        "seed": state.seed,
        "now": state.now,
        "round": state.round,
        "generation": state.generation,
        "articles": [asdict(a) for a in sorted(state.articles.values(), key=lambda a: a.aid)],
    }


def state_from_dict(data: dict) -> SiteState:
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported replica state format {data.get('format')!r}")
    articles = {a["aid"]: Article(**a) for a in data["articles"]}
    return SiteState(
        seed=data["seed"], now=data["now"], round=data["round"],
        generation=data["generation"], articles=articles,
    )


def state_to_json(state: SiteState) -> str:
    # One article per line keeps the file greppable and diffs readable.
    data = state_to_dict(state)
    articles = data.pop("articles")
    head = json.dumps(data, ensure_ascii=False, sort_keys=True)[:-1]
    lines = [json.dumps(a, ensure_ascii=False, sort_keys=True) for a in articles]
    return head + ', "articles": [\n' + ",\n".join(lines) + "\n]}\n"


def write_atomic(path: Path, text: str) -> None:
    """Readers (a running server) must never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_state(state: SiteState, directory: str | os.PathLike) -> Path:
    state.generation += 1
    path = Path(directory) / STATE_FILE
    write_atomic(path, state_to_json(state))
    return path


def load_state(directory: str | os.PathLike) -> SiteState:
    path = Path(directory) / STATE_FILE
    return state_from_dict(json.loads(path.read_text(encoding="utf-8")))


def append_report(directory: str | os.PathLike, report: dict) -> None:
    """Keep a round's report next to the state it produced."""
    path = Path(directory) / MUTATIONS_FILE
    reports = json.loads(path.read_text("utf-8")) if path.exists() else []
    reports.append(report)
    write_atomic(path, json.dumps(reports, ensure_ascii=False, indent=1) + "\n")


def has_state(directory: str | os.PathLike) -> bool:
    return (Path(directory) / STATE_FILE).is_file()
