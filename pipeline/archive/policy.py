"""The revisit policy's core: which known articles are worth a request now.

Pure: no database, no Scrapy, no clock. Times are seconds (any epoch) passed
in by the caller; the archive keeps the state (pipeline/revisit.py reads it),
the simulation in bench/freshness.py drives the very same functions.

What an archive of versions is worth is the share of versions it captured,
and a version overwritten before anyone looked is lost for good. So every
request should go where the chance that the article changed since we last
looked is highest. We never see edits, only "it changed since the last look"
or "it did not": interval-censored observations of a point process
(Cho & Garcia-Molina, "Estimating frequency of change", 2003). The model:

- An article's edits arrive at rate theta_i * h_s(age), where age is the
  time since its publication and h_s the hazard profile of its stream (its
  channel). h_s is piecewise constant on a grid of doubling age bins and is
  learned by EM from the archive's own checks (Turnbull-style: a detected
  change is "at least one event somewhere in the interval"), shrunk toward
  the profile of all channels, which is shrunk toward a scale-free profile
  h(age) = c / age whose c is learned too. Nothing says "edits come within
  two days": the profile is whatever the observations show, so the same code
  serves a portal that edits within minutes and one that edits within weeks.
- theta_i (mean 1) is the article's own propensity: Gamma(kappa, kappa)
  a priori, kappa fitted to the population (a negative-binomial likelihood
  of each article's detected changes against its exposure). Its posterior
  after n_i detected changes over baseline exposure H_i is
  Gamma(kappa + n_i, kappa + H_i). Because an article's checks tile its
  observed life, H_i = C(age at last check) - C(age when first seen), where
  C is the cumulative hazard: the archive needs no per-check arithmetic to
  know it.
- The value of checking now is the probability that the article changed at
  least once since its last check, under that posterior:
  1 - ((b) / (b + dH))^a with a = kappa + n_i, b = kappa + H_i and dH the
  baseline hazard accumulated since the last check. A request captures at
  most one new version, so this is the expected number of new versions per
  request, and the budget goes to the highest values.
- The floor: an article not seen for `floor` seconds is checked before any
  other revisit, so a takedown is noticed within a bounded time however
  quiet the article is, and taken-down articles are looked at that often
  for a return.

The age grid below is a resolution, not a tuning: it spans a minute to
decades at a factor of two, finer than any edit process we know of.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bin edges of the age grid (seconds since publication): 0, one minute, then doubling up to
# about 32 years; ages beyond the last edge keep the last bin's rate.
AGE_EDGES = np.array([0.0] + [60.0 * 2.0**k for k in range(25)])
# Bin b spans [_LO[b], _HI[b]); the last one is open-ended.
_LO, _HI = AGE_EDGES, np.append(AGE_EDGES[1:], np.inf)
# A representative age of each bin, for the scale-free prior: the geometric middle (the first
# bin, which starts at 0, its arithmetic middle; the open-ended last one, as if it doubled).
_MID = np.concatenate([[AGE_EDGES[1] / 2], np.sqrt(AGE_EDGES[1:-1] * AGE_EDGES[2:]),
                       [AGE_EDGES[-1] * np.sqrt(2.0)]])
BINS = len(_MID)
_WIDTHS = np.diff(AGE_EDGES)

# Pseudo-events with which a profile is shrunk toward the one above it (a channel toward all
# channels, all channels toward the scale-free profile): a handful, so that a bin's own
# observations win as soon as it has a few changes in it. A count, not a time.
SHRINK_EVENTS = 2.0
# With no observations at all, the scale-free profile's c: a change per ~14 doublings of age,
# ln 2 * c per doubling. Only the order of the first checks depends on it; the first changes
# observed replace it.
PRIOR_C = 0.05
EM_ITERATIONS = 30
# Dispersion of the articles' own propensities: kappa searched on this grid (log-spaced).
KAPPA_GRID = np.logspace(-3, 3, 61)
# Observations used for one fit at most (the most recent ones): bounds the fit's cost.
MAX_FIT_INTERVALS = 200_000


@dataclass(frozen=True)
class Intervals:
    """Observed check intervals: the article's stream, its age at the previous and at this
    check (seconds), and whether the content had changed in between."""

    stream: np.ndarray  # int, index into the streams
    start: np.ndarray  # float seconds
    end: np.ndarray  # float seconds
    changed: np.ndarray  # bool

    @classmethod
    def of(cls, stream, start, end, changed) -> "Intervals":
        start = np.maximum(np.asarray(start, dtype=float), 0.0)
        end = np.maximum(np.asarray(end, dtype=float), start)
        return cls(np.asarray(stream, dtype=np.int64), start, end, np.asarray(changed, dtype=bool))

    def __len__(self) -> int:
        return len(self.stream)

    def take(self, rows) -> "Intervals":
        return Intervals(self.stream[rows], self.start[rows], self.end[rows], self.changed[rows])


def _overlaps(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Seconds of each interval that fall in each age bin (intervals x BINS)."""
    return np.clip(np.minimum(end[:, None], _HI[None, :]) - np.maximum(start[:, None], _LO[None, :]), 0.0, None)


