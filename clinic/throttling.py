"""DRF's rate throttles, open when the cache cannot be reached.

The counters live in the cache (Redis in a deployment). A throttle is a guard against floods, not a reason to
turn every API call into a 500 while Redis is away: the call goes through and the failure is logged.
"""

import logging

from rest_framework import throttling

logger = logging.getLogger(__name__)


class _OpenWhenCacheIsDown:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001  (any cache error: the request is served unthrottled)
            logger.warning("API throttle skipped: the cache is unreachable", exc_info=True)
            return True


class AnonRateThrottle(_OpenWhenCacheIsDown, throttling.AnonRateThrottle):
    """Anonymous callers, per address: the token endpoint and whatever answers 401."""


class UserRateThrottle(_OpenWhenCacheIsDown, throttling.UserRateThrottle):
    """Signed-in callers, per account (session or token)."""
