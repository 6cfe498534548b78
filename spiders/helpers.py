"""Helper processes beside the crawl: a second core for reading pages and writing the archive.

Scrapy runs in one thread. Work that needs no part of it (reading an article
page, writing a batch to the archive) is handed to a helper process, a
`python -m spiders.helpers` child talking over its stdin and stdout:
length-prefixed pickles, one request per call, answered in order. A request
names a module-level function (or its "module:name", so that the caller need
not import the module) and its arguments (plain values in and out). While the
crawl runs its side never blocks: the pipes are asyncio transports on the
reactor's own loop, so no thread competes with Scrapy for the interpreter.
Before the crawl starts and after it ends no loop runs, and calls block
(`send_now`, `answer_now`): the archive writer opens and closes the run
there (ops/crawl.py).
A helper dies with its parent (the kernel kills it), so a killed crawl leaves
none behind; what a helper that dies was holding is its caller's to decide
(spiders/reader.py reads the pages again elsewhere; pipeline/archive/writer.py
fails the run, and the next run fetches the lost batch again).

Why not the standard library's `concurrent.futures.ProcessPoolExecutor` or
`multiprocessing.Pool`: both were measured in the crawl's place (README,
"Performance", step 4) and lost most of the second core's gain, because their
feeder and result threads contend with Scrapy's reactor thread for the
interpreter on every page; bridging their futures into the reactor costs a
thread hop per call as well. What is here is the part of them the crawl
needs (ordered calls over a pipe, no threads) and nothing more.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import gc
import importlib
import os
import pickle
import signal
import struct
import subprocess
import sys

PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20  # room for a few dozen pages in flight without the sender waiting
HEADER = struct.Struct("!Q")


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so no helper
    outlives a killed crawl; elsewhere the abandoned-run check catches orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died while this process was starting
        os._exit(1)


def tune_gc() -> None:
    """Make Python's cyclic GC cheap for the work that follows (the crawl: call right before it
    starts; a helper process: after its first request has imported what it runs).

    Everything imported and built at start-up is moved out of the collector's
    sight (`gc.freeze`), and young collections wait for 50,000 new objects
    instead of 700: a crawl allocates millions of short-lived, acyclic objects,
    and the default thresholds spent ≈0.8 ms of CPU per page re-scanning the
    same long-lived objects (bench --profile). Cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class HelperDied(Exception):
    """The helper process ended before answering."""


def resolve(function):
    """A function, or the one a "module:name" string names (importing its module)."""
    if isinstance(function, str):
        module, _, name = function.partition(":")
        return getattr(importlib.import_module(module), name)
    return function


