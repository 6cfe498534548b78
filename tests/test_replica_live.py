"""The replica's live mode: a seeded schedule applied over real seconds, its
history of every version, and version_recall (replica/live.py, history.py,
recall.py).

Plans here last about two seconds; the schedule and history checks run on a
simulated clock, and one test runs the portal for real behind a server.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import lxml.html
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from replica import (
    LivePlan,
    LivePortal,
    ReplicaServer,
    generate,
    load_history,
    load_state,
    mutate,
    save_state,
    version_recall,
)
from replica.cli import cli
from replica.history import transition
from replica.live import plan_events
from replica.manifest import expected_article
from replica.mutate import EDIT_KINDS
from replica.site import PORTAL_TZ, display_date

PROJECT = Path(__file__).resolve().parents[1]
FAST = LivePlan(seed=3, publish_every=0.05, edited_share=0.6, edits_mean=2.0, early_edit_seconds=0.2,
                late_share=0.2, late_edit_seconds=1.5, old_edit_share=0.2, takedown_share=0.2,
                restore_share=0.5, duration=2.0)
ARTICLES = 40
DEFECTS = {"no_body": 1, "bad_bytes": 1}
SPECIALS = {"hostile": 1}
CONTENT = ("title", "lede", "body", "published_at", "editor", "source", "origin_source", "tags", "channel")


# --- helpers ---------------------------------------------------------------------

class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_790_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_site(directory: Path, seed: int = 5) -> Path:
    save_state(generate(ARTICLES, seed, DEFECTS, SPECIALS), directory)
    return directory


def drive(directory: Path, plan: LivePlan = FAST, check=None, start: float = 1_790_000_000.0,
          tick: float = 0.1) -> LivePortal:
    """Run the whole plan on a simulated clock that moves by `tick`, stepping
    after each move; `check(portal, new_lines)` after each save."""
    clock = FakeClock(start)
    portal = LivePortal(directory, plan, clock=clock)
    portal.begin()
    seen = len(load_history(directory))
    for n in range(1, int(plan.duration / tick) + 2):
        clock.now = start + n * tick
        while portal.step():
            history = load_history(directory)
            if check is not None:
                check(portal, history[seen:])
            seen = len(history)
    assert portal.applied == len(portal.events)
    return portal


def by_aid(history: list[dict]) -> dict[int, list[dict]]:
    grouped = defaultdict(list)
    for line in history:
        grouped[line["aid"]].append(line)
    return grouped


def at(line: dict) -> datetime:
    return datetime.fromisoformat(line["at"])


def export_rows(history: list[dict], delay: float = 0.1) -> list[dict]:
    """The rows of an archive that saw every version `delay` seconds after it
    appeared (sooner when the next version came sooner), as the export writes them."""
    rows = []
    for versions in by_aid(history).values():
        if versions[0]["expected"]["quarantined"]:
            continue
        for i, line in enumerate(versions):
            start = at(line)
            gap = (at(versions[i + 1]) - start).total_seconds() / 2 if i + 1 < len(versions) else delay
            expected = line["expected"]
            rows.append({
                "aid": line["aid"], "version": i + 1,
                "status": "taken_down" if line["kind"] == "taken_down" else "live", "change": line["kind"],
                "valid_from": (start + timedelta(seconds=min(delay, gap))).isoformat(), "valid_to": None,
                **{key: expected[key] for key in CONTENT}, "url": "http://h" + expected["url"],
                "duplicate_of": None,
            })
    return rows


def read_page(body: bytes) -> dict:
    doc = lxml.html.fromstring(body.decode("gb18030"))
    return {
        "time": doc.cssselect(".info .time")[0].text_content(),
        "title": doc.cssselect(".viewbox .title h2")[0].text_content(),
        "lede": doc.cssselect(".intro")[0].text_content().removeprefix("导语:"),
        "body": "\n".join(p.text_content().removeprefix("\u3000\u3000")
                          for p in doc.cssselect("#article-content p")),
    }


def shown(expected: dict, state) -> dict:
    """What read_page finds on the page of `expected`."""
    style = state.articles[expected["aid"]].date_style
    return {"time": display_date(expected["published_at"], style),
            **{k: expected[k] for k in ("title", "lede", "body")}}


def get(url: str):
    """(status, headers, body) of one GET, redirects not followed."""
    parts = url.split("/", 3)
    conn = http.client.HTTPConnection(parts[2], timeout=10)
    try:
        conn.request("GET", "/" + parts[3])
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A whole plan run on a simulated clock: (portal, history)."""
    directory = make_site(tmp_path_factory.mktemp("simulated"))
    portal = drive(directory)
    return portal, load_history(directory)