@dataclass(frozen=True)
class Evidence:
    """What the checks so far say, in the form the fit needs: the seconds of observation in each
    age bin of each stream (every interval, changed or not: a sum, so it can grow one check at a
    time and be kept in one row), and the intervals that saw a change (the only ones the EM must
    revisit on every iteration)."""

    exposure: np.ndarray  # streams x BINS, seconds
    changed: Intervals
    intervals: int = 0

    @classmethod
    def empty(cls, streams: int) -> "Evidence":
        return cls(np.zeros((max(1, streams), BINS)), Intervals.of([], [], [], []), 0)

    def add(self, new: Intervals, keep_changed: int | None = None) -> "Evidence":
        """This evidence and the new intervals'; the changed ones beyond `keep_changed` (the oldest)
        are dropped from the list, their exposure stays."""
        exposure = self.exposure.copy()
        if len(new):
            overlap = _overlaps(new.start, new.end)
            np.add.at(exposure, np.clip(new.stream, 0, len(exposure) - 1), overlap)
        fresh = new.take(new.changed)
        changed = Intervals(*(np.concatenate([getattr(self.changed, f), getattr(fresh, f)])
                              for f in ("stream", "start", "end", "changed")))
        if keep_changed is not None and len(changed) > keep_changed:
            changed = changed.take(slice(len(changed) - keep_changed, None))
        return Evidence(exposure, changed, self.intervals + len(new))


@dataclass(frozen=True)
class Model:
    """A fitted population: a hazard profile per stream (events per second in each age bin),
    the dispersion kappa of the articles' own propensities, and what it was fitted on."""

    hazard: np.ndarray  # streams x BINS
    kappa: float = 1.0
    observations: int = 0
    changes: int = 0
    scale: float = PRIOR_C  # the scale-free profile's c
    streams: tuple = ()  # names of the streams, for the reader

    def cumulative(self, stream: np.ndarray, age: np.ndarray) -> np.ndarray:
        """C_s(age): expected events (at theta = 1) from publication to `age`, vectorized."""
        age = np.maximum(np.asarray(age, dtype=float), 0.0)
        stream = np.clip(np.asarray(stream, dtype=np.int64), 0, len(self.hazard) - 1)
        at = np.searchsorted(AGE_EDGES, age, side="right") - 1  # the bin each age falls in
        flat = stream * BINS + at
        return self.knots.ravel()[flat] + self.hazard.ravel()[flat] * (age - AGE_EDGES[at])

    @property
    def knots(self) -> np.ndarray:
        """C_s at each bin's start (streams x BINS)."""
        return np.concatenate([np.zeros((len(self.hazard), 1)),
                               np.cumsum(self.hazard[:, :-1] * _WIDTHS, axis=1)], axis=1)

    def with_kappa(self, kappa: float) -> "Model":
        return Model(self.hazard, kappa, self.observations, self.changes, self.scale, self.streams)

    def to_dict(self) -> dict:
        return {"hazard": self.hazard.tolist(), "kappa": self.kappa, "observations": self.observations,
                "changes": self.changes, "scale": self.scale, "streams": list(self.streams)}

    @classmethod
    def from_dict(cls, data: dict) -> "Model":
        return cls(np.asarray(data["hazard"], dtype=float), data["kappa"], data["observations"],
                   data["changes"], data["scale"], tuple(data["streams"]))


def prior_model(streams: tuple | list = ("",)) -> Model:
    """What the policy believes before it has seen a single check: the scale-free profile."""
    hazard = np.tile(PRIOR_C / _MID, (max(1, len(streams)), 1))
    return Model(hazard, kappa=1.0, streams=tuple(streams))


