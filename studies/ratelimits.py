"""Rate limits of the rater API and of the page that starts sessions.

Fixed windows of ``WINDOW_SECONDS``: each request adds one to a counter in
Django's cache per session token and per client address, named by the window
it falls in; past the setting's limit the request is refused with 429 and a
``Retry-After`` of the seconds left in the window (docs/api.md). A limit of 0
turns that counter off. The counters need a cache every process of the site
shares, whose ``add`` and ``incr`` are atomic: the embedded default
(``evalsite.cache``) or Redis (``CACHE_URL``, docs/settings.md).
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

WINDOW_SECONDS = 60
# Counters outlive their window a little, so a clock a second off between
# processes does not restart one.
_KEY_SLACK_SECONDS = 5


def now() -> float:
    """The time the windows are counted in (a function, so tests can move it)."""
    return time.time()


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer's, or, behind the site's proxy, the one it saw.

    Only with ``BEHIND_TLS_PROXY`` is ``X-Forwarded-For`` read, and only its last
    hop: the address the site's own proxy appended. The hops before it are
    whatever the client sent, so counting by them would let a client pick its
    own counter.
    """
    if settings.BEHIND_TLS_PROXY:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if hops[-1]:
            return hops[-1]
    return str(request.META.get("REMOTE_ADDR", ""))


def _count(scope: str, who: str, window: int) -> int:
    """One more request of ``who`` in this window; the window's count so far."""
    digest = hashlib.blake2b(who.encode(), digest_size=16).hexdigest()
    key = f"ratelimit:{scope}:{digest}:{window}"
    # incr first: after a window's first request the counter exists.
    try:
        return int(cache.incr(key))
    except ValueError:
        if cache.add(key, 1, timeout=WINDOW_SECONDS + _KEY_SLACK_SECONDS):
            return 1
        return int(cache.incr(key))  # another process added it meanwhile


def over_limit(*, session_token: str | None, address: str) -> tuple[str, int, int] | None:
    """Count a request; if it is over a limit: (which, the limit, seconds until the next
    window), else None. The session's counter is checked first; a request refused
    for the session does not count for the address."""
    at = now()
    window = int(at // WINDOW_SECONDS)
    retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - at))
    counters = (
        ("session", session_token, settings.RATER_API_RATE_PER_SESSION),
        ("address", address, settings.RATER_API_RATE_PER_ADDRESS),
    )
    for scope, who, limit in counters:
        if limit <= 0 or not who:
            continue
        if _count(scope, who, window) > limit:
            return scope, limit, retry_after
    return None


def too_many_requests(
    request: HttpRequest, scope: str, limit: int, retry_after: int
) -> HttpResponse:
    """The API's JSON error, with the seconds to wait in ``Retry-After``."""
    response = JsonResponse(
        {
            "error": f"too many requests: at most {limit} a minute per {scope}; "
            f"retry in {retry_after} s"
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def rate_limited(
    token_of: Callable[..., str | None],
    refuse: Callable[[HttpRequest, str, int, int], HttpResponse] = too_many_requests,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Refuse a view's requests over the rate limits, before it reads anything.

    ``token_of(request, **kwargs)`` names the session the request is for (None
    when it has none yet); ``refuse(request, scope, limit, retry_after)`` answers
    a request over a limit (the API's 429 by default).
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = over_limit(
                session_token=token_of(request, **kwargs), address=client_address(request)
            )
            if refused is not None:
                return refuse(request, *refused)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
