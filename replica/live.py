"""Live mode: the replica publishes, edits, takes down and restores articles
over real seconds, and remembers every version it ever served.

Mutation rounds (mutate.py) change the site in one jump between two crawls,
so they cannot show what an archive misses while it crawls a portal that
keeps changing: an edit overwritten before the next visit, an article
published and taken down between two walks. Live mode runs the portal's
churn in compressed time beside a running ReplicaServer, and writes each
version to DIR/history.jsonl (history.py) so that recall.py can say what
share of them an archive captured.

The whole schedule (when, what, which aid) is drawn up front from one RNG
seeded with the plan's seed, so the same plan on the same state gives the
same events; only the moments they land on, and what those moments fix
(publication dates, paths, Last-Modified), follow the real clock. The text
an event writes comes from an RNG of its own, seeded by the event's place
in the schedule, so it does not depend on timing either.

Defective and special articles are never touched; republished copies are
never edited (as in mutation rounds) but may be taken down.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from random import Random

from .generator import new_article
from .history import (append_history, expected_now, history_path, latest_versions, load_history,
                      record, transition)
from .mutate import EDIT_KINDS, REDIRECT_SHARE, edit, restore, take_down
from .recall import version_recall
from .site import CHANNEL_BY_SLUG, CHANNELS, to_iso
from .state import SiteState, load_state, save_state
from .text import TextMaker

__all__ = ["LiveEvent", "LivePlan", "LivePortal", "load_history", "plan_events", "version_recall"]

LATE_FACTOR = 3.0  # late edits come no sooner than this many early medians after publication
EARLY_SIGMA = 1.0  # spread (log scale) of early-edit delays around their median
# The server notices a new state.json by (mtime, size, inode). Two saves
# inside one tick of the file system's coarse clock can reuse an inode and
# keep the size (a typo), and would then look like one; saves are spaced.
MIN_SAVE_GAP = 0.02
IDLE_PAUSE = 0.001  # when a due event could not be applied yet (clock granularity)


@dataclass(frozen=True)
class LivePlan:
    """The seeded process of live mode; times in real seconds.

    Defaults suit a test of a few minutes against a replica of a few
    thousand articles.
    """

    seed: int = 1
    publish_every: float = 4.0  # mean gap between new articles (exponential gaps)
    edited_share: float = 0.3  # of new articles, those edited at least once
    edits_mean: float = 1.8  # mean edits of an edited article (geometric, at least one)
    early_edit_seconds: float = 20.0  # median delay of an early edit after publication (lognormal)
    late_share: float = 0.1  # of edits, the late ones
    late_edit_seconds: float = 240.0  # late edits land uniformly up to this long after publication
    old_edit_share: float = 0.02  # of articles there before the start, those edited once
    takedown_share: float = 0.03  # of all articles, old and new, those taken down
    # ... of the articles there before the start, if they are to differ (None: takedown_share)
    old_takedown_share: float | None = None
    restore_share: float = 0.2  # of takedowns, those that come back later
    duration: float = 300.0  # events fall in [0, duration); nothing happens after

    def __post_init__(self):
        if not self.publish_every > 0:
            raise ValueError("publish_every must be positive")
        if not self.edits_mean >= 1:
            raise ValueError("edits_mean must be at least 1")
        if not self.early_edit_seconds > 0:
            raise ValueError("early_edit_seconds must be positive")
        if self.late_edit_seconds < 0 or self.duration < 0:
            raise ValueError("late_edit_seconds and duration must not be negative")
        for name in ("edited_share", "late_share", "old_edit_share", "takedown_share", "restore_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.old_takedown_share is not None and not 0 <= self.old_takedown_share <= 1:
            raise ValueError("old_takedown_share must be between 0 and 1")


@dataclass(frozen=True)
class LiveEvent:
    at: float  # seconds after the start
    kind: str  # as in the history: created, edited, taken_down, restored
    aid: int
    detail: str = ""  # channel slug (created), edit kind (edited), "404" or "redirect" (taken_down)


# --- the schedule --------------------------------------------------------------

def _edit_delays(rng: Random, plan: LivePlan) -> list[float]:
    count = 1
    while rng.random() >= 1 / plan.edits_mean:  # geometric: mean edits_mean
        count += 1
    delays = []
    for _ in range(count):
        if rng.random() < plan.late_share:
            low = min(LATE_FACTOR * plan.early_edit_seconds, plan.late_edit_seconds)
            delays.append(rng.uniform(low, plan.late_edit_seconds))
        else:
            delays.append(rng.lognormvariate(math.log(plan.early_edit_seconds), EARLY_SIGMA))
    return sorted(delays)


def _downtime(rng: Random, plan: LivePlan, aid: int, since: float, share: float | None = None) -> list[LiveEvent]:
    """A takedown (and maybe a restore) at random moments after `since`, or nothing."""
    if rng.random() >= (plan.takedown_share if share is None else share):
        return []
    down = rng.uniform(since, plan.duration)
    how = "redirect" if rng.random() < REDIRECT_SHARE else "404"
    back = rng.uniform(down, plan.duration) if rng.random() < plan.restore_share else math.inf
    if down >= plan.duration:  # uniform() may return its upper end
        return []
    events = [LiveEvent(down, "taken_down", aid, how)]
    if back < plan.duration:
        events.append(LiveEvent(back, "restored", aid))
    return events


def _visible(edits: list[LiveEvent], downtime: list[LiveEvent], duration: float) -> list[LiveEvent]:
    """Edits that land before the end, and not while the page is gone (nobody
    could see them: a restore brings back the page as it was taken down)."""
    gone_from = downtime[0].at if downtime else math.inf
    back_at = downtime[1].at if len(downtime) > 1 else math.inf
    return [e for e in edits if e.at < duration and not gone_from <= e.at <= back_at]


def plan_events(plan: LivePlan, state: SiteState) -> tuple[LiveEvent, ...]:
    """The whole run's events for `state` as it is before the start, by time."""
    rng = Random(f"live:{plan.seed}")
    events: list[LiveEvent] = []

    eligible = sorted(a.aid for a in state.articles.values()
                      if a.live and a.defect is None and a.special is None)
    for aid in eligible:
        edits = []
        if state.articles[aid].duplicate_of is None and rng.random() < plan.old_edit_share:
            edits.append(LiveEvent(rng.uniform(0, plan.duration), "edited", aid, rng.choice(EDIT_KINDS)))
        downtime = _downtime(rng, plan, aid, 0.0, plan.old_takedown_share)
        events += _visible(edits, downtime, plan.duration) + downtime

    aid, at = state.next_aid(), rng.expovariate(1 / plan.publish_every)
    while at < plan.duration:
        events.append(LiveEvent(at, "created", aid, rng.choice(CHANNELS).slug))
        edits = []
        if rng.random() < plan.edited_share:
            edits = [LiveEvent(at + delay, "edited", aid, rng.choice(EDIT_KINDS))
                     for delay in _edit_delays(rng, plan)]
        downtime = _downtime(rng, plan, aid, at)
        events += _visible(edits, downtime, plan.duration) + downtime
        aid, at = aid + 1, at + rng.expovariate(1 / plan.publish_every)

    # Stable: at equal times an article's creation stays before what follows it.
    return tuple(sorted(events, key=lambda e: e.at))