def fit_profile(evidence: Evidence, streams: tuple | list = ("",)) -> Model:
    """The hazard profiles that best explain the observed intervals (EM, interval-censored).

    E-step: an interval that saw a change holds H / (1 - e^-H) events in expectation (at least
    one), spread over its bins in proportion to hazard x time; an unchanged one holds none.
    M-step: each bin's rate is its events over its exposure, with SHRINK_EVENTS pseudo-events at
    the rate of the profile above it (a channel's toward all channels', theirs toward the
    scale-free profile c / age, whose c is fitted too).
    """
    n_streams = max(1, len(streams), len(evidence.exposure))
    exposure = np.zeros((n_streams, BINS))
    exposure[:len(evidence.exposure)] = evidence.exposure
    exposure_all = exposure.sum(axis=0)
    changed = evidence.changed
    stream = np.clip(changed.stream, 0, n_streams - 1)
    overlap = _overlaps(changed.start, changed.end)
    hazard = np.tile(PRIOR_C / _MID, (n_streams, 1))
    scale = PRIOR_C
    for _ in range(EM_ITERATIONS if len(changed) else 1):
        weighted = overlap * hazard[stream]
        total = weighted.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            # H / (1 - e^-H) events, shared out by each bin's part of H: written as ratios, so that
            # an interval of a hair's breadth (H near 0, one event) stays finite.
            expected = np.where(total > 0, total / -np.expm1(-total), 0.0)
            share = np.where(total[:, None] > 0, weighted / total[:, None], 0.0)
        events = np.zeros((n_streams, BINS))
        np.add.at(events, stream, share * expected[:, None])
        events_all = events.sum(axis=0)
        scale = (events_all.sum() + SHRINK_EVENTS) / ((exposure_all / _MID).sum() + SHRINK_EVENTS / PRIOR_C)
        overall = (events_all + SHRINK_EVENTS) / (exposure_all + SHRINK_EVENTS * _MID / scale)
        hazard = (events + SHRINK_EVENTS) / (exposure + SHRINK_EVENTS / overall[None, :])
    return Model(hazard, kappa=1.0, observations=evidence.intervals, changes=len(changed),
                 scale=float(scale), streams=tuple(streams))


def fit_kappa(changes: np.ndarray, exposure: np.ndarray) -> float:
    """The dispersion of the articles' propensities: the kappa of KAPPA_GRID under which the
    articles' detected changes against their baseline exposure are likeliest (negative binomial)."""
    n = np.asarray(changes, dtype=float)
    h = np.asarray(exposure, dtype=float)
    keep = h > 0
    n, h = n[keep], h[keep]
    if len(n) == 0 or n.sum() == 0:
        return 1.0
    best, best_ll = 1.0, -np.inf
    top = int(n.max())
    for kappa in KAPPA_GRID:
        ll = kappa * np.log(kappa / (kappa + h)) + n * np.log(h / (kappa + h))
        for j in range(top):  # log Gamma(n + kappa) - log Gamma(kappa), n an integer
            ll = ll + np.where(n > j, np.log(kappa + j), 0.0)
        total = ll.sum()
        if total > best_ll:
            best, best_ll = float(kappa), total
    return best


def fit(evidence: Evidence, articles: "Articles", streams: tuple | list = ("",)) -> Model:
    """The profile from the evidence, then kappa from the live articles' histories under it."""
    model = fit_profile(evidence, streams)
    live = articles.live
    return model.with_kappa(fit_kappa(articles.changes[live], exposure(model, articles)[live]))


@dataclass(frozen=True)
class Articles:
    """The articles a plan chooses from, as arrays (one element per article), times in seconds."""

    stream: np.ndarray  # int
    birth: np.ndarray  # publication time
    first_seen: np.ndarray  # the first check: where the article's observed life starts
    last_check: np.ndarray  # the last successful check
    changes: np.ndarray  # changes its checks have detected (versions after the first)
    live: np.ndarray  # bool: False for a taken-down article

    @classmethod
    def of(cls, stream, birth, first_seen, last_check, changes, live=None) -> "Articles":
        f = lambda v: np.asarray(v, dtype=float)  # noqa: E731
        n = len(np.asarray(stream))
        live = np.ones(n, dtype=bool) if live is None else np.asarray(live, dtype=bool)
        return cls(np.asarray(stream, dtype=np.int64), f(birth), f(first_seen), f(last_check),
                   f(changes), live)

    def __len__(self) -> int:
        return len(self.stream)


