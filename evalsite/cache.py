"""The site's embedded cache: files under VAR_DIR, shared by every process on the host.

Django's ``FileBasedCache`` with three changes for the rate limits' counters
(``studies.ratelimits``), which call ``add`` and ``incr`` on every request of the
rater API:

- ``add`` writes the entry to a file of its own and links it under the key's
  name, so of two processes adding one key only one succeeds (Django's checks,
  then writes: both may succeed);
- ``incr`` rewrites the value in place under an exclusive ``flock`` and keeps
  the key's expiry (Django's reads, then sets: concurrent increments are lost,
  and the expiry restarts);
- the directory is listed to cull old entries at most once every
  ``CULL_INTERVAL_SECONDS`` per process, and expired entries go first (Django
  lists it on every write and deletes entries at random, live ones included).

A write of the rate limits then costs a few system calls instead of a listing
of the directory (milliseconds once it holds a few thousand entries) or, with
Django's database cache, a ``COUNT(*)`` and a write to the database the votes
are written to (docs/settings.md, ``CACHE_URL``).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import random
import tempfile
import time
import zlib
from typing import IO, TYPE_CHECKING, Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache

# How often (per process) the directory is listed to remove old entries.
CULL_INTERVAL_SECONDS = 60.0


class CounterFileCache(FileBasedCache):
    """``FileBasedCache`` with atomic ``add`` and ``incr`` across processes."""

    if TYPE_CHECKING:  # FileBasedCache's own helpers, which django-stubs leaves out
        _dir: str

        def _key_to_file(self, key: Any, version: int | None = None) -> str: ...
        def _createdir(self) -> None: ...
        def _write_content(self, file: IO[bytes], timeout: Any, value: Any) -> None: ...
        def _list_cache_files(self) -> list[str]: ...
        def _is_expired(self, f: IO[bytes]) -> bool: ...
        def _delete(self, fname: str) -> bool: ...

    def __init__(self, dir: str, params: dict[str, Any]) -> None:  # noqa: A002 - Django's name
        super().__init__(dir, params)
        self._next_cull = 0.0

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        fname = self._key_to_file(key, version)
        self._createdir()
        self._cull()
        # Written whole to a file of its own, then linked under the key's name:
        # the link fails if the name exists, and nobody sees a half-written entry.
        fd, tmp_path = tempfile.mkstemp(dir=self._dir)
        try:
            with open(fd, "wb") as f:
                self._write_content(f, timeout, value)
            for _ in range(2):
                try:
                    os.link(tmp_path, fname)
                except FileExistsError:
                    if self.has_key(key, version):  # removes the entry if it has expired
                        return False
                    continue  # expired and removed: once more
                return True
            return False
        finally:
            os.remove(tmp_path)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        fname = self._key_to_file(key, version)
        try:
            f = open(fname, "r+b")  # noqa: SIM115 - closed below, after the lock is released
        except FileNotFoundError:
            raise ValueError(f"Key '{key}' not found") from None
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                expiry = pickle.load(f)  # noqa: S301 - our own files, as FileBasedCache
            except EOFError:
                expiry = 0  # empty: expired, as for FileBasedCache
            if expiry is not None and expiry < time.time():
                raise ValueError(f"Key '{key}' not found")
            value = pickle.loads(zlib.decompress(f.read())) + delta  # noqa: S301
            f.seek(0)
            f.write(pickle.dumps(expiry, self.pickle_protocol))
            f.write(zlib.compress(pickle.dumps(value, self.pickle_protocol)))
            f.truncate()
        return int(value)

    def _cull(self) -> None:
        now = time.monotonic()
        if now < self._next_cull:
            return
        self._next_cull = now + CULL_INTERVAL_SECONDS
        files = self._list_cache_files()
        if len(files) < self._max_entries:
            return
        live = []
        for fname in files:
            try:
                with open(fname, "rb") as f:
                    if not self._is_expired(f):  # removes an expired entry
                        live.append(fname)
            except FileNotFoundError:
                pass
        if len(live) >= self._max_entries:
            if self._cull_frequency == 0:
                self.clear()
                return
            for fname in random.sample(live, len(live) // self._cull_frequency):
                self._delete(fname)
