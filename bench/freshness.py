"""Freshness benchmark: how many of the versions a portal shows does a revisit policy capture?

A simulated portal (an archive of existing articles, a publication rate, a mixture of edit
processes, takedowns and returns) runs for simulated weeks; each policy gets the same request
budget per day and is driven on a scheduling grid, the way the daemon's frequent job runs:
every run first reads the channels' first list pages, fetches what is new, then spends the
rest of its share of the budget on revisits. Policies:

- adaptive: the project's own policy core (pipeline/policy.py), learning from its checks;
- uniform: round-robin, the longest-unseen article first;
- tiers: the policy shipped before it (fixed age tiers every 15 minutes in id order, and a
  nightly revisit of everything in id order), under the same daily budget;
- oracle: one request per version, at the moment it appears (the least any policy could spend
  for everything; it is not budgeted).

Reports version recall (versions captured / versions the portal showed), edit recall, new-article
recall, staleness of captured versions (mean, 90th percentile), takedown detection delay, and
requests per day. Run `python -m bench.freshness --help`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from pipeline.archive import policy as core

DAY = 86400.0
HOUR = 3600.0
CREATED, EDITED, TAKEN_DOWN, RESTORED = 0, 1, 2, 3
KINDS = ("created", "edited", "taken_down", "restored")
CHANNELS = 5
LIST_PAGE_ITEMS = 20  # the portal's list pages hold 20 items
# The shipped policy: (articles up to this many days old, revisited every this many hours).
OLD_TIERS = ((2, 1), (14, 6), (90, 24), (None, 168))
OLD_INCREMENTAL_MINUTES = 15
OLD_DEEP_AT = 2.5 * HOUR  # 02:30 portal time; the simulation's days start at midnight


@dataclass(frozen=True)
class Portal:
    """The simulated portal's processes (times in seconds unless named otherwise)."""

    articles: int = 200_000  # in the archive when the simulation starts
    days: float = 60.0
    publish_per_week: float = 1000.0
    edited_share: float = 0.15  # of articles, ever edited
    edits_mean: float = 1.6  # edits of an edited article (geometric, at least one)
    early_median_hours: float = 3.0  # an early edit's delay after publication (lognormal median)
    early_sigma: float = 1.5  # ... and spread (log scale): hours to days
    late_share: float = 0.15  # of edits, late: uniform over the late window
    late_days: tuple = (7.0, 365.0)
    channel_edit_factor: tuple = (0.5, 0.8, 1.0, 1.3, 1.9)  # channels differ in how much they edit
    takedown_share: float = 0.01  # of articles, ever taken down
    takedown_median_days: float = 30.0  # lognormal, widely spread: days to years after publication
    restore_share: float = 0.1  # of takedowns
    restore_median_days: float = 2.0
    seed: int = 1

    @classmethod
    def busy(cls, **overrides) -> "Portal":
        """A busier portal: more articles edited, more edits each, more of them late."""
        return replace(cls(edited_share=0.4, edits_mean=2.5, late_share=0.25, takedown_share=0.02),
                       **overrides)


@dataclass
class World:
    """Every article's publication, channel and version events inside the simulated window."""

    birth: np.ndarray
    channel: np.ndarray
    n_initial: int
    keys: np.ndarray  # article * SCALE + time of each window event, sorted
    times: np.ndarray
    kinds: np.ndarray
    first: np.ndarray  # per article: index of its first window event in keys
    prior_changes: np.ndarray  # per initial article: changes before the window (the archive saw them)
    initial_live: np.ndarray
    scale: float

    def count_until(self, articles: np.ndarray, t: float) -> np.ndarray:
        """How many window events each article has had by time t."""
        return np.searchsorted(self.keys, articles * self.scale + t, side="right") - self.first[articles]


