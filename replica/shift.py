"""Lists that shift while a crawl walks them.

After the server has answered a given number of list-page requests, one
mutation round publishes new articles and takes some down, all at once and
only once. Items then move to later pages (new ones on top) and back to
earlier pages (gaps left by takedowns) under a crawler's feet. The round is
saved like any other (state.json and mutations.json), so the manifest sees it.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .mutate import mutate
from .state import append_report, load_state, save_state


@dataclass(frozen=True)
class ShiftPlan:
    after_list_requests: int  # list-page answers before the round fires (>= 1)
    new: int = 10
    takedowns: int = 5
    seed: int = 1

    def __post_init__(self):
        if self.after_list_requests < 1:
            raise ValueError("after_list_requests must be at least 1")
        if self.new < 0 or self.takedowns < 0:
            raise ValueError("new and takedowns must not be negative")

    def apply(self, state) -> dict:
        return mutate(state, self.seed, edits=0, takedowns=self.takedowns, republish=0, new=self.new)


class ListShift:
    """Counts list-page answers and fires the plan's round once."""

    def __init__(self, plan: ShiftPlan, state_dir: str | os.PathLike):
        self.plan = plan
        self.state_dir = Path(state_dir)
        self._lock = threading.Lock()
        self._answered = 0
        self.report: dict | None = None
        plan.apply(load_state(self.state_dir))  # a dry run: too few articles fails now, not mid-crawl

    def list_answered(self) -> bool:
        """Count one list-page answer; True when this one fired the round."""
        with self._lock:  # held while saving: no second round, no half-applied one
            self._answered += 1
            if self.report is not None or self._answered < self.plan.after_list_requests:
                return False
            state = load_state(self.state_dir)  # the served state is shared: never mutate it in place
            report = self.plan.apply(state)
            save_state(state, self.state_dir)
            append_report(self.state_dir, report)
            self.report = report
            return True
