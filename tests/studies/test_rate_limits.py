"""Rate limits of the rater API and the entry page: 429 with Retry-After, then allowed again."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from studies import ratelimits
from studies.models import RaterSession, Study, Vote

# A time 10 s into a window of the rate limits.
WINDOW_START = 1_000 * ratelimits.WINDOW_SECONDS
T0 = WINDOW_START + 10


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(ratelimits, "now", clock)
    return clock


def _start(client: Client, slug: str, participant: str, **meta: Any) -> Any:
    return client.post(
        f"/api/v1/studies/{slug}/sessions",
        data=json.dumps({"participant": participant}),
        content_type="application/json",
        **meta,
    )


def _next(client: Client, token: str, **meta: Any) -> Any:
    return client.get(
        f"/api/v1/sessions/{token}/next", headers={"Authorization": f"Bearer {token}"}, **meta
    )


def _vote(client: Client, token: str, trial: str, vote_id: str) -> Any:
    body = {"choice": "left", "client_vote_id": vote_id, "response_ms": 1500}
    return client.post(
        f"/api/v1/trials/{trial}/vote",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_session_over_its_limit_is_refused_until_the_next_window(
    client: Client, study: Study, settings: Any, clock: Clock
) -> None:
    settings.RATER_API_RATE_PER_SESSION = 3
    settings.RATER_API_RATE_PER_ADDRESS = 0
    token = _start(client, study.slug, "p1").json()["session"]
    trial = _next(client, token).json()["trial"]
    assert _next(client, token).status_code == 200
    vote_id = str(uuid.uuid4())
    assert _vote(client, token, trial, vote_id).status_code == 201  # the third request
    refused = _next(client, token)
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(ratelimits.WINDOW_SECONDS - 10)
    assert "at most 3 a minute per session" in refused.json()["error"]
    # Another session is counted apart.
    other = _start(client, study.slug, "p2").json()["session"]
    assert _next(client, other).status_code == 200
    clock.at = WINDOW_START + ratelimits.WINDOW_SECONDS  # the next window
    assert _next(client, token).status_code == 200


def test_a_refused_vote_is_not_stored_and_its_retry_is(
    client: Client, study: Study, settings: Any, clock: Clock
) -> None:
    settings.RATER_API_RATE_PER_SESSION = 2
    settings.RATER_API_RATE_PER_ADDRESS = 0
    token = _start(client, study.slug, "p1").json()["session"]
    trial = _next(client, token).json()["trial"]
    vote_id = str(uuid.uuid4())
    assert _next(client, token).status_code == 200
    refused = _vote(client, token, trial, vote_id)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == ratelimits.WINDOW_SECONDS - 10
    assert not Vote.objects.exists()
    clock.at += int(refused["Retry-After"])
    assert _vote(client, token, trial, vote_id).status_code == 201
    assert Vote.objects.get().client_vote_id == uuid.UUID(vote_id)


def test_an_address_over_its_limit_is_refused_whatever_the_session(
    client: Client, study: Study, settings: Any, clock: Clock
) -> None:
    settings.RATER_API_RATE_PER_SESSION = 0
    settings.RATER_API_RATE_PER_ADDRESS = 3
    tokens = [_start(client, study.slug, f"p{i}").json()["session"] for i in range(2)]
    assert _next(client, tokens[0]).status_code == 200
    refused = _next(client, tokens[1])
    assert refused.status_code == 429
    assert "per address" in refused.json()["error"]
    assert _start(client, study.slug, "p9").status_code == 429
    assert RaterSession.objects.count() == 2
    # Another address is counted apart; the next window starts again.
    assert _next(client, tokens[1], REMOTE_ADDR="192.0.2.7").status_code == 200
    clock.at += ratelimits.WINDOW_SECONDS
    assert _next(client, tokens[1]).status_code == 200


def test_x_forwarded_for_counts_only_behind_the_proxy_and_only_its_last_hop(
    client: Client, study: Study, settings: Any, clock: Clock
) -> None:
    settings.RATER_API_RATE_PER_SESSION = 0
    settings.RATER_API_RATE_PER_ADDRESS = 2
    token = _start(client, study.slug, "p1", HTTP_X_FORWARDED_FOR="198.51.100.1").json()["session"]
    # Without a trusted proxy the header is ignored: the peer's address counts.
    assert _next(client, token, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200
    assert _next(client, token, HTTP_X_FORWARDED_FOR="198.51.100.3").status_code == 429

    settings.BEHIND_TLS_PROXY = True
    for spoofed in ("203.0.113.1", "203.0.113.2"):
        forwarded = f"{spoofed}, 198.51.100.50"  # what the client wrote, what the proxy saw
        assert _next(client, token, HTTP_X_FORWARDED_FOR=forwarded).status_code == 200
    assert _next(client, token, HTTP_X_FORWARDED_FOR="203.0.113.3, 198.51.100.50").status_code == (
        429
    )
    assert _next(client, token, HTTP_X_FORWARDED_FOR="198.51.100.51").status_code == 200


def test_the_entry_page_that_starts_sessions_is_limited_per_address(
    client: Client, study: Study, settings: Any, clock: Clock
) -> None:
    settings.RATER_API_RATE_PER_ADDRESS = 2
    url = f"/r/{study.slug}/"
    assert client.get(url).status_code == 200
    assert Client().post(url, {"participant": "p1"}).status_code == 302
    refused = Client().post(url, {"participant": "p2"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(ratelimits.WINDOW_SECONDS - 10)
    assert b"Please wait" in refused.content
    assert list(RaterSession.objects.values_list("rater__external_id", flat=True)) == ["p1"]


def test_a_limit_of_zero_turns_it_off(
    client: Client, study: Study, settings: Any, clock: Clock
) -> None:
    settings.RATER_API_RATE_PER_SESSION = 0
    settings.RATER_API_RATE_PER_ADDRESS = 0
    token = _start(client, study.slug, "p1").json()["session"]
    assert all(_next(client, token).status_code == 200 for _ in range(20))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own, if the machine has one."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server on this machine")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_limits_count_the_same_in_redis(
    client: Client, study: Study, settings: Any, clock: Clock, redis_url: str
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    settings.RATER_API_RATE_PER_SESSION = 2
    settings.RATER_API_RATE_PER_ADDRESS = 0
    token = _start(client, study.slug, "p1").json()["session"]
    assert [_next(client, token).status_code for _ in range(3)] == [200, 200, 429]
    clock.at += ratelimits.WINDOW_SECONDS
    assert _next(client, token).status_code == 200
