"""A reliable shared frontier: what a worker takes from Redis stays its own until it is done with it.

scrapy-redis's queues pop a request and forget it: a worker that dies takes
the requests it had popped with it, and since they are already in the
dupefilter nobody else fetches them in that run. Here every request (and
every seed) a worker takes is moved, in one Lua step, from the shared queue
into the worker's own in-flight hash (`<run>:inflight:<worker>`, the entry
and the score to put it back with). It leaves that hash only when the worker
is done with it:

- a list page, a redirect, a request the budget refused: when its callback
  (or errback) has run to its end and every request it yielded is queued
  (or turned away as seen): Scrapy may still hold a yielded request for a
  moment after the callback has returned, and a kill in that moment must not
  lose the next page of a list;
- an article page: when the batch holding its item is committed to the
  archive (spiders/stages.py sends `ARCHIVED` with the batch);
- a request retried or redirected: when its successor is queued (the push
  that queues the successor removes the entry in the same step);
- a seed: when the request made from it is queued, or found already seen.

Each worker keeps a heartbeat key with a TTL (`<run>:workers:<worker>`, kept
by ops/distributed.py). A worker whose heartbeat has expired is dead: the
surviving workers (and the coordinator) move its in-flight entries back to
the queue, straight into it, past the dupefilter, which would otherwise
hold them back as seen. The run's `owners` set names every worker that ever
owned something, so a dead worker's hash is found without scanning keys.

The dupefilter only looks (`request_seen` asks SISMEMBER); the push marks
the fingerprint and queues the request in one Lua step, so no kill between
"seen" and "queued" can lose a request.

Still at least once: a worker that dies after its batch was committed but
before its entries were removed has them fetched again by another worker;
so does a worker wrongly taken for dead (its heartbeat late by more than the
TTL). The archive absorbs both: a page archived again with the same content
writes no version.
"""
from __future__ import annotations

from collections.abc import Iterable

from scrapy.utils.request import fingerprint as scrapy_fingerprint
from scrapy.utils.request import request_from_dict
from scrapy_redis.queue import Base

# The request's meta key holding the in-flight entry it was taken as (popped with it, pushed never).
TOKEN = "frontier_entry"
# The meta key of a request a callback yielded: the entry of the request whose callback yielded it,
# which is not done before this request is queued.
PARENT = "frontier_parent"
# The in-flight value that marks an entry as a seed (a request's entry keeps its queue score).
SEED = b"seed"

_POP = """
local found = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #found == 0 then return false end
redis.call('ZREM', KEYS[1], found[1])
redis.call('HSET', KEYS[2], found[1], found[2])
redis.call('SADD', KEYS[3], ARGV[1])
return found[1]
"""
_CLAIM_SEEDS = """
local seeds = redis.call('LPOP', KEYS[1], ARGV[1])
if not seeds then return {} end
for _, seed in ipairs(seeds) do redis.call('HSET', KEYS[2], seed, ARGV[3]) end
redis.call('SADD', KEYS[3], ARGV[2])
return seeds
"""
# ARGV: entry, score, fingerprint ('' when the request is not filtered), token of the request it
# succeeds ('' if none).
_PUSH = """
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[3], ARGV[4]) end
if ARGV[3] ~= '' and redis.call('SADD', KEYS[2], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""
# KEYS: in-flight hash, queue, seeds, heartbeat ('' to skip the check), owners. ARGV: worker, seed mark.
_RECLAIM = """
if KEYS[4] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if entries[i + 1] == ARGV[2] then redis.call('RPUSH', KEYS[3], entries[i])
  else redis.call('ZADD', KEYS[2], entries[i + 1], entries[i]) end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[5], ARGV[1])
return #entries / 2
"""


def fingerprint(request) -> str:
    """Article requests are the same request whatever URL form they use: one fingerprint per aid."""
    aid = request.meta.get("aid")
    if aid is not None:
        return f"aid:{aid}"
    return scrapy_fingerprint(request).hex()


class Frontier:
    """One run's frontier in Redis, as seen by one worker (or, without one, by the coordinator)."""

    def __init__(self, client, base: str, worker: str | None = None):
        self.client = client
        self.base = base
        self.worker = worker
        self.queue = f"{base}:requests"
        self.seeds = f"{base}:seeds"
        self.dupefilter = f"{base}:dupefilter"
        self.owners = f"{base}:owners"
        self.inflight = self.inflight_of(worker) if worker else None
        self._pop = client.register_script(_POP)
        self._claim = client.register_script(_CLAIM_SEEDS)
        self._push = client.register_script(_PUSH)
        self._reclaim = client.register_script(_RECLAIM)

    def inflight_of(self, worker: str) -> str:
        return f"{self.base}:inflight:{worker}"

    def heartbeat_of(self, worker: str) -> str:
        return f"{self.base}:workers:{worker}"

    # --- a worker's side --------------------------------------------------------
    def pop(self) -> bytes | None:
        return self._pop(keys=[self.queue, self.inflight, self.owners], args=[self.worker])

    def claim_seeds(self, count: int) -> list[bytes]:
        return self._claim(keys=[self.seeds, self.inflight, self.owners], args=[count, self.worker, SEED])

    def push(self, entry: bytes, score: float, fp: str | None, succeeds: bytes | None = None) -> bool:
        return bool(self._push(keys=[self.queue, self.dupefilter, self.inflight],
                               args=[entry, score, fp or "", succeeds or ""]))

    def done(self, tokens: Iterable[bytes]) -> None:
        tokens = [t for t in tokens if t]
        if tokens:
            self.client.hdel(self.inflight, *tokens)

    def seen(self, fp: str) -> bool:
        return bool(self.client.sismember(self.dupefilter, fp))

    # --- everyone's -------------------------------------------------------------
    def reclaim(self) -> int:
        """Put back what dead workers owned: entries of workers whose heartbeat has expired."""
        moved = 0
        for worker in self.client.smembers(self.owners):
            worker = worker.decode()
            if worker != self.worker:
                moved += max(0, self._give_back(worker, check_heartbeat=True))
        return moved

    def release(self) -> int:
        """This worker is leaving: whatever it still owns goes back to the queue for the others."""
        return max(0, self._give_back(self.worker, check_heartbeat=False))

    def _give_back(self, worker: str, check_heartbeat: bool) -> int:
        heartbeat = self.heartbeat_of(worker) if check_heartbeat else ""
        return self._reclaim(keys=[self.inflight_of(worker), self.queue, self.seeds, heartbeat, self.owners],
                             args=[worker, SEED])

    def pending(self) -> int:
        """Seeds, queued requests and requests some worker owns: the run's work not yet done."""
        owners = [w.decode() for w in self.client.smembers(self.owners)]
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(self.seeds)
        pipe.zcard(self.queue)
        for worker in owners:
            pipe.hlen(self.inflight_of(worker))
        return sum(pipe.execute())