def build_world(p: Portal) -> World:
    rng = np.random.default_rng(p.seed)
    horizon = p.days * DAY
    rate = p.publish_per_week / (7 * DAY)
    initial_birth = -rng.uniform(0, p.articles / rate, p.articles)
    new_birth = np.cumsum(rng.exponential(1 / rate, int(rate * horizon * 1.5) + 10))
    new_birth = new_birth[new_birth < horizon]
    birth = np.concatenate([np.sort(initial_birth), new_birth])
    n = len(birth)
    channel = rng.integers(0, CHANNELS, n)
    factor = np.asarray(p.channel_edit_factor)[channel]
    edited = rng.random(n) < np.clip(p.edited_share * factor, 0, 1)
    n_edits = np.where(edited, rng.geometric(1 / p.edits_mean, n), 0)
    owner = np.repeat(np.arange(n), n_edits)
    late = rng.random(len(owner)) < p.late_share
    delay = np.where(late, rng.uniform(p.late_days[0] * DAY, p.late_days[1] * DAY, len(owner)),
                     rng.lognormal(math.log(p.early_median_hours * HOUR), p.early_sigma, len(owner)))
    edit_time = birth[owner] + delay
    down = rng.random(n) < p.takedown_share
    down_at = np.where(down, birth + rng.lognormal(math.log(p.takedown_median_days * DAY), 2.0, n), np.inf)
    back = down & (rng.random(n) < p.restore_share)
    back_at = np.where(back, down_at + rng.lognormal(math.log(p.restore_median_days * DAY), 1.0, n), np.inf)
    # An edit while the article is down is not shown to anyone: dropped.
    hidden = (edit_time >= down_at[owner]) & (edit_time < back_at[owner])
    owner, edit_time = owner[~hidden], edit_time[~hidden]
    ev_article = np.concatenate([owner, np.flatnonzero(down), np.flatnonzero(back),
                                 np.arange(p.articles, n)])
    ev_time = np.concatenate([edit_time, down_at[down], back_at[back], birth[p.articles:]])
    ev_kind = np.concatenate([np.full(len(owner), EDITED), np.full(down.sum(), TAKEN_DOWN),
                              np.full(back.sum(), RESTORED), np.full(n - p.articles, CREATED)])
    before = ev_time < 0
    prior_changes = np.bincount(ev_article[before & (ev_article < p.articles)], minlength=n)[:p.articles]
    # What an initial article shows at the start: down if its takedown came before and its return did not.
    initial_live = ~((down_at[:p.articles] < 0) & (back_at[:p.articles] >= 0))
    inside = (ev_time >= 0) & (ev_time < horizon)
    ev_article, ev_time, ev_kind = ev_article[inside], ev_time[inside], ev_kind[inside]
    scale = 10 ** math.ceil(math.log10(horizon * 2))
    keys = ev_article * scale + ev_time
    order = np.argsort(keys, kind="stable")
    keys, ev_time, ev_kind = keys[order], ev_time[order], ev_kind[order]
    first = np.searchsorted(keys, np.arange(n) * scale, side="left")
    return World(birth, channel, p.articles, keys, ev_time, ev_kind, first, prior_changes, initial_live, scale)


@dataclass
class Tally:
    """What a policy captured, as it goes."""

    captured: np.ndarray  # per event: captured?
    capture_time: np.ndarray
    requests: int = 0
    lists: int = 0

    @classmethod
    def of(cls, world: World) -> "Tally":
        return cls(np.zeros(len(world.times), dtype=bool), np.full(len(world.times), np.nan))

    def report(self, world: World, days: float) -> dict:
        out = {"requests": self.requests, "requests_per_day": round(self.requests / days, 1),
               "list_requests": self.lists}
        total = len(world.times)
        out["versions"] = total
        out["version_recall"] = round(float(self.captured.mean()) if total else 1.0, 4)
        for kind, name, count in ((EDITED, "edit", "edits"), (CREATED, "new", "new_articles"),
                                  (TAKEN_DOWN, "takedown", "takedowns"), (RESTORED, "restore", "restores")):
            rows = world.kinds == kind
            out[count] = int(rows.sum())
            out[f"{name}_recall"] = round(float(self.captured[rows].mean()) if rows.any() else 1.0, 4)
        stale = (self.capture_time - world.times)[self.captured] / HOUR
        out["staleness_mean_hours"] = round(float(stale.mean()), 3) if len(stale) else 0.0
        out["staleness_p90_hours"] = round(float(np.percentile(stale, 90)), 3) if len(stale) else 0.0
        down = self.captured & (world.kinds == TAKEN_DOWN)
        delay = (self.capture_time - world.times)[down] / HOUR
        out["takedown_delay_mean_hours"] = round(float(delay.mean()), 2) if len(delay) else None
        out["takedown_delay_p90_hours"] = round(float(np.percentile(delay, 90)), 2) if len(delay) else None
        return out


