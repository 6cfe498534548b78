"""Telling someone about a run: a command gets its JSON summary on stdin, a URL gets it POSTed.

The daemon calls this after each run whose status is in `notify_on`
(degraded and failed by default). A notification that cannot be delivered
is logged and never stops the daemon. The URL may carry a token, so only
its scheme and host are ever logged.
"""
from __future__ import annotations

import json
import logging
import shlex
import subprocess
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from ops.config import Settings
from pipeline.archive.db import session_scope
from pipeline.archive.models import CrawlRun
from pipeline.archive.summary import RunSummary

log = logging.getLogger("portal_archive.notify")
def run_summary(engine: Engine, run_id: int) -> dict:
    """The JSON a notification carries: the run as every report shows it (RunSummary), and the
    reasons it is degraded."""
    with session_scope(engine) as session:
        summary = RunSummary.of(session.get(CrawlRun, run_id)).to_json()
    return {**summary, "degraded": (summary["health"] or {}).get("degraded") or []}


def wanted(settings: Settings, status: str) -> bool:
    statuses = {s.strip() for s in settings.notify_on.split(",") if s.strip()}
    return status in statuses and bool(settings.notify_command or settings.notify_url)


def notify(settings: Settings, summary: dict) -> list[str]:
    """Deliver the summary to the configured command and URL; one line per delivery, for the log."""
    data = json.dumps(summary, ensure_ascii=False, default=str).encode("utf-8")
    results = []
    if settings.notify_command:
        results.append(_run_command(settings.notify_command, data, settings.notify_timeout))
    if settings.notify_url:
        results.append(_post(settings.notify_url, data, settings.notify_timeout))
    return results


def _run_command(command: str, data: bytes, timeout: float) -> str:
    argv = shlex.split(command)
    try:
        done = subprocess.run(argv, input=data, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"notify command {argv[0]!r} could not run: {exc}"
    if done.returncode:
        return f"notify command {argv[0]!r} exited {done.returncode}"
    return f"notify command {argv[0]!r} told"


def _post(url: str, data: bytes, timeout: float) -> str:
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "User-Agent": "portal-archive notify"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"notify URL {shown} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"notify URL {shown} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"notify URL {shown} could not be reached: {getattr(exc, 'reason', exc)}"