class ReliableQueue(Base):
    """scrapy-redis's queue interface (SCHEDULER_QUEUE_CLASS) over a Frontier: a priority queue
    whose pop hands the request to this worker's in-flight hash instead of forgetting it.

    The worker and the run come from the crawler's settings (PORTAL_ARCHIVE_FRONTIER: the run's
    key prefix, PORTAL_ARCHIVE_WORKER: this worker's name). A spider with an `ownership`
    (spiders/distributed.py) is told when a request one of its callbacks yielded is queued.
    """

    def __init__(self, server, spider, key, serializer=None):
        super().__init__(server, spider, key, serializer)
        settings = spider.crawler.settings
        self.frontier = Frontier(server, settings["PORTAL_ARCHIVE_FRONTIER"], settings["PORTAL_ARCHIVE_WORKER"])
        if self.key != self.frontier.queue:
            raise ValueError(f"SCHEDULER_QUEUE_KEY {self.key!r} is not the run's queue {self.frontier.queue!r}")

    def __len__(self):
        return self.server.zcard(self.key)

    def push(self, request):
        # A request that carries an entry is a successor (a retry, a redirect) or was made from a
        # seed: queuing it is what the worker owed for that entry.
        succeeds = request.meta.pop(TOKEN, None)
        parent = request.meta.pop(PARENT, None)
        entry = self.serializer.dumps(request.to_dict(spider=self.spider))
        fp = None if request.dont_filter else fingerprint(request)
        self.frontier.push(entry, -request.priority, fp, succeeds)
        if parent is not None:
            self.spider.ownership.let_go(parent)

    def pop(self, timeout=0):
        entry = self.frontier.pop()
        if entry is None:
            return None
        request = request_from_dict(self.serializer.loads(entry), spider=self.spider)
        request.meta[TOKEN] = entry
        return request

    def clear(self):
        # A worker never clears the shared frontier (SCHEDULER_PERSIST); the coordinator deletes it.
        pass


class Ownership:
    """Which of this worker's in-flight entries are still owed something, and what.

    An entry is held by its callback while it runs, by each request it
    yielded until that request is queued, and by each item it yielded until
    the archive is done with it: an article page's entry is done when its item
    is committed, not when its callback returns, so a worker that dies with a
    batch not yet written has not told the run those pages were done. The
    last to let go removes the entry. Holds are counted as outputs are yielded,
    not when the callback ends, since a request may be queued and an item
    committed (a batch it filled, written in the crawl's own process) before
    the callback resumes.
    """

    def __init__(self, frontier: Frontier):
        self.frontier = frontier
        self.waiting: dict[int, tuple[object, bytes]] = {}  # id(item) -> (item, its entry)
        self.holds: dict[bytes, int] = {}  # entry -> what still holds it

    def taken(self, token: bytes | None) -> None:
        """A callback starts on the request behind this entry."""
        if token is not None:
            self.holds[token] = self.holds.get(token, 0) + 1

    def carries_item(self, token: bytes | None, item) -> None:
        if token is not None:
            self.waiting[id(item)] = (item, token)
            self.holds[token] += 1

    def carries_request(self, token: bytes | None, request) -> None:
        if token is not None:
            request.meta[PARENT] = token
            self.holds[token] += 1

    def let_go(self, token: bytes | None) -> None:
        """The callback ran to its end, or a request it yielded is queued (or was seen already)."""
        if token is not None:
            self.frontier.done(self._let_go([token]))

    def settled(self, items) -> None:
        """The archive is done with these items (committed, or not needing to be)."""
        found = (self.waiting.pop(id(item), None) for item in items)
        self.frontier.done(self._let_go([f[1] for f in found if f is not None]))

    def _let_go(self, tokens: list[bytes]) -> list[bytes]:
        finished = []
        for token in tokens:
            if token not in self.holds:  # nothing here holds it: nothing to let go of
                continue
            self.holds[token] -= 1
            if not self.holds[token]:
                del self.holds[token]
                finished.append(token)
        return finished