# --- the running portal --------------------------------------------------------

class LivePortal:
    """Applies a plan's events to DIR/state.json at their real times.

    `start()` runs them on a daemon thread (`begin()` and `step()` drive the
    same by hand, e.g. under a simulated clock). The portal owns state.json
    while it runs: the state is read once, here, and saved after each batch.
    `clock` gives seconds since the epoch, like time.time.
    """

    def __init__(self, state_dir: str | os.PathLike, plan: LivePlan | None = None,
                 clock=time.time):
        self.state_dir = Path(state_dir)
        self.plan = plan or LivePlan()
        self.clock = clock
        self._state = load_state(self.state_dir)
        self._events = plan_events(self.plan, self._state)
        self._next = 0  # index of the first event not applied yet
        self._versions: dict[int, int] = {}
        self._started: float | None = None
        self.started_at: datetime | None = None
        self._last_at: datetime | None = None
        self._last_save = -math.inf  # time.monotonic() of the last save
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def events(self) -> tuple[LiveEvent, ...]:
        """The planned schedule, by time."""
        return self._events

    @property
    def applied(self) -> int:
        """Events applied so far."""
        return self._next

    @property
    def history_path(self) -> Path:
        return history_path(self.state_dir)

    def _moment(self, ts: float) -> datetime:
        """`ts` as a UTC time, strictly after the previous save's: versions of
        one article never share an `at`."""
        moment = datetime.fromtimestamp(ts, timezone.utc)
        if self._last_at is not None and moment <= self._last_at:
            moment = self._last_at + timedelta(microseconds=1)
        self._last_at = moment
        return moment

    def _save(self, moment: datetime, records: list[dict]) -> None:
        self._state.now = to_iso(moment)  # Date and Last-Modified follow the real clock
        save_state(self._state, self.state_dir)
        self._last_save = time.monotonic()
        append_history(self.state_dir, records)  # after the save: `at` is when it became visible

    def _version(self, aid: int, kind: str, moment: datetime) -> dict:
        self._versions[aid] = self._versions.get(aid, 0) + 1
        return record(aid, self._versions[aid], kind, moment,
                      expected_now(self._state, self._state.articles[aid]))

    def begin(self) -> None:
        """Start the clock of the schedule and record every article as it is now.

        With no history yet, each article becomes its version 1. A history
        left by an earlier run is continued: only articles that changed since
        its last line (a mutation round in between) get a version.
        """
        if self._started is not None:
            raise RuntimeError("live mode already started")
        ts = self.clock()
        moment = self._moment(ts)
        self._started, self.started_at = ts, moment
        latest = latest_versions(load_history(self.state_dir)) if self.history_path.exists() else {}
        self._versions = {aid: line["version"] for aid, line in latest.items()}
        records = []
        for aid in sorted(self._state.articles):
            now = expected_now(self._state, self._state.articles[aid])
            before = latest[aid]["expected"] if aid in latest else None
            if before != now:
                records.append(self._version(aid, transition(before, now), moment))
        self._save(moment, records)

    def step(self) -> int:
        """Apply the events due now in one save; returns how many.

        An article changes at most once per save, so that each of its
        versions was served, however briefly: a second event of the same
        article waits for the next save.
        """
        if self._started is None:
            raise RuntimeError("live mode not started")
        ts = self.clock()
        batch: list[int] = []
        touched: set[int] = set()
        while self._next + len(batch) < len(self._events):
            event = self._events[self._next + len(batch)]
            if self._started + event.at > ts or event.aid in touched:  # as _run computes `due`
                break
            batch.append(self._next + len(batch))
            touched.add(event.aid)
        if not batch:
            return 0
        moment = self._moment(ts)
        for index in batch:
            self._apply(index, self._events[index], moment)
        self._save(moment, [self._version(self._events[i].aid, self._events[i].kind, moment)
                            for i in batch])
        self._next += len(batch)
        return len(batch)

    def _apply(self, index: int, event: LiveEvent, moment: datetime) -> None:
        state = self._state
        maker = TextMaker(Random(f"live:{self.plan.seed}:{index}"))
        if event.kind == "created":
            titles = {a.title for a in state.articles.values()}
            state.articles[event.aid] = new_article(maker, event.aid, CHANNEL_BY_SLUG[event.detail],
                                                    moment, titles)
        elif event.kind == "edited":
            titles = {a.title for a in state.articles.values()}
            edit(state.articles[event.aid], event.detail, maker, moment, titles)
        elif event.kind == "taken_down":
            take_down(state.articles[event.aid], event.detail)
        else:
            restore(state.articles[event.aid], moment)

    def _run(self) -> None:
        try:
            while self._next < len(self._events):
                due = self._started + self._events[self._next].at
                wait = max(due - self.clock(), self._last_save + MIN_SAVE_GAP - time.monotonic())
                if self._stopping.wait(max(wait, 0)):
                    return
                if wait <= 0 and not self.step():
                    self._stopping.wait(IDLE_PAUSE)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            self._finished.set()

    def start(self) -> "LivePortal":
        self.begin()
        self._thread = threading.Thread(target=self._run, name="replica-live", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every event is applied (or the run stopped); False on timeout."""
        return self._finished.wait(timeout)

    def stop(self) -> None:
        """Stop at once; events not applied yet never happen. Raises what
        failed on the thread, if anything did."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is not None:
            raise RuntimeError(f"live mode failed: {self.error!r}") from self.error

    def __enter__(self) -> "LivePortal":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