class HelperProcess:
    """One helper process and the requests it has been given, answered in order."""

    def __init__(self, role: str):
        """`role` only names the process for people (and tests) looking at its command line."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "spiders.helpers", str(os.getpid()), role],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for pipe in (self.process.stdin, self.process.stdout):
            _widen(pipe.fileno())
        # Blocking ends of the same pipes, for calls while no event loop runs (send_now). They stay
        # open when the loop's transports close theirs (detach), so the process outlives the loop.
        self._blocking = (os.fdopen(os.dup(self.process.stdin.fileno()), "wb", buffering=0),
                          os.fdopen(os.dup(self.process.stdout.fileno()), "rb", buffering=0))
        self.pending: collections.deque[asyncio.Future] = collections.deque()
        self.dead = False
        self._detached = False  # the event loop gave the pipes back (detach)
        self._transport = None  # the write side
        self._read_transport = None
        self._connecting = None

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._detached = False
        self._stream = asyncio.StreamReader(limit=2 ** 31, loop=loop)
        self._read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self._stream, loop=loop), self.process.stdout)
        self._transport, _ = await loop.connect_write_pipe(asyncio.Protocol, self.process.stdin)
        self._receiving = loop.create_task(self._receive())

    async def call(self, function, *args) -> tuple[str, object]:
        """("ok", function(*args)) from the helper, or ("error", what it raised)."""
        return await self.request(pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL))

    def send_now(self, function, *args) -> None:
        """Ask for function(*args) without an event loop; answer_now() waits for the answer. The
        caller goes on meanwhile (the crawl imports Scrapy while the writer opens the run)."""
        if self.pending or self._transport is not None and not self._transport.is_closing():
            raise RuntimeError("send_now while the event loop owns the pipes")
        payload = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        for pipe in self._blocking:  # the loop's transports made the pipes (shared with these) non-blocking
            os.set_blocking(pipe.fileno(), True)
        try:
            self._blocking[0].write(HEADER.pack(len(payload)) + payload)
        except OSError:
            self.dead = True
            raise HelperDied() from None

    def answer_now(self) -> tuple[str, object]:
        """The answer to the last send_now, waited for."""
        def exactly(size: int) -> bytes:
            data = b""
            while len(data) < size:
                chunk = self._blocking[1].read(size - len(data))
                if not chunk:
                    self.dead = True
                    raise HelperDied()
                data += chunk
            return data

        size, = HEADER.unpack(exactly(HEADER.size))
        return pickle.loads(exactly(size))

    def call_now(self, function, *args) -> tuple[str, object]:
        self.send_now(function, *args)
        return self.answer_now()

    def detach(self) -> None:
        """Give the pipes back from the event loop (before it closes), keeping the process: calls
        after the crawl are made with send_now and answer_now."""
        self._detached = True
        for transport, stop in ((self._transport, "abort"), (self._read_transport, "close")):
            try:
                if transport is not None and not transport.is_closing():
                    getattr(transport, stop)()
            except RuntimeError:  # the crawl's loop is closed already: nothing watches the pipes
                pass

    async def request(self, payload: bytes) -> tuple[str, object]:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        await self._connecting
        if self.dead or self._transport.is_closing():
            # The write side can learn of the process's end before the read side has seen EOF:
            # what it still holds must not wait for an EOF that close() may now never deliver.
            self._gone()
            raise HelperDied()
        answer = asyncio.get_running_loop().create_future()
        self.pending.append(answer)
        self._transport.write(HEADER.pack(len(payload)) + payload)
        return await answer

    async def _receive(self) -> None:
        try:
            while True:
                size, = HEADER.unpack(await self._stream.readexactly(HEADER.size))
                answer = pickle.loads(await self._stream.readexactly(size))
                future = self.pending.popleft()
                if not future.done():
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            if not self._detached:  # else the pipes were closed under the loop on purpose
                self._gone()

    def _gone(self) -> None:
        """The process is gone, or given up: its caller decides what becomes of what it held."""
        self.dead = True
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(HelperDied())

    def close(self) -> None:
        self._gone()
        # The transports first: they stop watching the pipes at once. A pipe closed under a
        # transport that still watches it frees its descriptor number for reuse while the loop
        # waits on it (an EOF that never comes; another file's events taken for this one's).
        self.detach()
        for pipe in (self.process.stdin, self.process.stdout, *self._blocking):
            try:
                pipe.close()  # EOF: the process leaves
            except OSError:
                pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError):  # not Linux, or over /proc/sys/fs/pipe-max-size: the default will do
        pass


def serve(parent_pid: int) -> None:
    """The helper process: requests on stdin, answers on stdout, until stdin closes."""
    die_with_parent(parent_pid)
    # A Ctrl-C in the terminal reaches the whole process group: the crawl decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() must not corrupt the answers
    tuned = False
    while True:
        header = requests.read(HEADER.size)
        if len(header) < HEADER.size:
            # Nothing more will be asked, and what was asked is answered (and committed: a writer's
            # batches and its run are closed by then). Leave without the interpreter's teardown
            # of every module, which the crawl waited for (0.1 s of its wall time, measured).
            answers.close()
            os._exit(0)
        size, = HEADER.unpack(header)
        function, args = pickle.loads(requests.read(size))
        try:
            answer = ("ok", resolve(function)(*args))
        except Exception as exc:  # the caller's to report, with the reason
            answer = ("error", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        answers.write(HEADER.pack(len(data)) + data)
        answers.flush()
        if not tuned:  # the archive writer spent ~10% of its CPU in the collector (bench --profile)
            tune_gc()
            tuned = True


if __name__ == "__main__":
    serve(int(sys.argv[1]))


def default_processes(paced: bool) -> int:
    """One helper process (a reader, a writer) when the crawl can outrun one core and there is a
    second core to run it on, else none: the work stays in the crawl's process.

    A paced crawl (a download delay or AutoThrottle, i.e. the live portal's defaults) asks a page
    a second or so and spends a few milliseconds of CPU on it: a helper would buy nothing and cost
    its start-up (about half a second of CPU each, every daemon run) and its memory."""
    return 1 if not paced and (os.cpu_count() or 1) >= 2 else 0
