"""`replica` commands: thin wrappers over the library functions."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .generator import generate
from .manifest import manifest_lines
from .mutate import mutate, summary
from .server import ReplicaServer
from .state import has_state, load_state, save_state, write_atomic

MUTATIONS_FILE = "mutations.json"
DEFAULT_ARTICLES = 2000

_dir_option = click.option("--dir", "state_dir", required=True,
                           type=click.Path(file_okay=False, path_type=Path),
                           help="Directory holding the replica's state.json.")


@click.group(name="replica")
def cli() -> None:
    """A deterministic replica of the portal 中国电源产业网, served on 127.0.0.1."""


@cli.command("generate")
@_dir_option
@click.option("--articles", type=click.IntRange(min=1), default=DEFAULT_ARTICLES, show_default=True,
              help="Number of articles to generate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed for all random choices.")
@click.option("--no-body", type=click.IntRange(min=0), default=0, show_default=True,
              help="Articles served without their #article-content block.")
@click.option("--bad-bytes", type=click.IntRange(min=0), default=0, show_default=True,
              help="Articles whose body carries invalid GB18030 bytes.")
def generate_cmd(state_dir: Path, articles: int, seed: int, no_body: int, bad_bytes: int) -> None:
    """Generate a fresh site into DIR/state.json (replacing any existing one)."""
    state = generate(articles, seed, {"no_body": no_body, "bad_bytes": bad_bytes})
    path = save_state(state, state_dir)
    click.echo(f"generated {len(state.articles)} articles (seed {seed}) into {path}")


@cli.command("serve")
@_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--articles", type=click.IntRange(min=1), default=DEFAULT_ARTICLES, show_default=True,
              help="Articles to generate when DIR has no state yet.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed to generate with when DIR has no state yet.")
def serve_cmd(state_dir: Path, host: str, port: int, articles: int, seed: int) -> None:
    """Serve the replica until Ctrl-C; picks up mutations saved meanwhile."""
    if not has_state(state_dir):
        save_state(generate(articles, seed), state_dir)
    server = ReplicaServer(state_dir, host=host, port=port)
    click.echo(f"serving {server.url}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.command("mutate")
@_dir_option
@click.option("--seed", type=int, required=True, help="Seed for this round's choices.")
@click.option("--edits", type=click.IntRange(min=0), default=50, show_default=True,
              help="Articles edited (title, paragraph added, typo or date).")
@click.option("--takedowns", type=click.IntRange(min=0), default=20, show_default=True,
              help="Articles taken down (404, a quarter redirect to the channel).")
@click.option("--republish", type=click.IntRange(min=0), default=10, show_default=True,
              help="Articles republished under a new aid in another channel.")
@click.option("--new", type=click.IntRange(min=0), default=30, show_default=True,
              help="Brand-new articles.")
def mutate_cmd(state_dir: Path, seed: int, edits: int, takedowns: int, republish: int, new: int) -> None:
    """Apply one mutation round, save it and append its report to DIR/mutations.json."""
    state = load_state(state_dir)
    try:
        report = mutate(state, seed, edits=edits, takedowns=takedowns, republish=republish, new=new)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    save_state(state, state_dir)
    log_path = state_dir / MUTATIONS_FILE
    reports = json.loads(log_path.read_text("utf-8")) if log_path.exists() else []
    reports.append(report)
    write_atomic(log_path, json.dumps(reports, ensure_ascii=False, indent=1) + "\n")
    click.echo(summary(report))


@cli.command("manifest")
@_dir_option
@click.option("--base-url", required=True, help="Base URL the articles are served under.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="Output file (JSON lines); standard output by default.")
def manifest_cmd(state_dir: Path, base_url: str, output) -> None:
    """Write the ground truth, one JSON object per article."""
    for line in manifest_lines(load_state(state_dir), base_url):
        output.write(line)