# --- the plan and its schedule ------------------------------------------------------

def test_plan_rejects_impossible_parameters():
    for bad in ({"publish_every": 0}, {"edits_mean": 0.5}, {"edited_share": 1.5}, {"restore_share": -0.1},
                {"early_edit_seconds": 0}, {"duration": -1}):
        with pytest.raises(ValueError):
            LivePlan(**bad)


def walk(state, events) -> None:
    """Replay the schedule on article statuses: every event must make sense when it lands."""
    status = {aid: a.status for aid, a in state.articles.items()}
    untouchable = {aid for aid, a in state.articles.items() if a.defect or a.special}
    old_edits = Counter()
    for event in events:
        assert event.aid not in untouchable
        if event.kind == "created":
            assert event.aid not in status
            status[event.aid] = "live"
        elif event.kind == "edited":
            assert status[event.aid] == "live" and event.detail in EDIT_KINDS
            if event.aid in state.articles:
                old_edits[event.aid] += 1
                assert state.articles[event.aid].duplicate_of is None
        elif event.kind == "taken_down":
            assert status[event.aid] == "live" and event.detail in ("404", "redirect")
            status[event.aid] = "taken_down"
        else:
            assert event.kind == "restored" and status[event.aid] == "taken_down"
            status[event.aid] = "live"
    assert all(n == 1 for n in old_edits.values()), "an old article gets one edit at most"


def test_schedule_is_deterministic_and_consistent(tmp_path):
    state = generate(ARTICLES, 5, DEFECTS, SPECIALS)
    events = plan_events(FAST, state)
    assert events == plan_events(FAST, generate(ARTICLES, 5, DEFECTS, SPECIALS))
    assert LivePortal(make_site(tmp_path), FAST).events == events
    assert events != plan_events(replace(FAST, seed=4), state)

    kinds = Counter(e.kind for e in events)
    assert set(kinds) == {"created", "edited", "taken_down", "restored"}, kinds
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(0 <= e.at < FAST.duration for e in events)
    created = [e.aid for e in events if e.kind == "created"]
    assert created == list(range(state.next_aid(), state.next_aid() + len(created)))
    assert FAST.duration / FAST.publish_every / 2 < len(created) < FAST.duration / FAST.publish_every * 2
    walk(state, events)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), shares=st.lists(st.floats(0, 1), min_size=5, max_size=5),
       edits_mean=st.floats(1, 4), duration=st.floats(0, 5))
def test_any_plan_gives_a_schedule_that_makes_sense(seed, shares, edits_mean, duration):
    plan = LivePlan(seed=seed, publish_every=0.1, edited_share=shares[0], edits_mean=edits_mean,
                    early_edit_seconds=0.3, late_share=shares[1], late_edit_seconds=2.0,
                    old_edit_share=shares[2], takedown_share=shares[3], restore_share=shares[4],
                    duration=duration)
    state = generate(30, seed % 7, DEFECTS, SPECIALS)
    events = plan_events(plan, state)
    assert all(0 <= e.at < duration for e in events)
    walk(state, events)


# --- the history -----------------------------------------------------------------

