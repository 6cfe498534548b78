"""The static build: the same bytes as the live server, plus nginx rules for
what files cannot say. nginx itself is not needed: the rules are checked as
text, the files against the live replica."""
from __future__ import annotations

import json
import re
from datetime import datetime
from random import Random

import pytest
from click.testing import CliRunner
from test_replica import fetch

from replica import CHANNELS, DriftPlan, ReplicaServer, build_static, generate, load_state, mutate, save_state
from replica.cli import cli
from replica.static import CONF_FILE


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("static-site")
    state = generate(200, 12, {"no_body": 1}, {"hostile": 1, "nested": 1})
    mutate(state, 3, edits=5, takedowns=8, republish=2, new=4)
    save_state(state, directory)
    with ReplicaServer(directory) as server:
        yield server


@pytest.fixture(scope="module")
def built(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("static-out") / "www"
    return out, build_static(site.state, out)


def test_every_page_is_written_with_the_live_bytes(site, built):
    out, counts = built
    state = site.state
    files = [p for p in out.rglob("*") if p.is_file() and p.name != CONF_FILE]
    assert counts["pages"] == len(files)
    assert counts["bytes"] == sum(p.stat().st_size for p in files)
    live = [a for a in state.articles.values() if a.live]
    assert len([p for p in files if p.parent.name == "m" and p.name.startswith("view-")]) == len(live)
    sample = Random(0).sample(live, 25) + [a for a in live if a.special or a.defect]
    targets = {"/": "index.html", "/m/": "m/index.html", "/robots.txt": "robots.txt"}
    for channel in CHANNELS:
        targets[channel.root] = channel.root[1:] + "index.html"
        targets[f"{channel.root}list_{channel.typeid}_2.html"] = f"{channel.root[1:]}list_{channel.typeid}_2.html"
    for article in sample:
        targets[article.path] = article.path[1:]
        targets[f"/m/view.php?aid={article.aid}"] = f"m/view-{article.aid}.html"
    for target, name in targets.items():
        status, _, body = fetch(site.url, target)
        assert status == 200 and (out / name).read_bytes() == body, target
    status, _, body = fetch(site.url, "/no/such/page.html")
    assert status == 404 and (out / "404.html").read_bytes() == body


def test_taken_down_articles_have_no_file_and_redirects_have_rules(site, built):
    out, counts = built
    conf = (out / CONF_FILE).read_text("utf-8")
    gone = [a for a in site.state.articles.values() if not a.live]
    redirects = [a for a in gone if a.takedown == "redirect"]
    assert gone and redirects and counts["redirects"] == len(redirects)
    for article in gone:
        assert not (out / article.path[1:]).exists()
        assert not (out / f"m/view-{article.aid}.html").exists()
    for article in redirects:
        root = next(c.root for c in CHANNELS if c.slug == article.channel)
        assert f"location = {article.path} {{ return 302 {root}; }}" in conf
        assert f'if ($arg_aid = "{article.aid}") {{ return 302 {root}; }}' in conf


def test_nginx_rules_cover_mobile_queries_and_404(built):
    out, _ = built
    conf = (out / CONF_FILE).read_text("utf-8")
    assert "try_files /m/view-$arg_aid.html =404;" in conf
    assert "error_page 404 /404.html;" in conf
    assert 'location ~ "^/news/[a-z]+/$" { try_files ${uri}index.html =404; }' in conf
    assert "location /news/ { try_files $uri =404; }" in conf
    assert "location / { return 404; }" in conf
    assert str(out.resolve()) in conf
    assert conf.count("{") == conf.count("}")


def test_article_files_carry_their_modification_time(site, built):
    out, _ = built
    article = next(a for a in site.state.articles.values() if a.live)
    expected = datetime.fromisoformat(article.modified_at).timestamp()
    assert (out / article.path[1:]).stat().st_mtime == expected


def test_build_refuses_a_used_directory_and_can_drift(site, built, tmp_path):
    out, _ = built
    with pytest.raises(ValueError, match="not empty"):
        build_static(site.state, out)
    plan = DriftPlan(1.0)
    counts = build_static(site.state, tmp_path / "drifted", drift=plan)
    article = next(a for a in site.state.articles.values() if a.live)
    assert b"news-detail" in (tmp_path / "drifted" / article.path[1:]).read_bytes()
    assert counts["pages"] == built[1]["pages"]


def test_cli_generates_specials_and_builds_static(tmp_path):
    runner = CliRunner()
    for command in (["build-static"], ["serve"], ["generate"]):
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0
    assert "--fault-rate" in runner.invoke(cli, ["serve", "--help"]).output
    assert "--drift-share" in runner.invoke(cli, ["serve", "--help"]).output
    result = runner.invoke(cli, ["generate", "--dir", str(tmp_path / "s"), "--articles", "60",
                                 "--hostile", "2", "--nested", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    state = load_state(tmp_path / "s")
    assert sorted(a.special for a in state.articles.values() if a.special) == ["hostile", "hostile", "nested"]
    result = runner.invoke(cli, ["manifest", "--dir", str(tmp_path / "s"), "--base-url", "http://h"])
    assert sum(json.loads(line)["special"] == "hostile" for line in result.output.splitlines()) == 2
    result = runner.invoke(cli, ["build-static", "--dir", str(tmp_path / "s"), "--out", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert re.match(r"wrote \d+ pages \(\d+ bytes, 0 redirect rules\)", result.output)
    result = runner.invoke(cli, ["build-static", "--dir", str(tmp_path / "s"), "--out", str(tmp_path / "w")])
    assert result.exit_code != 0 and "not empty" in result.output
