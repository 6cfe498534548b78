"""One settings object: defaults that work offline, a TOML file, then PORTAL_ARCHIVE_* variables.

Secrets (passwords inside database or Redis URLs) only ever come from the
environment or the file; `redacted()` is what may be printed or logged.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

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
    # The replica's default address: the tool works offline out of the box.
    base_url: str = "http://127.0.0.1:8000"
    profile: str = "cpsia"
    user_agent: str = "portal-archive/0.1 (+archival crawler; contact: archive operators)"
    concurrent_requests: int = 32
    download_delay: float = 0.0
    download_timeout: float = 30.0
    retry_times: int = 3
    # Seconds before the first retry; each further retry waits twice as long.
    retry_backoff: float = 0.5
    autothrottle: bool = False
    max_page_bytes: int = 64 * 1024 * 1024
    obey_robots: bool = True
    # Ask conditional revisits with a lean HTTP client first and take only its 304s
    # (spiders/revalidate.py); anything else is fetched by Scrapy as before.
    revalidate: bool = True
    batch_size: int = 200
    # Processes that decode and parse article pages beside the crawl (spiders/reader.py);
    # -1: one when the machine has a second core, else none (pages are read in the crawl's process).
    parse_processes: int = -1
    # Write the archive's batches in a writer process beside the crawl (pipeline/archive.py):
    # 1 yes, 0 in the crawl's own process, -1: yes when the machine has a second core.
    write_process: int = -1
    # How many separate runs an article must answer 404/410 (or redirect to its
    # channel) before it is recorded as taken down.
    takedown_confirmations: int = 1
    # How long a crawl's (or daemon's) lease outlives its last renewal: how soon
    # another process may take over from one that was killed.
    lease_ttl_seconds: float = 60.0
    # How long a SQLite writer waits for another's lock before the write fails.
    sqlite_busy_timeout_ms: int = 30_000
    # Revisit tiers: [max age in days (or -1 for any age), revisit every N hours].
    revisit_tiers: tuple = ((2, 1), (14, 6), (90, 24), (None, 168))
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
    def is_default_db(self) -> bool:
        return self.db == Settings.db


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value):
    default = _FIELDS[name].default
    kind = type(default) if default is not dataclasses.MISSING else dict
    try:
        if name == "revisit_tiers":
            if isinstance(value, str):
                value = json.loads(value)
            return tuple((None if a is None or a < 0 else a, b) for a, b in value)
        if kind is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):  # json.JSONDecodError is a ValueError
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
            if key not in _FIELDS or key == "extra":
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, value)
        values["extra"] = {k: v for k, v in data.items() if isinstance(v, dict)}
    for name in _FIELDS:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None and name != "extra":
            values[name] = _coerce(name, env_value)
    return Settings(**values)
