"""The revisit policy's pure core (pipeline/policy.py): it learns edit processes at any time
scale from interval-censored looks, and spends a budget where a change is likeliest."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.archive import policy as core

MINUTE, DAY = 60.0, 86400.0


def simulate_looks(cumulative, n_articles: int, first_look: float, horizon: float, seed: int):
    """Looks at articles whose edits follow `cumulative` (expected edits by age), at ages that grow
    geometrically from `first_look`: the intervals and whether each saw a change."""
    rng = np.random.default_rng(seed)
    start, end, changed = [], [], []
    for _ in range(n_articles):
        age = rng.uniform(0, first_look)
        while age < horizon:
            nxt = age * rng.uniform(1.5, 3.0) + first_look
            hazard = cumulative(nxt) - cumulative(age)
            start.append(age)
            end.append(nxt)
            changed.append(rng.random() < -np.expm1(-hazard))
            age = nxt
    return core.Intervals.of(np.zeros(len(start), dtype=int), start, end, changed)


def two_regimes(scale: float):
    """0.6 expected edits within the first `scale` seconds, then a slow trickle."""
    return lambda age: 0.6 * min(age, scale) / scale + 1e-3 * max(age - scale, 0) / scale


@pytest.mark.parametrize("scale", [10 * MINUTE, 14 * DAY], ids=["edits within minutes", "edits within weeks"])
def test_the_age_profile_is_learned_at_any_time_scale(scale):
    truth = two_regimes(scale)
    first = scale / 10
    looks = simulate_looks(truth, 4000, first, scale * 200, seed=1)
    model = core.fit_profile(core.Evidence.empty(1).add(looks))
    # Ages before an article's first look are never observed: what is learned is the growth of the
    # cumulative hazard over the ages that are.
    fitted = lambda age: float(model.cumulative(np.array([0]), np.array([age]))[0])  # noqa: E731
    for age in (scale / 4, scale, 4 * scale, 50 * scale):
        assert fitted(age) - fitted(first) == pytest.approx(truth(age) - truth(first), rel=0.15, abs=0.02), age


def test_evidence_sums_every_second_of_every_interval_into_the_age_bins():
    looks = core.Intervals.of([0, 1, 1], [0.0, 30.0, 1e6], [100.0, 7200.0, 1e10], [False, True, False])
    evidence = core.Evidence.empty(2).add(looks)
    assert evidence.exposure.sum() == pytest.approx(100 + 7170 + (1e10 - 1e6))
    assert evidence.intervals == 3 and len(evidence.changed) == 1
    assert evidence.add(looks, keep_changed=1).changed.start.tolist() == [30.0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e9), st.floats(0, 1e8), st.booleans(), st.integers(0, 2)),
                min_size=1, max_size=60))
def test_any_evidence_fits_a_finite_profile_whose_cumulative_hazard_only_grows(rows):
    starts = [r[0] for r in rows]
    looks = core.Intervals.of([r[3] for r in rows], starts, [s + r[1] for s, r in zip(starts, rows)],
                              [r[2] for r in rows])
    model = core.fit_profile(core.Evidence.empty(3).add(looks), ("a", "b", "c"))
    assert np.isfinite(model.hazard).all() and (model.hazard > 0).all()
    ages = np.sort(np.random.default_rng(0).uniform(0, 2e9, 200))
    for stream in range(3):
        values = model.cumulative(np.full(len(ages), stream), ages)
        assert (np.diff(values) >= -1e-9).all()


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 20), st.floats(0, 50), st.floats(0, 10), st.floats(0, 10), st.floats(0.001, 100))
def test_the_value_of_a_look_is_a_probability_that_grows_with_time_and_with_past_changes(
        changes, exposure, since, more, kappa):
    value = lambda c, e, s: float(core.value(kappa, np.array([c]), np.array([e]), np.array([s]))[0])  # noqa: E731
    v = value(changes, exposure, since)
    assert 0.0 <= v <= 1.0
    assert value(changes, exposure, since + more) >= v - 1e-12
    assert value(changes + 1, exposure, since) >= v - 1e-12
    assert value(changes, exposure + more, since) <= v + 1e-12
    assert value(changes, exposure, 0.0) == 0.0


def test_a_look_at_a_frequently_edited_or_a_young_article_is_worth_more():
    model = core.fit_profile(core.Evidence.empty(1).add(simulate_looks(two_regimes(DAY), 2000, DAY / 10,
                                                                       200 * DAY, seed=2)))
    now = 400 * DAY
    articles = core.Articles.of(
        stream=[0, 0, 0],
        birth=[now - 300 * DAY, now - 300 * DAY, now - DAY / 2],
        first_seen=[now - 300 * DAY, now - 300 * DAY, now - DAY / 2],
        last_check=[now - DAY, now - DAY, now - DAY / 4],
        changes=[0, 5, 0])
    quiet, edited, young = core.change_probability(model.with_kappa(0.5), articles, now)
    assert edited > quiet and young > quiet


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 100)), max_size=50), st.integers(0, 60),
       st.one_of(st.none(), st.floats(1, 100)))
def test_a_plan_never_exceeds_its_budget_and_puts_the_floor_first(rows, budget, floor):
    value = np.array([r[0] for r in rows], dtype=float)
    unseen = np.array([r[1] for r in rows], dtype=float)
    plan = core.choose(value, unseen, budget, floor)
    assert len(plan.order) <= budget and len(set(plan.order.tolist())) == len(plan.order)
    overdue = unseen >= floor if floor else np.zeros(len(rows), dtype=bool)
    chosen_overdue = overdue[plan.order]
    # Overdue ones first; among the rest, by value, highest first.
    assert not (np.diff(chosen_overdue.astype(int)) > 0).any()
    rest = value[plan.order][~chosen_overdue]
    assert (np.diff(rest) <= 1e-12).all()
    if len(plan.order) < budget:  # room left: everything worth anything was taken
        assert set(np.flatnonzero(overdue | (value > 0))) <= set(plan.order.tolist())
    else:
        untaken = np.setdiff1d(np.flatnonzero(~overdue), plan.order)
        assert plan.overdue_left or not len(rest) or (value[untaken] <= rest.min() + 1e-12).all()
    assert plan.overdue == int(overdue.sum())
    assert plan.overdue_left == int(overdue.sum() - chosen_overdue.sum())


def test_kappa_tells_a_population_of_a_few_busy_articles_from_one_of_alike_ones():
    rng = np.random.default_rng(3)
    exposure = np.full(5000, 2.0)
    alike = rng.poisson(exposure * rng.gamma(50.0, 1 / 50.0, 5000))
    lumpy = rng.poisson(exposure * rng.gamma(0.2, 1 / 0.2, 5000))
    assert core.fit_kappa(alike, exposure) > 10
    assert core.fit_kappa(lumpy, exposure) < 0.5


def test_the_freshness_simulation_captures_more_with_the_policy_than_round_robin():
    from bench import freshness

    portal = freshness.Portal(articles=3000, days=6, publish_per_week=300, seed=5)
    world = freshness.build_world(portal)
    run = lambda name: freshness.simulate(world, portal, name, 3000, 600, 30 * DAY)  # noqa: E731
    adaptive, uniform = run("adaptive"), run("uniform")
    assert adaptive["requests"] <= 3000 * portal.days and uniform["requests"] <= 3000 * portal.days
    assert adaptive["version_recall"] > uniform["version_recall"]
    assert adaptive["edit_recall"] > uniform["edit_recall"]
    assert run("oracle")["version_recall"] == 1.0
