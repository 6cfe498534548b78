"""A PostgreSQL server for the scale benchmark whose data directory is kept between runs, so a
built archive is measured again without building it again. Started from the installed binaries
on a free loopback port, with the test suite's settings (tests/servers.py), stopped at the end."""
from __future__ import annotations

import os
import pwd
import subprocess

from tests.servers import _pg_bin, _wait_port, free_port


class KeptPostgres:
    def __init__(self, directory):
        self.dir = directory
        self.port = free_port()
        self.user = "portal"
        self._as: list[str] = []
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # postgres refuses to run as root
            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=300)

    def start(self) -> "KeptPostgres":
        data = self.dir / "data"
        if not (data / "PG_VERSION").exists():
            self._run(_pg_bin("initdb"), "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=512MB")
        self._run(_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        _wait_port(self.port, 60)
        return self

    def database(self, name: str) -> str:
        """The URL of database `name`, created if it is not there yet (empty: the build migrates it)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
