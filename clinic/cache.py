"""Django's Redis cache, with one client kept per connection pool and an outage taken as a miss.

One client: Django's `RedisCacheClient.get_client` makes a new `redis.Redis` around the pool on every cache call,
and a client's construction (its response callbacks) costs about half the round trip of the session read it serves,
on every signed-in request (profiled in process). A `redis.Redis` is safe to share between threads (connections
come from the pool, which also replaces them in a forked process), so one per pool is kept.

An outage: Redis is a cache here (sessions are written through to the database, `cached_db`), so when it cannot be
reached a read is a miss and a write is skipped, instead of a 500 on every page. After a failure the process leaves
Redis alone for RETRY_AFTER seconds, so a Redis that times out costs one timeout, not one per cache call. A write
or delete skipped during the outage may leave a stale entry behind (a session signed out meanwhile, still cached),
so the first success after failures removes every key of this deployment's prefix: the cache starts cold.
"""

import functools
import logging
import threading
import time

from django.core.cache.backends import redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds without trying Redis after a failure


class _ClientKeepingRedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        if index not in self._clients:
            self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return self._clients[index]


class CacheUnavailable(RedisError):
    """Raised inside the backend while Redis is left alone after a failure; callers see a miss."""


def _tolerant(on_outage):
    """Run the cache call; if Redis cannot be reached, answer `on_outage(*args)` (a miss) instead of raising."""

    def decorate(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                self._outage_check()
                result = method(self, *args, **kwargs)
            except RedisError as exc:
                self._outage_record(exc)
                return on_outage(*args, **kwargs)
            self._outage_end()
            return result

        return call

    return decorate


def _missing_counter(key, *args, **kwargs):
    raise ValueError(f"Key {key!r} not found (the cache is unavailable).")


class RedisCache(redis.RedisCache):
    """`django.core.cache.backends.redis.RedisCache`, its one client kept (the health check names it alike), and an
    outage answered as a miss (see the module's docstring)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ClientKeepingRedisCacheClient
        self._down_until = 0.0
        self._stale = False  # a write or delete was skipped: entries may be out of date
        self._lock = threading.Lock()

    def _outage_check(self) -> None:
        if time.monotonic() < self._down_until:
            raise CacheUnavailable("Redis failed a moment ago; not tried again yet")

    def _outage_record(self, exc: Exception) -> None:
        with self._lock:
            if not isinstance(exc, CacheUnavailable):
                if not self._stale:
                    logger.warning("Cache unavailable, answering misses until Redis is back: %s", exc)
                self._down_until = time.monotonic() + RETRY_AFTER
            self._stale = True

    def _outage_end(self) -> None:
        if not self._stale:
            return
        with self._lock:
            if not self._stale:
                return
            self._stale = False
        try:
            client = self._cache.get_client(write=True)
            removed = 0
            for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
                removed += client.delete(key)
            logger.warning("Cache reachable again: %s entries from before the outage removed", removed)
        except RedisError as exc:
            self._outage_record(exc)

    add = _tolerant(lambda *a, **k: False)(redis.RedisCache.add)
    get = _tolerant(lambda key, default=None, *a, **k: default)(redis.RedisCache.get)
    set = _tolerant(lambda *a, **k: None)(redis.RedisCache.set)
    touch = _tolerant(lambda *a, **k: False)(redis.RedisCache.touch)
    delete = _tolerant(lambda *a, **k: False)(redis.RedisCache.delete)
    get_many = _tolerant(lambda *a, **k: {})(redis.RedisCache.get_many)
    has_key = _tolerant(lambda *a, **k: False)(redis.RedisCache.has_key)
    incr = _tolerant(_missing_counter)(redis.RedisCache.incr)
    set_many = _tolerant(lambda data, *a, **k: list(data))(redis.RedisCache.set_many)
    delete_many = _tolerant(lambda *a, **k: None)(redis.RedisCache.delete_many)
    clear = _tolerant(lambda *a, **k: False)(redis.RedisCache.clear)