def test_history_holds_every_version_as_the_state_had_it(tmp_path):
    directory = make_site(tmp_path / "a")
    before = load_state(directory)
    saves = []

    def check(portal, lines):
        state = load_state(directory)
        assert lines, "a save that changes nothing writes nothing"
        assert len({line["aid"] for line in lines}) == len(lines), "one version per article per save"
        for line in lines:
            assert line["expected"] == expected_article(state, state.articles[line["aid"]], "")
            assert at(line) == datetime.fromisoformat(state.now)
        saves.append(len(lines))

    portal = drive(directory, check=check)
    history = load_history(directory)

    # The start: every article as it was, version 1, at the start time.
    first = history[:ARTICLES]
    assert [line["aid"] for line in first] == sorted(before.articles)
    assert {line["at"] for line in first} == {portal.started_at.isoformat()}
    assert all(line["version"] == 1 and line["kind"] == "created" for line in first)
    assert [line["expected"] for line in first] == [expected_article(before, a, "")
                                                    for a in before.articles.values()]

    # Then one line per event, in the schedule's order, several events to a save.
    later = history[ARTICLES:]
    assert [(line["aid"], line["kind"]) for line in later] == [(e.aid, e.kind) for e in portal.events]
    assert sum(saves) == len(portal.events) and len(saves) < len(portal.events)
    for versions in by_aid(history).values():
        assert [line["version"] for line in versions] == list(range(1, len(versions) + 1))
        assert [at(line) for line in versions] == sorted({at(line) for line in versions})
        for old, new in zip(versions, versions[1:]):
            assert old["expected"] != new["expected"]
            assert new["kind"] == transition(old["expected"], new["expected"])

    # New articles appear at the clock's moment; edits leave the path alone.
    final = load_state(directory)
    for line in later:
        first = by_aid(history)[line["aid"]][0]
        assert line["expected"]["url"] == first["expected"]["url"] == final.articles[line["aid"]].path
        if line["kind"] == "created":
            moment = at(line).astimezone(PORTAL_TZ)
            assert line["expected"]["published_at"][:10] == moment.date().isoformat()
            assert f"/{moment:%Y}/{moment:%m%d}/{line['aid']}.html" in line["expected"]["url"]
    untouched = {aid for aid, a in before.articles.items() if a.defect or a.special}
    assert all(len(by_aid(history)[aid]) == 1 for aid in untouched)


def test_the_same_plan_writes_the_same_history(tmp_path):
    first = drive(make_site(tmp_path / "a"))
    second = drive(make_site(tmp_path / "b"))
    assert first.events == second.events
    assert load_history(tmp_path / "a") == load_history(tmp_path / "b")
    states = [(tmp_path / run / "state.json").read_text("utf-8") for run in ("a", "b")]
    assert states[0] == states[1]


def test_a_second_run_continues_the_history(tmp_path):
    directory = make_site(tmp_path)
    drive(directory)
    state = load_state(directory)
    report = mutate(state, 1, edits=2, takedowns=1, republish=1, new=1)
    save_state(state, directory)
    count = len(load_history(directory))

    portal = drive(directory, replace(FAST, seed=9, duration=0.5), start=1_790_000_100.0)
    history = load_history(directory)
    changed = {int(aid) for aid in [*report["edited"], *report["taken_down"], *report["republished"]]}
    changed |= set(report["new"])
    resumed = history[count:count + len(changed)]
    assert {line["aid"] for line in resumed} == changed
    assert all(at(line) == portal.started_at for line in resumed)
    assert Counter(line["kind"] for line in resumed) == {"edited": 2, "taken_down": 1, "created": 2}
    for versions in by_aid(history).values():
        assert [line["version"] for line in versions] == list(range(1, len(versions) + 1))


# --- for real, behind a server -------------------------------------------------------

def quietest(events, kind: str):
    """The event of `kind` that the longest time passes after before its article changes again."""
    def quiet(event):
        later = [e.at for e in events if e.aid == event.aid and e.at > event.at]
        return min(later, default=FAST.duration + 10) - event.at
    return max((e for e in events if e.kind == kind), key=quiet)


