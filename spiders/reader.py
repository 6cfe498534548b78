"""Reading article pages beside the crawl: decoding, extraction and cleaning in a reader process.

Scrapy runs in one thread, and reading an article page (decoding it, parsing
it, running the profile's selectors) costs about as much CPU as Scrapy's own
work for the fetch, and cleaning it (pipeline.clean) a third as much again.
Done in the crawl's process all of it queues behind one core; handed to a
reader process it runs on two (bench: README "Performance"). The spider
sends the reader its pages, the cleaning stage its raw fields.

The reader is `python -m spiders.reader`, talking over its stdin and stdout:
length-prefixed pickles, one request per page, answered in order. The crawl's
side never blocks: the pipes are asyncio transports on the reactor's own loop,
so no thread competes with Scrapy for the interpreter. The reader only gets
bytes and returns plain values (the page's encoding, its raw fields, what is
wrong with it), so what the spider does with them is the same whether the
page was read here or there. A reader that dies (killed, out of memory, a
crash in a C library) is replaced and the pages it held are read again by its
successor; a page that takes the successor down too is given up as a failed
fetch, which the next run fetches again.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import os
import pickle
import signal
import struct
import subprocess
import sys

from spiders.profile import load_profile
from spiders.reading import read_bytes

PR_SET_PDEATHSIG = 1
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20  # room for a few dozen pages in flight without the writer waiting
HEADER = struct.Struct("!Q")
Reading = tuple[str | None, dict, str | None]  # (encoding, raw fields, problem)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), so no reader or
    crawl child outlives a killed crawl; elsewhere the abandoned-run check catches orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died while this process was starting
        os._exit(1)


def read_page(profile_name: str, raw: bytes, content_type: str | None, url: str, method: str) -> Reading:
    """spiders.reading.read_bytes by profile name: what the spider sends a reader process."""
    return read_bytes(load_profile(profile_name), raw, content_type, url, method)


class ReadError(RuntimeError):
    """Reading or cleaning the page raised (a bug, or a page no rule foresaw): the page goes to
    quarantine with this as its reason."""


class ReaderGone(RuntimeError):
    """The page was fetched, but every reader process given it died before reading it."""


class _ReaderDied(Exception):
    pass


class _Reader:
    """One reader process and the pages it has been given, answered in order."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "spiders.reader", str(os.getpid())],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for pipe in (self.process.stdin, self.process.stdout):
            _widen(pipe.fileno())
        self.pending: collections.deque[asyncio.Future] = collections.deque()
        self.dead = False
        self._transport = None
        self._connecting = None

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._stream = asyncio.StreamReader(limit=2 ** 31, loop=loop)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self._stream, loop=loop),
                                     self.process.stdout)
        self._transport, _ = await loop.connect_write_pipe(asyncio.Protocol, self.process.stdin)
        self._receiving = loop.create_task(self._receive())

    async def request(self, payload: bytes) -> tuple[str, object]:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        await self._connecting
        if self.dead or self._transport.is_closing():
            raise _ReaderDied()
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
        finally:  # the reader is gone: what it held is read again elsewhere
            self.dead = True
            while self.pending:
                future = self.pending.popleft()
                if not future.done():
                    future.set_exception(_ReaderDied())

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()  # EOF: the reader leaves
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


class PageReader:
    """Runs the crawl's page work (reading, cleaning) in `processes` reader processes, or in the
    caller's process if 0."""

    def __init__(self, processes: int):
        self.restarts = 0
        self.on_restart = None  # called after a dead reader was replaced
        # Started now, so their imports overlap the crawl's start-up.
        self.readers = [_Reader() for _ in range(processes)]

    async def run(self, function, *args):
        """function(*args) in a reader process (or here, without one). The function must be a
        module-level one (it travels by name) of plain values in and out."""
        if not self.readers:
            try:
                return function(*args)
            except Exception as exc:
                raise ReadError(f"{type(exc).__name__}: {exc}") from exc
        payload = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        for attempt in (1, 2):
            reader = min(self.readers, key=lambda r: len(r.pending))
            try:
                status, value = await reader.request(payload)
            except _ReaderDied:
                self._replace(reader)
                continue
            if status == "error":
                raise ReadError(value)
            return value
        raise ReaderGone(f"the reader process died twice running {function.__name__}")

    def _replace(self, dead: _Reader) -> None:
        if dead in self.readers:  # the first of the pages it held to notice
            self.readers[self.readers.index(dead)] = _Reader()
            dead.close()
            self.restarts += 1
            if self.on_restart:
                self.on_restart()

    def close(self) -> None:
        readers, self.readers = self.readers, []
        for reader in readers:
            reader.close()


def default_processes() -> int:
    """One reader process when there is a second core to run it on, else read in-process."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


def serve(parent_pid: int) -> None:
    """The reader process: requests on stdin, answers on stdout, until stdin closes."""
    die_with_parent(parent_pid)
    # A Ctrl-C in the terminal reaches the whole process group: the crawl decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() must not corrupt the answers
    while True:
        header = requests.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        size, = HEADER.unpack(header)
        function, args = pickle.loads(requests.read(size))
        try:
            answer = ("ok", function(*args))
        except Exception as exc:  # reported with the page, which is failed with the reason
            answer = ("error", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        answers.write(HEADER.pack(len(data)) + data)
        answers.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
