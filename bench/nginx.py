"""Debian's nginx serving a static replica on 127.0.0.1, started and stopped by the bench.

Everything nginx writes (pid file, error log, temp dirs) lives under its own
temporary prefix; it never reads /etc/nginx nor writes /var. It runs in the
foreground (`daemon off`) as our child, so the bench can stop it by its pid.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from replica.static import CONF_FILE

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

# One worker: the crawler under test is one Python process on a 2-core
# machine, so a second nginx worker would only compete with it for the other core.
CONF = """\
{user}worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        root {root};
        include {root}/{locations};
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NginxServer:
    """`with NginxServer(site_dir) as server: ... server.url` — the static site from build_static."""

    def __init__(self, root: str | os.PathLike, binary: str | None = None):
        self.root = Path(root).resolve()
        if not (self.root / CONF_FILE).exists():
            raise FileNotFoundError(f"{self.root} has no {CONF_FILE}: build it with replica.build_static")
        self.binary = binary or nginx_binary()
        if self.binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install -y nginx)")
        self.process: subprocess.Popen | None = None
        self.prefix: tempfile.TemporaryDirectory | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> "NginxServer":
        for attempt in range(3):  # a free port can be taken between the probe and nginx's bind
            try:
                self._start_once()
                return self
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
        return self

    def _start_once(self) -> None:
        self.prefix = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        prefix = Path(self.prefix.name)
        (prefix / "logs").mkdir()
        (prefix / "tmp").mkdir()
        self.port = free_port()
        # As root the master hands requests to workers of `user`; make that us,
        # so they can read a site under a 0700 temporary directory.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        conf.write_text(CONF.format(user=user, prefix=prefix, port=self.port, root=self.root,
                                    locations=CONF_FILE), "utf-8")
        # -e: the log for messages before the config is read (else /var/log/nginx/error.log).
        with open(prefix / "logs" / "stderr.log", "wb") as stderr:
            self.process = subprocess.Popen(
                [self.binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs" / "error.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited {self.process.returncode}: {self._errors()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on port {self.port} within {START_TIMEOUT} s: {self._errors()}")

    def _errors(self) -> str:
        if self.prefix is None:
            return ""
        logs = Path(self.prefix.name) / "logs"
        return "".join(p.read_text("utf-8", "replace") for p in (logs / "stderr.log", logs / "error.log")
                       if p.exists()).strip()[-2000:]

    def error_log(self) -> str:
        return self._errors()

    def cpu_seconds(self) -> float:
        """user+sys of the master and its workers so far (from /proc), for the server's share of a run."""
        if not self.process or self.process.poll() is not None:
            return 0.0
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: the master stops its workers
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only nginx's processes
                process.wait(STOP_TIMEOUT)
        if self.prefix is not None:
            self.prefix.cleanup()
            self.prefix = None

    def __enter__(self) -> "NginxServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]