class Archive:
    """What the archive knows of each article, and the checks that update it."""

    def __init__(self, world: World, floor: float, rng: np.random.Generator):
        n = len(world.birth)
        self.world = world
        self.known = np.zeros(n, dtype=bool)
        self.known[:world.n_initial] = True
        self.live = np.ones(n, dtype=bool)
        self.live[:world.n_initial] = world.initial_live
        self.first_seen = world.birth.copy()
        # A running archive has seen every initial article within the floor before the start.
        self.last_check = np.full(n, np.nan)
        self.last_check[:world.n_initial] = -rng.uniform(0, floor, world.n_initial)
        self.changes = np.zeros(n)
        self.changes[:world.n_initial] = world.prior_changes
        self.seen = np.zeros(n, dtype=np.int64)  # window events seen at the last check
        self.next_new = world.n_initial  # the next article to be published (in birth order)

    def check(self, articles: np.ndarray, t: float, tally: Tally) -> tuple[np.ndarray, np.ndarray]:
        """Fetch these articles at time t. Returns (previous check time, changed?) per article."""
        world = self.world
        tally.requests += len(articles)
        now_count = world.count_until(articles, t)
        changed = now_count > self.seen[articles]
        hit = articles[changed]
        event = world.first[hit] + now_count[changed] - 1  # the newest version: what the page shows
        tally.captured[event] = True
        tally.capture_time[event] = t
        kind = world.kinds[event]
        self.live[hit] = np.where(kind == TAKEN_DOWN, False, np.where(kind == RESTORED, True, self.live[hit]))
        previous = self.last_check[articles].copy()
        new = ~self.known[articles]
        self.first_seen[articles[new]] = t
        self.known[articles] = True
        self.changes[hit] += ~np.isin(kind, [CREATED])
        self.seen[articles] = now_count
        self.last_check[articles] = t
        return previous, changed & ~new

    def published_until(self, t: float) -> np.ndarray:
        """Articles published since the last call: what the list pages show as new."""
        end = int(np.searchsorted(self.world.birth, t, side="right"))
        new = np.arange(self.next_new, end)
        self.next_new = end
        return new


