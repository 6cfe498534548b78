"""Fault mode over real HTTP: every transient kind as a client sees it, and
whole runs that are reproducible for a seed and end with every page served."""
from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_replica import fetch, parse

from replica import ALL_TRANSIENT, CHANNELS, FaultPlan, ReplicaServer, generate, route, save_state
from replica.faults import short_cut

PROJECT = Path(__file__).resolve().parents[1]
N_ARTICLES = 120


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("faults")
    save_state(generate(N_ARTICLES, 3, {"no_body": 1}), directory)
    return directory


@pytest.fixture(scope="module")
def plain(state_dir):
    with ReplicaServer(state_dir) as server:
        yield server


def first_fault(state_dir, kind: str, **extra) -> ReplicaServer:
    """A server where every page's first request gets `kind`, retries are clean."""
    return ReplicaServer(state_dir, faults=FaultPlan(1.0, 1, (kind,), max_per_target=1, **extra))


def article_paths(server) -> list[str]:
    return [a.path for a in server.state.articles.values() if a.live]


def clean_article(server):
    return next(a for a in server.state.articles.values() if a.live and a.defect is None)


def connect(server, timeout: float = 10) -> http.client.HTTPConnection:
    url = urlsplit(server.url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)


# --- the plan ----------------------------------------------------------------

def test_plan_is_deterministic_and_near_its_rate():
    plan = FaultPlan(0.1, 42)
    draws = [plan.decide(f"/news/hyzx/2025/0101/{aid}.html", attempt)
             for aid in range(5000) for attempt in range(2)]
    assert draws == [FaultPlan(0.1, 42).decide(f"/news/hyzx/2025/0101/{aid}.html", attempt)
                     for aid in range(5000) for attempt in range(2)]
    assert 0.08 < sum(d is not None for d in draws) / len(draws) < 0.12
    assert set(draws) - {None} == set(ALL_TRANSIENT)
    # A URL that fails first usually succeeds on its retry.
    first = [(d0, d1) for d0, d1 in zip(draws[::2], draws[1::2]) if d0]
    assert sum(d1 is None for _, d1 in first) / len(first) > 0.8
    assert draws != [FaultPlan(0.1, 43).decide(f"/news/hyzx/2025/0101/{aid}.html", attempt)
                     for aid in range(5000) for attempt in range(2)]
    assert FaultPlan(1.0, 1, max_per_target=2).decide("/x", 2) is None
    with pytest.raises(ValueError):
        FaultPlan(0.1, 1, ("http418",))
    with pytest.raises(ValueError):
        FaultPlan(1.5, 1)


# --- each kind, as a client sees it ------------------------------------------

@pytest.mark.parametrize("kind,status", [("http500", 500), ("http502", 502), ("http503", 503)])
def test_server_errors(state_dir, kind, status):
    with first_fault(state_dir, kind) as server:
        article = clean_article(server)
        code, response, body = fetch(server.url, article.path)
        assert code == status and len(body) < 200 and response.headers["ETag"] is None
        assert fetch(server.url, article.path)[0] == 200
        assert server.fault_counts == Counter({kind: 1})
        assert server.fault_log == [(article.path, kind)]
        assert server.ok_counts == Counter({article.path: 1})


def test_robots_and_home_are_never_faulted(state_dir):
    with ReplicaServer(state_dir, faults=FaultPlan(1.0, 1, ("http503",))) as server:
        for target in ("/robots.txt", "/", "/nope.html"):
            for _ in range(3):
                assert fetch(server.url, target)[0] in (200, 404)
        assert fetch(server.url, CHANNELS[0].root)[0] == 503
        assert server.fault_counts == Counter({"http503": 1})


def test_slow_times_out_a_patient_client_only_if_it_waits_less(state_dir):
    with first_fault(state_dir, "slow", slow_seconds=0.6) as server:
        article, other = [a for a in server.state.articles.values() if a.live and not a.defect][:2]
        conn = connect(server, timeout=0.2)
        conn.request("GET", article.path)
        with pytest.raises(socket.timeout):
            conn.getresponse()
        conn.close()
        time.sleep(0.8)  # the server wakes, sees the client gone, answers nothing
        assert server.ok_counts[article.path] == 0
        assert fetch(server.url, article.path)[0] == 200
        started = time.perf_counter()
        assert fetch(server.url, other.path)[0] == 200  # a client that waits gets the page
        assert time.perf_counter() - started >= 0.6
        assert server.ok_counts == Counter({article.path: 1, other.path: 1})
        assert server.fault_counts == Counter({"slow": 2})


