"""The Redis cache (sessions, rate limits) keeps one client instead of building one per call."""

import pytest
from django.core.cache import caches

from clinic.cache import RedisCache


@pytest.mark.redis
def test_the_cache_reuses_one_redis_client_for_every_read_and_write():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    client = cache._cache.get_client(write=True)

    cache.set("probe", {"value": 1}, 30)
    assert cache.get("probe") == {"value": 1}
    assert cache.delete("probe")

    assert cache._cache.get_client() is client  # one server: reads and writes share the one client
    assert cache._cache.get_client("another-key", write=True) is client
