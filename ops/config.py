"""One settings object: defaults that work offline, a TOML file, then PORTAL_ARCHIVE_* variables.

Secrets (passwords inside database or Redis URLs) only ever come from the
environment or the file; `pipeline.archive.db.redact_url` is what may be printed or logged.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.archive.defaults import BATCH_SIZE, DICTIONARY_AFTER_PAGES, DICTIONARY_WINDOW, SQLITE_BUSY_TIMEOUT_MS
from spiders.helpers import default_processes

DEFAULT_DB_PATH = Path("var") / "archive.sqlite"
ENV_PREFIX = "PORTAL_ARCHIVE_"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    db: str = f"sqlite:///{DEFAULT_DB_PATH}"
    # The shared frontier of distributed crawls (redis://host:port/db); none by default.
    redis: str = ""
    # A distributed worker with nothing to do leaves after this long.
    worker_idle_seconds: float = 30.0
    # A worker whose heartbeat is older than this is taken for dead: what it had taken from the
    # frontier goes back to the queue for the others. Surviving workers look every
    # frontier_reclaim_seconds. Too short a TTL takes a live but stalled worker for dead, and
    # its pages are fetched twice (the archive writes no second version of them).
    worker_heartbeat_ttl: float = 30.0
    frontier_reclaim_seconds: float = 10.0
    # The replica's default address: the tool works offline out of the box.
    base_url: str = "http://127.0.0.1:8000"
    profile: str = "cpsia"
    # Politeness for the live portal, Scrapy's conventions (its project template): one request
    # at a time, a second apart, robots.txt obeyed, an honest User-Agent that says how to reach
    # the operators (`contact`: an e-mail address or a URL). The demo, the tests and the
    # benchmarks set their own fast values explicitly; see the README, "Politeness".
    contact: str = ""
    user_agent: str = ""  # empty: portal-archive/<version> (archival crawler; +contact)
    concurrent_requests: int = 1
    download_delay: float = 1.0
    download_timeout: float = 30.0
    retry_times: int = 3
    # Seconds before the first retry; each further retry waits twice as long.
    retry_backoff: float = 0.5
    autothrottle: bool = False
    # The request budget (pipeline/budget.py): requests to the portal in any 24 hours, and per
    # run (0: no limit). List walks, new articles, revisits, gap probes, retries and robots.txt
    # all draw from it.
    requests_per_day: int = 20_000
    requests_per_run: int = 0
    # Revisits (pipeline/policy.py): every article is looked at at least once in this many days
    # (takedowns are noticed within it; taken-down articles are checked this often for a return);
    # beyond that the budget goes where a change is likeliest ("adaptive"), or round-robin
    # ("uniform", the baseline).
    revisit_floor_days: float = 30.0
    revisit_strategy: str = "adaptive"
    max_page_bytes: int = 64 * 1024 * 1024
    obey_robots: bool = True
    batch_size: int = BATCH_SIZE
    # Raw pages' zstd dictionary (pipeline/archive/rawpages.py): trained once the archive holds
    # this many article pages, and again when the newest dictionary_window pages it compressed
    # show the portal's template changed.
    dictionary_after_pages: int = DICTIONARY_AFTER_PAGES
    dictionary_window: int = DICTIONARY_WINDOW
    # Processes that decode and parse article pages beside the crawl (spiders/reader.py);
    # -1: one when the crawl is unpaced (no download delay, no AutoThrottle, more than one request
    # at a time) and the machine has a second core, else none (pages are read in the crawl's process).
    parse_processes: int = -1
    # Write the archive's batches in a writer process beside the crawl (pipeline/archive.py):
    # 1 yes, 0 in the crawl's own process, -1: yes when the crawl is unpaced on a second core.
    write_process: int = -1
    # How many separate runs an article must answer 404/410 (or redirect to its
    # channel) before it is recorded as taken down.
    takedown_confirmations: int = 1
    # How long a crawl's (or daemon's) lease outlives its last renewal: how soon
    # another process may take over from one that was killed.
    lease_ttl_seconds: float = 60.0
    # How long a SQLite writer waits for another's lock before the write fails.
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    log_level: str = "INFO"
    # Run health (pipeline/health.py): a run is `degraded` when, over at least
    # health_min_articles article pages, more than these shares were read by the
    # fallback or quarantined, or fewer than health_min_field_coverage of its
    # archived articles have a field every article page carries.
    # Read an article page the profile cannot read with the generic fallback
    # (spiders/fallback.py); off, such pages are quarantined as before.
    extraction_fallback: bool = True
    health_max_fallback_rate: float = 0.05
    health_max_quarantine_rate: float = 0.05
    health_min_field_coverage: float = 0.9
    health_min_articles: int = 20
    # Told after a daemon run whose status is in notify_on (comma-separated): a
    # command run with the run's JSON summary on stdin, and/or a URL the summary
    # is POSTed to. Empty: nobody is told.
    notify_command: str = ""
    notify_url: str = ""
    notify_on: str = "degraded,failed"
    notify_timeout: float = 10.0
    extra: dict = field(default_factory=dict)

    def replace(self, **changes) -> "Settings":
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)

    @property
    def paced(self) -> bool:
        return self.download_delay > 0 or self.autothrottle or self.concurrent_requests <= 1

    def reader_processes(self) -> int:
        return self.parse_processes if self.parse_processes >= 0 else default_processes(self.paced)

    def writes_in_helper(self) -> bool:
        return self.write_process > 0 if self.write_process >= 0 else default_processes(self.paced) > 0

    @property
    def is_default_db(self) -> bool:
        return self.db == Settings.db

    @property
    def effective_user_agent(self) -> str:
        if self.user_agent:
            return self.user_agent
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("portal-archive")
        except PackageNotFoundError:
            release = "dev"
        contact = f"; +{self.contact}" if self.contact else ""
        return f"portal-archive/{release} (archival crawler{contact})"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# Settings that no longer exist, and what replaced them.
RETIRED = {
    "revalidate": "conditional revisits are asked by Scrapy itself now (under a request budget a 304 is "
                  "judged by the request it spends, not by the CPU it costs); remove it",
    "revisit_tiers": "the fixed revisit tiers were replaced by a policy that learns from the archive's "
                     "own checks; remove it (requests_per_day and revisit_floor_days are its settings)",
}


def _coerce(name: str, value):
    default = _FIELDS[name].default
    kind = type(default) if default is not dataclasses.MISSING else dict
    try:
        if kind is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} expects {kind.__name__}, got {value!r}") from None


def load_settings(config_file: str | os.PathLike | None = None, environ=None) -> Settings:
    """Defaults, then the TOML file (if any), then the environment."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        section = data.get("archive", data)
        for key, value in section.items():
            if isinstance(value, dict):
                continue  # other sections (the daemon's schedule) are read by their owners
            if key in RETIRED:
                raise ConfigError(f"setting {key!r} in {path}: {RETIRED[key]}")
            if key not in _FIELDS or key == "extra":
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, value)
        values["extra"] = {k: v for k, v in data.items() if isinstance(v, dict)}
    for name, why in RETIRED.items():
        if ENV_PREFIX + name.upper() in environ:
            raise ConfigError(f"{ENV_PREFIX + name.upper()}: {why}")
    for name in _FIELDS:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None and name != "extra":
            values[name] = _coerce(name, env_value)
    settings = Settings(**values)
    if settings.revisit_strategy not in ("adaptive", "uniform"):
        raise ConfigError(f"setting 'revisit_strategy' must be adaptive or uniform, got {settings.revisit_strategy!r}")
    for name in ("requests_per_day", "requests_per_run", "concurrent_requests"):
        if getattr(settings, name) < (1 if name == "concurrent_requests" else 0):
            raise ConfigError(f"setting {name!r} cannot be {getattr(settings, name)}")
    if settings.download_delay < 0 or settings.revisit_floor_days < 0:
        raise ConfigError("download_delay and revisit_floor_days cannot be negative")
    for name in ("worker_heartbeat_ttl", "frontier_reclaim_seconds"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"setting {name!r} must be positive, got {getattr(settings, name)}")
    return settings