def test_reset_drops_the_connection_without_an_answer(state_dir):
    with first_fault(state_dir, "reset") as server:
        article = clean_article(server)
        with pytest.raises(ConnectionResetError):
            fetch(server.url, article.path)
        assert fetch(server.url, article.path)[0] == 200
        assert server.fault_counts == Counter({"reset": 1})


def test_truncated_announces_the_full_length_then_closes(state_dir):
    with first_fault(state_dir, "truncated") as server:
        article = clean_article(server)
        full = route(server.state, article.path).body
        conn = connect(server)
        conn.request("GET", article.path)
        response = conn.getresponse()
        assert response.status == 200 and int(response.headers["Content-Length"]) == len(full)
        assert response.headers["ETag"] is None
        with pytest.raises(http.client.IncompleteRead) as error:
            response.read()
        assert error.value.partial == full[:len(full) // 2]
        conn.close()
        assert fetch(server.url, article.path)[2] == full


def test_truncated_short_is_a_complete_transfer_of_half_a_page(state_dir):
    with first_fault(state_dir, "truncated_short") as server:
        for target in (clean_article(server).path, CHANNELS[1].root):
            full = route(server.state, urlsplit(target).path).body
            status, response, body = fetch(server.url, target)
            assert status == 200 and int(response.headers["Content-Length"]) == len(body)
            assert full.startswith(body) and 0.3 < len(body) / len(full) < 0.9
            assert b"</html>" not in body and b"</body>" not in body
            page = body.decode("gb18030")  # cut between characters
            assert ('id="article-content"' in page and "<!-- content end -->" not in page) or \
                   ('<ul class="e2">' in page and "</ul>" not in page.split('<ul class="e2">')[1])
            assert fetch(server.url, target)[2] == full


def test_empty200_and_empty_page(state_dir):
    with first_fault(state_dir, "empty200") as server:
        status, response, body = fetch(server.url, clean_article(server).path)
        assert status == 200 and body == b"" and response.headers["Content-Length"] == "0"
    with first_fault(state_dir, "empty_page") as server:
        article = clean_article(server)
        status, _, body = fetch(server.url, article.path)
        doc = parse(body)
        assert status == 200 and body.endswith(b"</html>\n")
        assert doc.cssselect("#article-content") and not doc.cssselect("#article-content p")
        assert doc.cssselect(".viewbox .title h2")[0].text_content() == article.title
        status, _, body = fetch(server.url, CHANNELS[0].root)
        assert status == 200 and not parse(body).cssselect(".listbox li")
        assert parse(body).cssselect(".pagelist")
        assert server.fault_counts == Counter({"empty_page": 2})


def test_bad_bytes_spoil_the_body_this_time_only(state_dir):
    with first_fault(state_dir, "bad_bytes") as server:
        article = clean_article(server)
        status, _, body = fetch(server.url, article.path)
        assert status == 200
        with pytest.raises(UnicodeDecodeError):
            body.decode("gb18030")
        head, _, rest = body.partition(b"<!-- content begin -->")
        head.decode("gb18030")
        rest.partition(b"<!-- content end -->")[2].decode("gb18030")
        fetch(server.url, article.path)[2].decode("gb18030")
        status, _, body = fetch(server.url, CHANNELS[2].root)
        with pytest.raises(UnicodeDecodeError):
            body.decode("gb18030")
        # A page without a body has nothing to spoil: served normally, not counted.
        no_body = next(a for a in server.state.articles.values() if a.defect == "no_body")
        assert fetch(server.url, no_body.path)[2] == route(server.state, no_body.path).body
        assert server.fault_counts == Counter({"bad_bytes": 2})


def test_faults_hit_takedowns_too_and_never_answer_304(state_dir):
    with first_fault(state_dir, "http503") as server:
        article, url = clean_article(server), server.url
        assert fetch(url, article.path)[1].headers["ETag"] is None  # faulted: no validators
        tag = fetch(url, article.path)[1].headers["ETag"]
        missing = "/news/hyzx/2020/0101/1.html"
        assert [fetch(url, missing)[0] for _ in range(2)] == [503, 404]  # a 5xx first, not a 404
        conditional = (article.path + "?from=timeline", {"If-None-Match": tag})
        assert [fetch(url, *conditional)[0] for _ in range(2)] == [503, 304]


def test_conditional_counts(plain):
    plain.reset_counts()
    article = clean_article(plain)
    _, response, _ = fetch(plain.url, article.path)
    tag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    fetch(plain.url, article.path, {"If-None-Match": tag})
    fetch(plain.url, article.path, {"If-Modified-Since": modified})
    fetch(plain.url, article.path, {"If-None-Match": '"old"', "If-Modified-Since": modified})
    assert plain.conditional_counts == Counter(
        {"if_none_match": 2, "if_modified_since": 2, "not_modified": 2})
    assert plain.ok_counts == Counter({article.path: 2})
    assert not plain.fault_counts and not plain.fault_log
    plain.reset_counts()
    assert plain.conditional_counts == Counter(
        {"if_none_match": 0, "if_modified_since": 0, "not_modified": 0})


# --- whole runs ----------------------------------------------------------------

def retrying_walk(server, paths: list[str], attempts: int = 30) -> dict[str, int]:
    """Fetch each path until its normal page arrives; returns tries per path."""
    expected = {p: route(server.state, p) for p in paths}
    tries = {}
    for path in paths:
        for n in range(1, attempts + 1):
            try:
                status, response, body = fetch(server.url, path, timeout=5)
            except (OSError, http.client.HTTPException):
                continue
            normal = expected[path]
            if (status, body, response.headers["ETag"]) == \
                    (200, normal.body, dict(normal.headers).get("ETag")):
                tries[path] = n
                break
        else:
            raise AssertionError(f"{path} never served correctly")
    return tries


def test_a_faulty_run_is_reproducible_and_serves_every_page_in_the_end(state_dir):
    # A slow answer still reaches this patient client: counted as a fault and as ok.
    plan = FaultPlan(0.3, 9, slow_seconds=0.05)
    logs = []
    for _ in range(2):
        with ReplicaServer(state_dir, faults=plan) as server:
            paths = article_paths(server) + [c.root for c in CHANNELS]
            tries = retrying_walk(server, paths)
            assert all(server.ok_counts[p] >= 1 for p in paths)
            assert sum(server.fault_counts.values()) == len(server.fault_log) > 0
            logs.append((server.fault_log, tries))
            server.reset_counts()
            assert retrying_walk(server, paths) == tries  # a reset starts the faults over
    assert logs[0] == logs[1]
    kinds = Counter(kind for _, kind in logs[0][0])
    assert set(kinds) == set(ALL_TRANSIENT)
    assert max(logs[0][1].values()) > 1


def test_cli_serves_with_faults(state_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "replica", "serve", "--dir", str(state_dir), "--port", "0",
         "--fault-rate", "1", "--fault-seed", "4", "--fault-kinds", "http502,http503"],
        cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[-1]
        assert fetch(url, "/robots.txt")[0] == 200
        assert {fetch(url, CHANNELS[0].root)[0] for _ in range(6)} == {502, 503}
    finally:
        process.terminate()
        process.wait(10)
    bad = subprocess.run([sys.executable, "-m", "replica", "serve", "--dir", str(state_dir),
                          "--fault-rate", "0.1", "--fault-kinds", "http418"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "unknown fault kinds" in bad.stderr


def test_short_cut_falls_back_to_a_tag_boundary():
    body = "<html><body>".encode() + "电源".encode("gb18030") * 50 + b"<b>x</b>" + b"y" * 50
    cut = short_cut(body)
    assert body[cut:cut + 1] == b"<" and cut >= len(body) // 2 - 8
