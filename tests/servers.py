"""Throwaway PostgreSQL and Redis servers for the tests: temporary data directory, loopback, a free port.

Started from the installed Debian binaries; under CI=true a missing binary is
an error, never a skip (a suite that silently skips its server tests fails).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class ServerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path:
        return path
    raise ServerUnavailable(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerUnavailable(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PostgresServer:
    """initdb into a temp dir and run postgres on 127.0.0.1 (as the postgres user when we are root).

    With `directory`, the data directory is kept there between runs (initdb only the first time,
    nothing removed on stop: the scale benchmark measures a built archive again), and `options`
    adds server settings."""

    def __init__(self, directory: Path | None = None, options: str = ""):
        self.kept = directory is not None
        self.dir = Path(directory) if self.kept else Path(tempfile.mkdtemp(prefix="pa-pg-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.port = free_port()
        self.user = "portal"
        self._as = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable("no postgres system user to run the server as") from None
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> "PostgresServer":
        data = self.dir / "data"
        if not (data / "PG_VERSION").exists():
            self._run(_pg_bin("initdb"), "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        return self.resume()

    def pause(self) -> None:
        """Stop the server, keeping its data (an outage)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def resume(self) -> "PostgresServer":
        data = self.dir / "data"
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 {self.options}")
        self._run(_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        _wait_port(self.port, 30)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, migrate: bool = True) -> str:
        """A fresh database, brought to the newest schema (as a new SQLite file is on first use)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        if migrate:
            from pipeline.archive.db import upgrade

            upgrade(self.url(name))
        return self.url(name)

    def database(self, name: str) -> str:
        """The URL of database `name`, created empty if it is not there yet."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def copy_database(self, url: str) -> str:
        """A new database holding what `url`'s holds (CREATE DATABASE … TEMPLATE): a cheap private copy.

        PostgreSQL copies only a database nobody is connected to; the caller closes its connections first."""
        import psycopg
        from sqlalchemy.engine import make_url

        source = make_url(url).database
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self.url(name)

    def stop(self, mode: str = "fast") -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        if not self.kept:
            shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pa-redis-"))
        self.port = free_port()
        self.process = None

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, 15)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        shutil.rmtree(self.dir, ignore_errors=True)


# pywb replays WARCs as the web archives do. It pins old versions of redis and werkzeug, so it lives
# in a virtual environment of its own, built once from the package index and kept between runs.
PYWB_VERSION = "2.10.0"
PYWB_CACHE = Path(os.environ.get("PORTAL_ARCHIVE_TEST_CACHE", Path.home() / ".cache" / "portal-archive-test"))


def pywb_env() -> Path:
    """The pywb virtual environment (built on first use: about a minute); ServerUnavailable if it
    cannot be built (no package index)."""
    import fcntl

    venv = PYWB_CACHE / f"pywb-venv-{PYWB_VERSION}"
    if (venv / ".ready").exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    # The SQLite and the PostgreSQL passes run side by side: one builds, the other waits for it.
    with open(venv.parent / f"pywb-venv-{PYWB_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".ready").exists():
            _build_pywb(venv)
    return venv


def _build_pywb(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)  # a build that was cut short
    try:
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"pywb=={PYWB_VERSION}"],
                       check=True, capture_output=True, text=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        detail = getattr(exc, "stderr", None) or str(exc)
        raise ServerUnavailable(f"pywb {PYWB_VERSION} could not be installed in its own virtualenv: "
                                f"{str(detail).strip()[-500:]}") from None
    (venv / ".ready").touch()


class PywbServer:
    """A pywb collection of WARC files (wb-manager init + add) replayed by `wayback` on loopback."""

    def __init__(self, warcs: list[Path], collection: str = "portal"):
        self.dir = Path(tempfile.mkdtemp(prefix="pa-pywb-"))
        self.warcs, self.collection = warcs, collection
        self.port = free_port()
        self.process = None

    def _tool(self, venv: Path, name: str) -> list[str]:
        # Through the environment's python: its scripts' #! lines name the path it was built at.
        return [str(venv / "bin" / "python"), str(venv / "bin" / name)]

    def start(self) -> "PywbServer":
        venv = pywb_env()
        for args in (["init", self.collection], ["add", self.collection, *map(str, self.warcs)]):
            subprocess.run([*self._tool(venv, "wb-manager"), *args], cwd=self.dir, check=True,
                           capture_output=True, timeout=300)
        self.log = open(self.dir / "wayback.log", "wb")
        self.process = subprocess.Popen([*self._tool(venv, "wayback"), "-b", "127.0.0.1", "-p", str(self.port)],
                                        cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        _wait_port(self.port, 60)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.collection}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
