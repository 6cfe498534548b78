"""Lists that shift under a crawler's feet: one round, fired by list traffic."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_replica import fetch, parse

from replica import CHANNELS, ReplicaServer, ShiftPlan, expected_articles, generate, load_state, save_state
from replica.render import render_list

PLAN = ShiftPlan(after_list_requests=3, new=25, takedowns=10, seed=4)


def items(body: bytes) -> list[str]:
    return [a.get("href") for a in parse(body).cssselect(".listbox a.title")]


def titles_on(url: str, target: str) -> list[str]:
    status, _, body = fetch(url, target)
    assert status == 200
    return items(body)


def test_the_round_fires_once_after_n_list_answers(tmp_path):
    save_state(generate(600, 6), tmp_path)
    with ReplicaServer(tmp_path, shift=PLAN) as server:
        before = load_state(tmp_path)
        channel = CHANNELS[0]
        pages = [channel.root] + [f"{channel.root}list_{channel.typeid}_{n}.html" for n in (2, 3, 4)]
        walked = [titles_on(server.url, page) for page in pages[:2]]
        fetch(server.url, before.articles[10001].path)  # articles do not count
        assert server.shift_report is None and load_state(tmp_path).generation == before.generation
        walked.append(titles_on(server.url, pages[2]))  # the third list answer fires the round
        report = server.shift_report
        assert report is not None and len(report["new"]) == 25 and len(report["taken_down"]) == 10
        assert not report["edited"] and not report["republished"]

        after = load_state(tmp_path)
        assert after.generation == before.generation + 1 and after.round == 1
        assert json.loads((tmp_path / "mutations.json").read_text("utf-8")) == [report]
        truth = expected_articles(after, server.url)
        assert set(report["new"]) <= set(truth)
        assert all(truth[int(aid)]["status"] == "taken_down" for aid in report["taken_down"])

        # The crawler's next page is already the shifted list, so its walk
        # matches neither the site before the round nor the site after it.
        walked.append(titles_on(server.url, pages[3]))
        for n, page in enumerate(pages, 1):
            assert titles_on(server.url, page) == items(render_list(after, channel, n))
        assert walked == [items(render_list(before, channel, n)) for n in (1, 2, 3)] + \
                         [items(render_list(after, channel, 4))]
        assert walked != [items(render_list(before, channel, n)) for n in (1, 2, 3, 4)]
        assert walked != [items(render_list(after, channel, n)) for n in (1, 2, 3, 4)]

        for page in pages * 3:
            fetch(server.url, page)
        assert load_state(tmp_path).generation == after.generation  # never a second round


def test_concurrent_list_traffic_fires_exactly_one_round(tmp_path):
    save_state(generate(300, 6), tmp_path)
    with ReplicaServer(tmp_path, shift=ShiftPlan(5, new=5, takedowns=5, seed=1)) as server:
        targets = [c.root for c in CHANNELS] * 8
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda t: fetch(server.url, t)[0], targets))
        assert set(statuses) == {200}
        state = load_state(tmp_path)
        assert state.round == 1 and server.shift_report["round"] == 1


def test_an_impossible_shift_fails_at_start(tmp_path):
    save_state(generate(20, 6), tmp_path)
    with pytest.raises(ValueError, match="cannot pick"):
        ReplicaServer(tmp_path, shift=ShiftPlan(1, takedowns=50))
    with pytest.raises(ValueError):
        ShiftPlan(0)
