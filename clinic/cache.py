"""Django's Redis cache, keeping one client per connection pool instead of building one per call.

Django's `RedisCacheClient.get_client` makes a new `redis.Redis` around the pool on every cache call, and a
client's construction (its response callbacks) costs about half the round trip of the session read it serves,
on every signed-in request (profiled in process). A `redis.Redis` is safe to share between threads
(connections come from the pool, which also replaces them in a forked process), so one per pool is kept.
"""

from django.core.cache.backends import redis


class _ClientKeepingRedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        if index not in self._clients:
            self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return self._clients[index]


class RedisCache(redis.RedisCache):
    """`django.core.cache.backends.redis.RedisCache`, its one client kept (the health check names it alike)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ClientKeepingRedisCacheClient