def exposure(model: Model, articles: Articles) -> np.ndarray:
    """Each article's baseline exposure so far: C(age at its last check) - C(age when first seen),
    the sum over its check intervals, which tile its observed life."""
    seen = model.cumulative(articles.stream, articles.first_seen - articles.birth)
    last = model.cumulative(articles.stream, articles.last_check - articles.birth)
    return np.maximum(last - seen, 0.0)


def value(kappa: float, changes: np.ndarray, exposure: np.ndarray, since: np.ndarray) -> np.ndarray:
    """P(at least one change since the last check) under the article's Gamma posterior of its
    propensity: 1 - (b / (b + since))^a, a = kappa + changes, b = kappa + exposure, where `since`
    is the baseline hazard accumulated since its last check."""
    return -np.expm1(-(kappa + changes) * np.log1p(np.maximum(since, 0.0) / (kappa + exposure)))


def change_probability(model: Model, articles: Articles, now: float) -> np.ndarray:
    """For each article, the probability that it changed since its last check: the expected new
    versions a request for it captures now (0 for taken-down articles: the floor covers them)."""
    since = (model.cumulative(articles.stream, now - articles.birth)
             - model.cumulative(articles.stream, articles.last_check - articles.birth))
    return np.where(articles.live, value(model.kappa, articles.changes, exposure(model, articles), since), 0.0)


@dataclass(frozen=True)
class Plan:
    """Which articles to check, best first, and what had to be left for lack of budget."""

    order: np.ndarray  # indices of the chosen articles, in the order to request them
    value: np.ndarray  # the expected new versions of each chosen request (1 past the floor)
    overdue: int  # articles past the floor, all of them (chosen or not)
    overdue_left: int  # of those, not chosen: the floor is not being met
    left_value: float  # expected new versions of as many more requests, the best not chosen
    left_over: int  # articles with any value left unchosen


def choose(value: np.ndarray, unseen: np.ndarray, budget: int, floor: float | None = None) -> Plan:
    """The `budget` most valuable checks: articles unseen for `floor` seconds or more first
    (longest unseen first; taken-down ones included), then the rest by value, highest first."""
    n = len(value)
    overdue = (unseen >= floor) if floor else np.zeros(n, dtype=bool)
    key = np.where(overdue, np.inf, value)
    candidates = np.flatnonzero(overdue | (value > 0))
    budget = max(0, int(budget))
    if len(candidates) > budget:
        top = candidates[np.argpartition(-key[candidates], budget - 1)[:budget]] if budget else candidates[:0]
    else:
        top = candidates
    order = top[np.lexsort((-unseen[top], -key[top]))]
    chosen = np.zeros(n, dtype=bool)
    chosen[order] = True
    rest = ~chosen & (value > 0) & ~overdue
    left = value[rest]
    best_left = np.partition(left, len(left) - budget)[len(left) - budget:] if 0 < budget < len(left) else left
    return Plan(order, np.where(overdue[order], 1.0, value[order]), int(overdue.sum()),
                int((overdue & ~chosen).sum()), float(best_left.sum()), int(rest.sum() + (overdue & ~chosen).sum()))


def revisit_values(model: Model, articles: Articles, now: float, strategy: str = "adaptive") -> np.ndarray:
    """What `choose` ranks by: the change probability ("adaptive"), or the time since the last
    check ("uniform": round-robin over live articles, the baseline)."""
    if strategy == "adaptive":
        return change_probability(model, articles, now)
    if strategy == "uniform":
        return np.where(articles.live, now - articles.last_check, 0.0)
    raise ValueError(f"unknown revisit strategy {strategy!r}")


def probe_value(found: int, missing: int) -> float:
    """The chance that probing an aid missing between archived ones finds an article: the
    share of earlier probes that did (a uniform prior: one of each)."""
    return (found + 1) / (found + missing + 2)


def describe(model: Model) -> dict:
    """The learned profile in words a reader can check: for each stream, the expected changes
    of an average article (theta = 1) within an hour, a day, a week, a month, a year of publication."""
    marks = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0, "month": 30 * 86400.0,
             "year": 365 * 86400.0}
    ages = np.array(list(marks.values()))
    per_stream = [model.cumulative(np.full(len(ages), s), ages) for s in range(len(model.hazard))]
    out = {"all": {k: round(float(v), 4) for k, v in zip(marks, np.mean(per_stream, axis=0))}}
    for name, values in zip(model.streams, per_stream):
        out[name or "(none)"] = {k: round(float(v), 4) for k, v in zip(marks, values)}
    return {"kappa": model.kappa, "observations": model.observations, "changes": model.changes,
            "expected_changes_within": out}