def test_events_land_at_their_times_and_are_served(tmp_path):
    directory = make_site(tmp_path)
    with ReplicaServer(directory) as server, LivePortal(directory, FAST) as portal:
        events = portal.events
        watched = sorted((quietest(events, kind) for kind in ("created", "edited", "taken_down")),
                         key=lambda e: e.at)
        for event in watched:
            index = events.index(event)
            deadline = time.monotonic() + FAST.duration + 5
            while portal.applied <= index and time.monotonic() < deadline:
                time.sleep(0.005)
            line = load_history(directory)[ARTICLES + index]
            assert (line["aid"], line["kind"]) == (event.aid, event.kind)
            url = server.url + line["expected"]["url"]
            if event.kind == "taken_down":
                assert get(url)[0] == (302 if event.detail == "redirect" else 404)
                continue
            with urlopen(url, timeout=10) as response:  # the new article, or the edit, is served
                assert response.status == 200
                assert read_page(response.read()) == shown(line["expected"], load_state(directory))
                date = parsedate_to_datetime(response.headers["Date"])
                assert abs((date - datetime.now(timezone.utc)).total_seconds()) < 60, "the real clock"

        assert portal.wait(timeout=FAST.duration + 10)
        assert portal.applied == len(events)

    history = load_history(directory)
    later = history[ARTICLES:]
    assert [(x["aid"], x["kind"]) for x in later] == [(e.aid, e.kind) for e in events]
    lateness = [(at(x) - portal.started_at).total_seconds() - e.at for x, e in zip(later, events)]
    assert min(lateness) >= 0 and max(lateness) < 1.0, (min(lateness), max(lateness))

    # Afterwards every touched article is served as its last version.
    final = load_state(directory)
    with ReplicaServer(directory) as server:
        for aid in {e.aid for e in events}:
            last = by_aid(history)[aid][-1]["expected"]
            assert last == expected_article(final, final.articles[aid], "")
            status, _, body = get(server.url + last["url"])
            if last["status"] == "live":
                assert status == 200
                assert read_page(body) == shown(last, final)
            elif final.articles[aid].takedown == "redirect":
                assert status == 302
            else:
                assert status == 404
                with pytest.raises(HTTPError):
                    urlopen(server.url + last["url"], timeout=10)


def test_stop_is_immediate_and_nothing_happens_after_it(tmp_path):
    directory = make_site(tmp_path)
    plan = replace(FAST, duration=60.0)
    portal = LivePortal(directory, plan).start()
    time.sleep(0.3)
    began = time.monotonic()
    portal.stop()
    assert time.monotonic() - began < 0.5
    applied, lines = portal.applied, len(load_history(directory))
    assert 0 < applied < len(portal.events)
    time.sleep(0.2)
    assert len(load_history(directory)) == lines == ARTICLES + applied


# --- version_recall --------------------------------------------------------------

def test_recall_of_a_complete_archive_is_one(simulated):
    portal, history = simulated
    result = version_recall(history, export_rows(history))
    assert result["missed"] == []
    for key in ("version_recall", "edit_recall", "takedown_recall", "new_recall", "restore_recall"):
        assert result[key] == 1.0, key
    archivable = [x for x in history if not x["expected"]["quarantined"]]
    assert result["versions"] == result["captured"] == len(archivable)
    assert result["edits"] == sum(e.kind == "edited" for e in portal.events)
    assert result["takedowns"] == sum(e.kind == "taken_down" for e in portal.events)
    assert 0 < result["staleness_mean"] <= 0.1 + 1e-6 and result["staleness_p90"] <= 0.1 + 1e-6

    since = version_recall(history, export_rows(history), since=portal.started_at)
    assert since["versions"] == len(portal.events)
    assert since["new"] == sum(e.kind == "created" for e in portal.events)
    assert version_recall(history, export_rows(history), since=portal.started_at.isoformat()) == since


