"""The embedded cache: add and incr atomic across processes, expiry kept, old entries culled."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evalsite import cache as cache_module
from evalsite.cache import CounterFileCache

REPO = Path(__file__).resolve().parents[2]

# Each process counts one key as studies.ratelimits does: incr, else add, else incr.
_COUNTER = """
import sys
from evalsite.cache import CounterFileCache
cache = CounterFileCache(sys.argv[1], {})
for _ in range(int(sys.argv[2])):
    try:
        cache.incr("k")
    except ValueError:
        if not cache.add("k", 1, 60):
            cache.incr("k")
"""


def test_increments_from_concurrent_processes_are_all_counted(tmp_path: Path) -> None:
    processes, each = 4, 150
    children = [
        subprocess.Popen([sys.executable, "-c", _COUNTER, str(tmp_path), str(each)], cwd=REPO)
        for _ in range(processes)
    ]
    assert [child.wait(timeout=120) for child in children] == [0] * processes
    assert CounterFileCache(str(tmp_path), {}).get("k") == processes * each


def test_add_succeeds_once_and_incr_keeps_the_expiry(tmp_path: Path) -> None:
    cache = CounterFileCache(str(tmp_path), {})
    assert cache.add("k", 1, 1)
    assert not cache.add("k", 5, 60)
    assert cache.incr("k") == 2
    time.sleep(1.1)  # the timeout given to add, not a new default one
    assert cache.get("k") is None
    with pytest.raises(ValueError, match="not found"):
        cache.incr("k")
    assert cache.add("k", 7, 60)  # an expired entry is replaced
    assert cache.incr("k", 3) == 10


def test_expired_entries_are_culled_before_live_ones(tmp_path: Path) -> None:
    cache: Any = CounterFileCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 3}})
    for key in ("a", "b", "c"):
        cache.add(key, 1, 1)
    time.sleep(1.1)
    cache._next_cull = 0.0  # the next write may cull
    assert cache.add("live", 1, 60)
    assert cache._list_cache_files() == [cache._key_to_file("live")]
    assert cache_module.CULL_INTERVAL_SECONDS > 0
