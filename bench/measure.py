"""One measured subprocess: wall time, CPU (user+sys) and peak RSS, with a hard timeout.

The figures come from wait4(2) on the child: its own usage plus that of any
descendants it waited for, which is what getrusage(RUSAGE_CHILDREN) deltas
would give for CPU, but with the peak RSS of this child alone (a
RUSAGE_CHILDREN maximum would be the largest of every child so far).
A crawl that reads pages in a reader process is two processes, and wait4's
peak is the larger of the two, not their sum; so the process tree's resident
memory is also sampled (every 50 ms, /proc) and its largest total reported
as the run's peak RSS.

Linux carries the parent's resident size into a child's ru_maxrss (exec
records the high-water mark of the memory image it replaces), so a bench
process that holds a replica and exports in memory would inflate every
child's peak RSS. The measured runs are therefore started by a Spawner: a
small process of its own, started first, that runs each command and
reports its figures back (python -m bench.measure --serve).
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


class BenchFailure(RuntimeError):
    """A run that failed, timed out, or left an archive that differs from the replica."""


@dataclass
class Measured:
    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int
    stdout: str
    stderr_tail: str
    timed_out: bool = False
    tree_rss_kib: int = 0  # the largest sampled sum over the process and its descendants

    @property
    def peak_rss_kib(self) -> int:
        return max(self.max_rss_kib, self.tree_rss_kib)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_measured(argv: list[str], *, timeout: float, env: dict | None = None, cwd: str | os.PathLike | None = None,
                 log: Path | None = None) -> Measured:
    """Run `argv` to its end (or kill it after `timeout` s); stdout is kept, stderr goes to `log`."""
    log = log or Path(os.devnull)
    with open(log, "wb") as err, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                   start_new_session=True)  # its own group: a timeout kills it and its children
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    return
                time.sleep(5)

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        sampler = TreeRss(process.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): the run must not outlive the bench
            _kill_group(process.pid)
            process.wait()
            raise
        finally:
            timer.cancel()
            sampler.stop()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    stderr_tail = ""
    if str(log) != os.devnull and log.exists():
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 4000))
            stderr_tail = fh.read().decode("utf-8", "replace")
    return Measured(argv=list(argv), returncode=process.returncode, wall_s=wall, user_s=usage.ru_utime,
                    sys_s=usage.ru_stime, max_rss_kib=usage.ru_maxrss, stdout=stdout, stderr_tail=stderr_tail,
                    timed_out=timed_out.is_set(), tree_rss_kib=sampler.peak_kib)


class TreeRss(threading.Thread):
    """Samples the resident memory of a process and all its descendants; keeps the largest total."""

    INTERVAL = 0.05
    PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.INTERVAL):
            self.peak_kib = max(self.peak_kib, sum(self._rss_kib(p) for p in self._tree(self.pid)))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def _tree(self, pid: int) -> list[int]:
        found = [pid]
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    found += self._tree(int(child))
        except OSError:  # gone meanwhile
            pass
        return found

    def _rss_kib(self, pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.PAGE_KIB
        except (OSError, IndexError, ValueError):
            return 0


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_checked(argv: list[str], *, timeout: float, env: dict | None = None, what: str,
                log: Path | None = None, spawner: "Spawner | None" = None) -> Measured:
    """run_measured (through `spawner` if given), raising BenchFailure unless the command exits 0 in time."""
    run = spawner.run if spawner else run_measured
    result = run(argv, timeout=timeout, env=env, log=log)
    if result.timed_out:
        raise BenchFailure(f"{what} did not finish within {timeout:.0f} s and was killed")
    if result.returncode != 0:
        raise BenchFailure(f"{what} exited {result.returncode}\nstdout: {result.stdout[-2000:]}\n"
                           f"stderr: {result.stderr_tail[-2000:]}")
    return result


class Spawner:
    """Runs measured commands from a lean process (see the module's docstring)."""

    def __init__(self, env: dict | None = None):
        self.process = subprocess.Popen([sys.executable, "-m", "bench.measure", "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        self.busy = False

    def run(self, argv: list[str], *, timeout: float, env: dict | None = None,
            log: Path | None = None) -> Measured:
        request = {"argv": list(argv), "timeout": timeout, "env": env, "log": str(log) if log else None}
        self.busy = True
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()  # the spawner enforces the timeout
        self.busy = False
        if not answer:
            raise BenchFailure(f"the spawner exited ({self.process.poll()}) while running {argv[:4]}")
        data = json.loads(answer)
        if "error" in data:
            raise BenchFailure(f"the spawner could not run {argv[:4]}: {data['error']}")
        return Measured(**data)

    def close(self) -> None:
        if self.busy and self.process.poll() is None:
            self.process.terminate()  # interrupted mid-run: the spawner kills the run, then exits
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process.stdout.close()

    def __enter__(self) -> "Spawner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve() -> None:
    """The spawner's loop: one JSON request per line in, one Measured per line out."""
    signal.signal(signal.SIGTERM, _exit)  # unwinds through run_measured, which kills the run
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = run_measured(request["argv"], timeout=request["timeout"], env=request["env"],
                                  log=Path(request["log"]) if request["log"] else None)
            answer = dataclasses.asdict(result)
        except Exception as exc:  # reported to the bench, which fails the run
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _exit(signum, _frame) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