def test_recall_counts_what_was_dropped(simulated):
    portal, history = simulated
    rows = export_rows(history)
    # No slack: each synthetic row then captures its own version only.
    no_edits = version_recall(history, [r for r in rows if r["change"] != "edited"], slack=0)
    assert no_edits["edit_recall"] == 0 and no_edits["edits_captured"] == 0
    assert no_edits["captured"] == no_edits["versions"] - no_edits["edits"]
    assert no_edits["new_recall"] == no_edits["takedown_recall"] == 1.0
    half = [r for r in rows if r["change"] != "taken_down" or r["aid"] % 2]
    result = version_recall(history, half, slack=0)
    down = [r for r in rows if r["change"] == "taken_down"]
    assert result["takedowns_captured"] == sum(r["aid"] % 2 for r in down)
    assert result["takedown_recall"] == pytest.approx(result["takedowns_captured"] / len(down))
    assert version_recall(history, [])["captured"] == 0


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_dropping_k_versions_loses_exactly_k(simulated, data):
    _, history = simulated
    rows = export_rows(history)
    dropped = data.draw(st.sets(st.integers(0, len(rows) - 1), max_size=len(rows)))
    kept = [row for i, row in enumerate(rows) if i not in dropped]
    result = version_recall(history, kept, slack=0)
    assert result["captured"] == len(rows) - len(dropped)
    assert sorted(map(tuple, result["missed"])) == sorted((rows[i]["aid"], rows[i]["version"])
                                                          for i in dropped)
    lost = Counter(rows[i]["change"] for i in dropped)
    assert result["edits"] - result["edits_captured"] == lost["edited"]
    assert result["takedowns"] - result["takedowns_captured"] == lost["taken_down"]


