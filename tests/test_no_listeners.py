"""No control surface on the network: a running crawl listens on no TCP or UDP port.

Scrapy starts a telnet console (127.0.0.1:6023-6073) and, since 2.19, a
remote-control HTTP server that runs posted Python code, unless told not to.
ops/crawl.py switches both off (spiders/run.py leaves them out); these tests hold it to that by watching a
real crawl process from the outside: its sockets (the inodes behind
/proc/<pid>/fd) looked up in /proc/<pid>/net/{tcp,tcp6,udp,udp6}. The crawl
writes to the archive on the backend under test (on PostgreSQL its client
connections are established sockets, never listening ones); the other tests
watch no archive.
"""
import inspect
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.config import Settings
from ops.crawl import scrapy_settings
from tests.conftest import start_site

ARTICLES = 1500  # about 20 s of crawling: long enough to watch it at work
POLL_SECONDS = 0.05
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"

pytestmark = pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")


def process_tree(pid: int) -> set[int]:
    """The process and all its descendants (a crawl may run in a child process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in (…) may hold spaces
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return tree


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def sockets_of(pids: set[int]) -> list[dict]:
    """Each internet socket the processes hold: protocol, local and remote port, state."""
    found = []
    for pid in pids:
        inodes = socket_inodes(pid)
        if not inodes:
            continue
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if int(fields[9]) in inodes:
                    found.append({"pid": pid, "proto": proto, "local": _port(fields[1]),
                                  "remote": _port(fields[2]), "state": fields[3]})
    return found


def listening(sockets: list[dict]) -> list[dict]:
    """TCP sockets in LISTEN; UDP sockets not connected to a peer (they receive from anyone)."""
    return [s for s in sockets if (s["proto"].startswith("tcp") and s["state"] == TCP_LISTEN)
            or (s["proto"].startswith("udp") and s["remote"] == 0)]


def test_scrapy_settings_switch_the_control_surfaces_off():
    from ops.crawl import CrawlPlan

    wants_plan = "plan" in inspect.signature(scrapy_settings).parameters
    s = scrapy_settings(Settings(), 1, *([CrawlPlan()] if wants_plan else []))
    assert s["TELNETCONSOLE_ENABLED"] is False
    assert s["REMOTE_CONTROL_ENABLED"] is False


def test_the_crawl_leaves_scrapys_unused_components_unloaded():
    """Ordering the crawl's component lists as Scrapy does at start imports none of the unused
    ones (a fresh interpreter: aiohttp comes only with the remote control, tldextract only with
    the cookie middleware) and keeps every other default and the crawl's own."""
    code = """
import sys
from scrapy.settings import Settings as ScrapySettings
from scrapy.utils.conf import build_component_list
from ops.config import Settings
from ops.crawl import CrawlPlan, scrapy_settings
s = ScrapySettings(scrapy_settings(Settings(), 1, CrawlPlan()))
names = set()
for group in ("EXTENSIONS", "DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES"):
    names |= set(build_component_list(s.get_component_priority_dict_with_base(group)))
print(" ".join(sorted(names)))
print(" ".join(m for m in ("aiohttp", "tldextract", "twisted.conch.telnet") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    loaded, imported = (done.stdout.splitlines() + [""])[:2]
    loaded = set(loaded.split())
    assert imported == ""
    assert {"scrapy.extensions.telnet.TelnetConsole", "scrapy.extensions.remote_control.RemoteControl",
            "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"}.isdisjoint(loaded)
    assert {"scrapy.downloadermiddlewares.retry.RetryMiddleware", "scrapy.extensions.corestats.CoreStats",
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware", "spiders.middlewares.RobotsTxt",
            "spiders.middlewares.RequestBudget", "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware"} <= loaded


def test_the_watcher_sees_a_listening_socket():
    """The control: a process that does listen is caught, on TCP and UDP alike."""
    code = ("import socket, time\n"
            "t = socket.socket(); t.bind(('127.0.0.1', 0)); t.listen()\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 0))\n"
            "print(t.getsockname()[1], u.getsockname()[1], flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        tcp_port, udp_port = map(int, proc.stdout.readline().split())
        found = {(s["proto"], s["local"]) for s in listening(sockets_of(process_tree(proc.pid)))}
        assert found == {("tcp", tcp_port), ("udp", udp_port)}
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_running_crawl_listens_on_no_port(tmp_path, archive_db):
    site = start_site(tmp_path / "site", ARTICLES, seed=4)
    state_dir = tmp_path / "state"  # where Scrapy's remote control would write its job file
    env = {**os.environ, "PORTAL_ARCHIVE_LOG_LEVEL": "WARNING", "XDG_STATE_HOME": str(state_dir)}
    log = open(tmp_path / "crawl.log", "w")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "crawl", "--base-url", site.url,
                                 "--db", archive_db],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        listeners, samples, crawling = [], 0, 0
        try:
            while proc.poll() is None:
                held = sockets_of(process_tree(proc.pid))
                listeners += listening(held)
                samples += 1
                if any(s["state"] == TCP_ESTABLISHED and s["remote"] == site.server.port for s in held):
                    crawling += 1
                time.sleep(POLL_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
    finally:
        log.close()
        site.server.stop()
    output = (tmp_path / "crawl.log").read_text()
    assert proc.returncode == 0, output[-3000:]
    assert "succeeded" in output
    assert crawling >= 20, f"watched the crawl at work in only {crawling} of {samples} looks"
    assert listeners == []
    assert not state_dir.exists() or not any(state_dir.rglob("*.json")), "no remote-control job file"


def test_the_watcher_ignores_other_processes_listeners():
    """A listener in this test process is not blamed on a child that has none."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        assert listening(sockets_of(process_tree(proc.pid))) == []
        assert server.getsockname()[1] in {s["local"] for s in listening(sockets_of({os.getpid()}))}
    finally:
        proc.kill()
        proc.wait()
        server.close()
