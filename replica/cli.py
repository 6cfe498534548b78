"""`replica` commands: thin wrappers over the library functions."""
from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import click

from .drift import DriftPlan
from .faults import ALL_TRANSIENT, FaultPlan, parse_kinds
from .generator import generate
from .history import history_path, load_history
from .live import LivePlan, LivePortal
from .manifest import manifest_lines
from .mutate import mutate, summary
from .recall import version_recall
from .server import ReplicaServer
from .shift import ShiftPlan
from .state import MUTATIONS_FILE, append_report, has_state, load_state, save_state  # noqa: F401 - MUTATIONS_FILE: still importable here
from .static import build_static

DEFAULT_ARTICLES = 2000

_dir_option = click.option("--dir", "state_dir", required=True,
                           type=click.Path(file_okay=False, path_type=Path),
                           help="Directory holding the replica's state.json.")


_LIVE_DEFAULTS = {f.name: f.default for f in fields(LivePlan)}
# Option, plan field, type, help: one row per field of LivePlan.
_LIVE_OPTIONS = (
    ("--live-seed", "seed", int, "Seed of the schedule of events."),
    ("--publish-every", "publish_every", click.FloatRange(min=0, min_open=True),
     "Mean seconds between new articles (exponential gaps)."),
    ("--edited-share", "edited_share", click.FloatRange(0, 1), "Share of new articles edited at least once."),
    ("--edits-mean", "edits_mean", click.FloatRange(min=1), "Mean number of edits of an edited article."),
    ("--early-edit-seconds", "early_edit_seconds", click.FloatRange(min=0, min_open=True),
     "Median delay of an early edit after publication (lognormal)."),
    ("--late-share", "late_share", click.FloatRange(0, 1), "Share of edits that are late."),
    ("--late-edit-seconds", "late_edit_seconds", click.FloatRange(min=0),
     "Late edits land uniformly up to this many seconds after publication."),
    ("--old-edit-share", "old_edit_share", click.FloatRange(0, 1),
     "Share of the articles there before the start that get one edit."),
    ("--takedown-share", "takedown_share", click.FloatRange(0, 1),
     "Share of articles, old and new, taken down at a random moment."),
    ("--old-takedown-share", "old_takedown_share", click.FloatRange(0, 1),
     "Share of the articles there before the start taken down (default: the takedown share)."),
    ("--restore-share", "restore_share", click.FloatRange(0, 1), "Share of takedowns that come back later."),
    ("--live-duration", "duration", click.FloatRange(min=0),
     "Seconds over which live mode changes the site; nothing changes after."),
)


def _live_options(command):
    for flag, name, kind, text in reversed(_LIVE_OPTIONS):
        command = click.option(flag, f"live_{name}", type=kind, default=_LIVE_DEFAULTS[name],
                               show_default=True, help=f"Live mode: {text[0].lower()}{text[1:]}")(command)
    return command


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
@click.option("--hostile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Special articles with scripts, event handlers, javascript: links, formulas.")
@click.option("--huge", type=click.IntRange(min=0), default=0, show_default=True,
              help="Special articles whose page is about 20 MB.")
@click.option("--nested", type=click.IntRange(min=0), default=0, show_default=True,
              help="Special articles whose body sits in 5,000 nested <div>/<span>.")
def generate_cmd(state_dir: Path, articles: int, seed: int, no_body: int, bad_bytes: int,
                 hostile: int, huge: int, nested: int) -> None:
    """Generate a fresh site into DIR/state.json (replacing any existing one)."""
    state = generate(articles, seed, {"no_body": no_body, "bad_bytes": bad_bytes},
                     {"hostile": hostile, "huge": huge, "nested": nested})
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
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of article/list requests answered with a transient fault.")
@click.option("--fault-seed", type=int, default=1, show_default=True, help="Seed of the fault draws.")
@click.option("--fault-kinds", default=None,
              help=f"Comma-separated fault kinds to draw from; all by default: {', '.join(ALL_TRANSIENT)}.")