def version(aid, number, kind, seconds, quarantined=False, **content):
    expected = {"aid": aid, "url": f"/news/hyzx/2026/1205/{aid}.html", "channel": "行业资讯",
                "status": "taken_down" if kind == "taken_down" else "live",
                "title": "标题", "published_at": "2026-12-05T00:00:00+08:00", "lede": "导语",
                "body": "正文", "editor": "中国电源产业网", "source": "新华社", "origin_source": None,
                "tags": [], "duplicate_of": None, "quarantined": quarantined, "defect": None,
                "special": None, **content}
    moment = datetime(2026, 12, 5, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    return {"aid": aid, "version": number, "kind": kind, "at": moment.isoformat(), "expected": expected}


def row(line, seconds, status=None, **content):
    moment = datetime(2026, 12, 5, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    fields = {k: line["expected"][k] for k in CONTENT}
    return {"aid": line["aid"], "status": status or line["expected"]["status"],
            "valid_from": moment.isoformat(), **fields, **content}


def test_recall_rules_for_takedowns_restores_and_late_fetches():
    v1 = version(1, 1, "created", 0)
    v2 = version(1, 2, "edited", 10, title="新标题")
    v3 = version(1, 3, "taken_down", 20, title="新标题")
    v4 = version(1, 4, "restored", 30, title="新标题")
    history = [v1, v2, v3, v4]
    recall = lambda rows, **kw: version_recall(history, rows, **kw)["missed"]  # noqa: E731

    assert recall([row(v1, 1), row(v2, 11), row(v3, 21), row(v4, 31)]) == []
    # An edit first seen after the next version appeared was not captured (beyond the slack).
    assert recall([row(v1, 1), row(v2, 20.5), row(v3, 21), row(v4, 31)]) == []
    assert recall([row(v1, 1), row(v2, 22), row(v3, 23), row(v4, 31)]) == [[1, 2]]
    assert recall([row(v1, 1), row(v2, 22), row(v3, 23), row(v4, 31)], slack=3) == []
    # A tombstone counts between its takedown and the restore, whatever content it kept.
    assert recall([row(v1, 1), row(v3, 25, title="标题"), row(v4, 31)]) == [[1, 2]]
    assert recall([row(v1, 1), row(v2, 11), row(v3, 35), row(v4, 36)]) == [[1, 3]]
    # A restore is not captured by the content seen before the takedown.
    assert recall([row(v1, 1), row(v2, 11), row(v3, 21)]) == [[1, 4]]
    # Content must match, publication times compared as instants.
    assert recall([row(v1, 1, published_at="2026-12-04T16:00:00+00:00"), row(v2, 11, body="别的"),
                   row(v3, 21), row(v4, 31)]) == [[1, 2]]

    quarantined = [version(2, 1, "created", 0, quarantined=True)]
    assert version_recall(quarantined, [])["versions"] == 0
    gone_before = [version(3, 1, "taken_down", 0)]
    assert version_recall(gone_before, [row(gone_before[0], -100)])["captured"] == 1

    result = version_recall(history, [row(v1, 0), row(v2, 12), row(v3, 24), row(v4, 38)])
    assert result["staleness_mean"] == pytest.approx((0 + 2 + 4 + 8) / 4)
    assert result["staleness_p90"] == pytest.approx(8)
    since = version_recall(history, [row(v2, 12)], since=v2["at"])
    assert since["versions"] == 2 and since["captured"] == 0 and since["restores"] == 1


# --- the command line ---------------------------------------------------------------

def test_cli_help_and_live_report(simulated, tmp_path):
    runner = CliRunner()
    serve = runner.invoke(cli, ["serve", "--help"])
    assert serve.exit_code == 0
    for option in ("--live", "--live-seed", "--publish-every", "--edited-share", "--edits-mean",
                   "--early-edit-seconds", "--late-share", "--late-edit-seconds", "--old-edit-share",
                   "--takedown-share", "--restore-share", "--live-duration"):
        assert option in serve.output, option
    assert runner.invoke(cli, ["live-report", "--help"]).exit_code == 0

    portal, history = simulated
    export = tmp_path / "export.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in export_rows(history)]
    export.write_text("".join(lines), "utf-8")
    result = runner.invoke(cli, ["live-report", "--dir", str(portal.state_dir), "--export", str(export)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["version_recall"] == 1.0 and report["missed"] == []
    result = runner.invoke(cli, ["live-report", "--dir", str(portal.state_dir), "--export", str(export),
                                 "--since", "start"])
    assert json.loads(result.output)["versions"] == len(portal.events)

    bad = runner.invoke(cli, ["live-report", "--dir", str(portal.state_dir), "--export", str(export),
                              "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
    missing = runner.invoke(cli, ["live-report", "--dir", str(tmp_path), "--export", str(export)])
    assert missing.exit_code == 1 and "no live-mode history" in missing.output


def test_serve_live_from_the_command_line(tmp_path):
    plan = LivePlan(seed=2, publish_every=0.1, duration=1.0)
    events = plan_events(plan, generate(30, 1))
    quiet = [e.aid for e in events if e.kind == "created"
             and [x.kind for x in events if x.aid == e.aid] == ["created"]]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "replica", "serve", "--dir", str(tmp_path), "--port", "0", "--articles", "30",
         "--live", "--live-seed", "2", "--publish-every", "0.1", "--live-duration", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=PROJECT)
    try:
        url = process.stdout.readline().strip().removeprefix("serving ")
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.poll() else url
        assert process.stdout.readline().startswith("live mode: ")
        deadline = time.monotonic() + 10
        while quiet[0] not in load_state(tmp_path).articles and time.monotonic() < deadline:
            time.sleep(0.05)
        article = load_state(tmp_path).articles[quiet[0]]
        with urlopen(url + article.path, timeout=10) as response:
            assert read_page(response.read())["title"] == article.title
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0, process.stderr.read()
    history = load_history(tmp_path)
    applied = [(x["aid"], x["kind"]) for x in history[30:]]
    assert applied == [(e.aid, e.kind) for e in events][:len(applied)]