def list_cost(world: World, new: np.ndarray) -> int:
    """The first list page of every channel, and one more page per 20 new articles in a channel."""
    per_channel = np.bincount(world.channel[new], minlength=CHANNELS)
    return CHANNELS + int((per_channel // LIST_PAGE_ITEMS).sum())


class Adaptive:
    """The project's policy core, fed with the intervals its own checks observe."""

    name = "adaptive"

    def __init__(self, archive: Archive, floor: float):
        self.archive = archive
        self.floor = floor
        streams = tuple(f"channel {c}" for c in range(CHANNELS))
        self.streams = streams
        self.evidence = core.Evidence.empty(CHANNELS)
        self.model = core.prior_model(streams)
        self.fitted_on = 0
        self._refresh()

    def _refresh(self) -> None:
        """Cache what changes only with a check or a new model: C at the last check, and each
        article's exposure (articles not yet published count as unseen: age 0)."""
        a = self.archive
        channel, birth = a.world.channel, a.world.birth
        self.c_last = self.model.cumulative(channel, np.nan_to_num(a.last_check - birth))
        seen = self.model.cumulative(channel, a.first_seen - birth)
        self.exposure = np.maximum(self.c_last - seen, 0.0)

    def world_channel(self):
        return self.archive.world.channel

    def _birth(self):
        return self.archive.world.birth

    def observe(self, articles: np.ndarray, previous: np.ndarray, changed: np.ndarray, t: float) -> None:
        a = self.archive
        had = ~np.isnan(previous)
        rows = articles[had]
        if len(rows):
            birth = self._birth()[rows]
            self.evidence = self.evidence.add(core.Intervals.of(
                self.world_channel()[rows], previous[had] - birth, t - birth, changed[had]),
                keep_changed=core.MAX_FIT_INTERVALS)
        if self.evidence.intervals - self.fitted_on >= max(1, self.fitted_on // 10):
            known = a.known
            articles_now = core.Articles.of(self.world_channel()[known], self._birth()[known],
                                            a.first_seen[known], a.last_check[known], a.changes[known],
                                            a.live[known])
            self.model = core.fit(self.evidence, articles_now, self.streams)
            self.fitted_on = self.evidence.intervals
            self._refresh()
        else:
            birth = self._birth()[articles]
            ch = self.world_channel()[articles]
            self.c_last[articles] = self.model.cumulative(ch, t - birth)
            seen = self.model.cumulative(ch, a.first_seen[articles] - birth)
            self.exposure[articles] = np.maximum(self.c_last[articles] - seen, 0.0)

    def pick(self, t: float, budget: int) -> np.ndarray:
        a = self.archive
        known = np.flatnonzero(a.known)
        since = self.model.cumulative(self.world_channel()[known], t - self._birth()[known]) - self.c_last[known]
        value = np.where(a.live[known], core.value(self.model.kappa, a.changes[known], self.exposure[known], since),
                         0.0)
        plan = core.choose(value, t - a.last_check[known], budget, self.floor)
        return known[plan.order]


class Uniform:
    """Round-robin: the longest-unseen articles first."""

    name = "uniform"

    def __init__(self, archive: Archive, floor: float):
        self.archive = archive

    def observe(self, *args) -> None:
        pass

    def pick(self, t: float, budget: int) -> np.ndarray:
        known = np.flatnonzero(self.archive.known)
        unseen = t - self.archive.last_check[known]
        if budget >= len(known):
            return known
        return known[np.argpartition(-unseen, budget - 1)[:budget]] if budget > 0 else known[:0]


def _walk_lists(world: World, archive: Archive, tally: Tally, t: float, allowance: int, waiting: np.ndarray):
    """A run's first steps: the channels' first list pages, then the new articles they show (those
    the allowance cannot pay for wait for the next run). Returns (requests spent, articles still
    waiting, (articles fetched, their previous look, changed?) or None)."""
    new = archive.published_until(t)
    lists = min(allowance, list_cost(world, new))
    tally.lists += lists
    tally.requests += lists
    waiting = np.concatenate([waiting, new])
    fetch, waiting = waiting[:allowance - lists], waiting[allowance - lists:]
    if not len(fetch):
        return lists, waiting, None
    previous, changed = archive.check(fetch, t, tally)
    return lists + len(fetch), waiting, (fetch, previous, changed)


def simulate(world: World, portal: Portal, policy: str, per_day: float, grid: float, floor: float) -> dict:
    horizon = portal.days * DAY
    archive = Archive(world, floor, np.random.default_rng(portal.seed + 1))
    tally = Tally.of(world)
    if policy == "oracle":
        tally.captured[:] = True
        tally.capture_time[:] = world.times
        tally.requests = len(world.times)
        return tally.report(world, portal.days)
    if policy == "tiers":
        return _simulate_tiers(world, portal, archive, tally, per_day)
    chooser = {"adaptive": Adaptive, "uniform": Uniform}[policy](archive, floor)
    accrued, waiting = 0.0, np.array([], dtype=np.int64)
    t = grid
    while t < horizon:
        accrued += per_day * grid / DAY
        allowance = int(accrued)
        accrued -= allowance  # a run spends its share or leaves it: an unspent share is not carried
        spent, waiting, looked = _walk_lists(world, archive, tally, t, allowance, waiting)
        allowance -= spent
        if looked is not None:
            chooser.observe(*looked, t)
        if allowance > 0:
            chosen = chooser.pick(t, allowance)
            if len(chosen):
                previous, changed = archive.check(chosen, t, tally)
                chooser.observe(chosen, previous, changed, t)
        t += grid
    return tally.report(world, portal.days)


def _simulate_tiers(world: World, portal: Portal, archive: Archive, tally: Tally, per_day: float) -> dict:
    """Every 15 minutes an incremental run (new articles, then the articles due by their age tier,
    in id order); at 02:30 the deep revisit of every article in id order; all under one daily
    budget, spent first come first served."""
    horizon = portal.days * DAY
    grid = OLD_INCREMENTAL_MINUTES * 60.0
    t, day, left, waiting = grid, -1, 0, np.array([], dtype=np.int64)
    while t < horizon:
        if int(t // DAY) != day:
            day, left = int(t // DAY), int(per_day)
        spent, waiting, _ = _walk_lists(world, archive, tally, t, left, waiting)
        left -= spent
        known = np.flatnonzero(archive.known & archive.live)
        age = (t - world.birth[known]) / DAY
        every = np.full(len(known), OLD_TIERS[-1][1] * HOUR)
        for max_days, hours in reversed(OLD_TIERS[:-1]):
            every = np.where(age <= max_days, hours * HOUR, every)
        due = known[(t - archive.last_check[known]) >= every][:max(left, 0)]
        if len(due):
            archive.check(due, t, tally)
            left -= len(due)
        if (t % DAY) >= OLD_DEEP_AT > ((t - grid) % DAY) and left > 0:
            everything = np.flatnonzero(archive.known)[:left]  # id order, from the lowest, every night
            archive.check(everything, t, tally)
            left -= len(everything)
        t += grid
    return tally.report(world, portal.days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=Portal.articles, help="articles archived at the start")
    parser.add_argument("--days", type=float, default=Portal.days, help="simulated days")
    parser.add_argument("--budgets", default="10000,50000,200000", help="requests per day, comma-separated")
    parser.add_argument("--policies", default="adaptive,uniform,tiers,oracle")
    parser.add_argument("--grid-minutes", type=float, default=5.0, help="how often the frequent job runs")
    parser.add_argument("--floor-days", type=float, default=30.0, help="every article seen at least this often")
    parser.add_argument("--publish-per-week", type=float, default=Portal.publish_per_week)
    parser.add_argument("--edited-share", type=float, default=Portal.edited_share)
    parser.add_argument("--edits-mean", type=float, default=Portal.edits_mean)
    parser.add_argument("--early-median-hours", type=float, default=Portal.early_median_hours)
    parser.add_argument("--late-share", type=float, default=Portal.late_share)
    parser.add_argument("--takedown-share", type=float, default=Portal.takedown_share)
    parser.add_argument("--busy", action="store_true", help="a busier portal (more edits, more of them late)")
    parser.add_argument("--seed", type=int, default=Portal.seed)
    parser.add_argument("-o", "--output", help="write the results as JSON here")
    args = parser.parse_args(argv)
    fields = dict(articles=args.articles, days=args.days, publish_per_week=args.publish_per_week,
                  early_median_hours=args.early_median_hours, takedown_share=args.takedown_share,
                  seed=args.seed)
    if args.busy:
        portal = Portal.busy(**fields)
    else:
        portal = Portal(edited_share=args.edited_share, edits_mean=args.edits_mean, late_share=args.late_share,
                        **fields)
    world = build_world(portal)
    print(f"portal: {portal.articles} archived + {len(world.birth) - world.n_initial} new articles, "
          f"{len(world.times)} versions in {portal.days:g} days "
          f"({int((world.kinds == EDITED).sum())} edits)", file=sys.stderr)
    results = []
    for per_day in (float(b) for b in args.budgets.split(",")):
        for policy in args.policies.split(","):
            started = time.perf_counter()
            row = simulate(world, portal, policy, per_day, args.grid_minutes * 60, args.floor_days * DAY)
            row = {"policy": policy, "budget_per_day": int(per_day), **row,
                   "seconds": round(time.perf_counter() - started, 1)}
            results.append(row)
            print(_line(row), file=sys.stderr)
    out = {"portal": asdict(portal), "grid_minutes": args.grid_minutes, "floor_days": args.floor_days,
           "results": results}
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(out, fh, indent=1)
    print(table(results))
    return 0


def _line(row: dict) -> str:
    return (f"{row['budget_per_day']:>7}/day {row['policy']:>8}: versions {row['version_recall']:.3f}, "
            f"edits {row['edit_recall']:.3f}, new {row['new_recall']:.3f}, "
            f"stale {row['staleness_mean_hours']:.2f} h (p90 {row['staleness_p90_hours']:.2f}), "
            f"{row['requests_per_day']:.0f} req/day, {row['seconds']} s")


def table(results: list[dict]) -> str:
    head = ("| requests/day | policy | version recall | edit recall | new recall | staleness mean h | "
            "staleness p90 h | takedown delay mean h | requests/day spent |")
    lines = [head, "|" + " ---: |" * 2 + " ---: |" * 7]
    lines[1] = "| ---: | --- |" + " ---: |" * 7
    for r in results:
        delay = r["takedown_delay_mean_hours"]
        lines.append(f"| {r['budget_per_day']:,} | {r['policy']} | {r['version_recall']:.3f} | "
                     f"{r['edit_recall']:.3f} | {r['new_recall']:.3f} | {r['staleness_mean_hours']:.2f} | "
                     f"{r['staleness_p90_hours']:.2f} | {'-' if delay is None else f'{delay:.1f}'} | "
                     f"{r['requests_per_day']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