@click.option("--slow-seconds", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Delay of a `slow` fault.")
@click.option("--fault-max-per-url", type=click.IntRange(min=0), default=None,
              help="At most this many faults per URL (later attempts are clean). Default: no cap.")
@click.option("--drift-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of articles served in the redesigned layout.")
@click.option("--drift-seed", type=int, default=1, show_default=True, help="Seed of the drift choice.")
@click.option("--shift-after-lists", type=click.IntRange(min=1), default=None,
              help="After this many list-page answers, publish and take down articles once.")
@click.option("--shift-new", type=click.IntRange(min=0), default=10, show_default=True,
              help="Articles the shift publishes.")
@click.option("--shift-takedowns", type=click.IntRange(min=0), default=5, show_default=True,
              help="Articles the shift takes down.")
@click.option("--shift-seed", type=int, default=1, show_default=True, help="Seed of the shift round.")
@click.option("--live", is_flag=True,
              help="Live mode: publish, edit, take down and restore articles over real seconds, "
                   "recording every version in DIR/history.jsonl.")
@_live_options
def serve_cmd(state_dir: Path, host: str, port: int, articles: int, seed: int, fault_rate: float,
              fault_seed: int, fault_kinds: str, slow_seconds: float, fault_max_per_url: int | None,
              drift_share: float, drift_seed: int, shift_after_lists: int | None, shift_new: int,
              shift_takedowns: int, shift_seed: int, live: bool, **live_plan) -> None:
    """Serve the replica until Ctrl-C; picks up mutations saved meanwhile."""
    if not has_state(state_dir):
        save_state(generate(articles, seed), state_dir)
    try:
        kinds = parse_kinds(fault_kinds) if fault_kinds is not None else ALL_TRANSIENT
        faults = FaultPlan(fault_rate, fault_seed, kinds, slow_seconds,
                           fault_max_per_url) if fault_rate > 0 else None
        drift = DriftPlan(drift_share, drift_seed) if drift_share > 0 else None
        shift = (ShiftPlan(shift_after_lists, shift_new, shift_takedowns, shift_seed)
                 if shift_after_lists is not None else None)
        if live and shift is not None:
            raise ValueError("--live and --shift-after-lists both change state.json: use one of them")
        plan = LivePlan(**{k.removeprefix("live_"): v for k, v in live_plan.items()}) if live else None
        server = ReplicaServer(state_dir, host=host, port=port, faults=faults, drift=drift, shift=shift)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"serving {server.url}")
    # Ctrl-C and SIGTERM only ask to stop: a KeyboardInterrupt could land anywhere in the serving
    # loop or a live save (a run under load once outlived its SIGINT by 10 s).
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    portal = None
    server.start()
    try:
        if plan is not None:
            portal = LivePortal(state_dir, plan).start()
            click.echo(f"live mode: {len(portal.events)} events over {plan.duration:g} s "
                       f"(seed {plan.seed}), history in {portal.history_path}")
        sys.stdout.flush()
        while not stopping.wait(0.5):
            pass
    finally:
        try:
            if portal is not None:
                portal.stop()
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
    append_report(state_dir, report)
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


@cli.command("build-static")
@_dir_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Empty or new directory for the static site.")
@click.option("--drift-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of articles written in the redesigned layout.")
@click.option("--drift-seed", type=int, default=1, show_default=True, help="Seed of the drift choice.")
def build_static_cmd(state_dir: Path, out_dir: Path, drift_share: float, drift_seed: int) -> None:
    """Write the site as static files plus nginx-locations.conf for nginx."""
    drift = DriftPlan(drift_share, drift_seed) if drift_share > 0 else None
    try:
        counts = build_static(load_state(state_dir), out_dir, drift=drift)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {counts['pages']} pages ({counts['bytes']} bytes, "
               f"{counts['redirects']} redirect rules) into {out_dir}")


@cli.command("live-report")
@_dir_option
@click.option("--export", "export_file", required=True, type=click.File("r", encoding="utf-8"),
              help="The archive's `portal-archive export --all-versions` output (JSON lines).")
@click.option("--since", default=None,
              help="Leave out versions that came into being at or before this time (ISO 8601 with "
                   "offset), or `start`: those there when live mode first started on DIR.")
@click.option("--slack", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds a fetch may be stamped after the next version appeared and still count.")
def live_report_cmd(state_dir: Path, export_file, since: str | None, slack: float) -> None:
    """Print, as JSON, what share of DIR/history.jsonl's versions an archive captured."""
    if not history_path(state_dir).is_file():
        raise click.ClickException(f"no live-mode history in {state_dir} ({history_path(state_dir).name})")
    history = load_history(state_dir)
    if since == "start":
        since = history[0]["at"] if history else None
    elif since is not None:
        try:
            if datetime.fromisoformat(since).tzinfo is None:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{since!r} is not an ISO 8601 time with offset, nor `start`",
                                     param_hint="--since") from None
    try:
        rows = [json.loads(line) for line in export_file if line.strip()]
        result = version_recall(history, rows, since=since, slack=slack)
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"cannot read the export: {exc!r}") from exc
    # One key a line: readable, and `missed` stays one line however long.
    click.echo("{\n" + ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}"
                                   for key, value in result.items()) + "\n}")
