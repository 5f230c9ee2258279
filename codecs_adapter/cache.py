"""A content-addressed cache of encodes on disk, so that ladders resume where they stopped.

An encode is named by what determines its bytes: the source pixels (their SHA-256, see
:func:`~codecs_adapter.images.pixels_sha256`), the codec's name, library, runtime
version, the value of its swept setting and every fixed option. The cache key is the
SHA-256 of those, so a new library version or a changed option never reuses an old
bitstream, and the same encode requested by any ladder, in any process, is done once.

Layout under the cache folder::

    objects/<key[:2]>/<key>.bits       the bitstream
    objects/<key[:2]>/<key>.json       what it is (codec, setting, sizes, SHA-256s)
    objects/<key[:2]>/<key>.metrics-<version>.json   objective metrics of its decode

Every file is written to a temporary name and renamed into place, and an entry counts
only when its description exists and the bitstream's SHA-256 matches it; so an
interrupted run (Ctrl+C, a killed worker) leaves nothing half-written that a later run
would trust. Concurrent writers of one entry write identical bytes, so the last rename
wins harmlessly.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from codecs_adapter.codecs import Codec
from codecs_adapter.images import sha256_bytes

#: Version of the key and entry format; part of every key.
CACHE_FORMAT: Final = 1

#: Sub-folder holding the entries.
OBJECTS_FOLDER: Final = "objects"

#: Characters of the key that name the fan-out folder.
FANOUT_CHARS: Final = 2


def canonical_setting(codec: Codec, setting: float) -> int | float:
    """A setting as it enters cache keys: ``int`` for integer settings, else ``float``.

    So that 20, 20.0 and ``numpy.float64(20)`` name the same encode.
    """
    value = codec.check_setting(setting)
    return int(value) if codec.setting_is_integer else float(value)


def encode_key(codec: Codec, source_sha256: str, setting: float) -> str:
    """The cache key of one encode.

    Parameters
    ----------
    codec : Codec
        The codec (its name, library, version and fixed options enter the key).
    source_sha256 : str
        :func:`~codecs_adapter.images.pixels_sha256` of the source image.
    setting : float
        Value of the codec's swept setting.

    Returns
    -------
    str
        64 hex digits.

    Raises
    ------
    ValueError
        If the setting is invalid for the codec.
    """
    description = {
        "format": CACHE_FORMAT,
        "source": source_sha256,
        "codec": codec.name,
        "library": codec.library,
        "version": codec.version,
        "setting_name": codec.setting_name,
        "setting": repr(canonical_setting(codec, setting)),
        "options": {key: repr(value) for key, value in codec.fixed_options.items()},
    }
    return sha256_bytes(json.dumps(description, sort_keys=True).encode("utf-8"))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write bytes to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


@dataclass
class CacheStats:
    """Counts of one process's use of a cache.

    Attributes
    ----------
    hits : int
        Encodes found in the cache.
    misses : int
        Encodes that had to be run (and were then stored).
    """

    hits: int = 0
    misses: int = 0


class EncodeCache:
    """Bitstreams (and metrics of their reconstructions) on disk, by content.

    Parameters
    ----------
    root : str or os.PathLike
        Folder of the cache; created on first write. Safe to share between processes
        and runs; delete it to start afresh.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.stats = CacheStats()

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes get the folder, not the parent's counters.
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.root = state["root"]
        self.stats = CacheStats()

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / OBJECTS_FOLDER / key[:FANOUT_CHARS] / f"{key}{suffix}"

    def load(self, key: str) -> bytes | None:
        """The bitstream stored under a key, or None if absent or damaged.

        Parameters
        ----------
        key : str
            From :func:`encode_key`.

        Returns
        -------
        bytes or None
        """
        try:
            description = json.loads(self._path(key, ".json").read_text(encoding="utf-8"))
            bitstream = self._path(key, ".bits").read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(description, dict) or description.get("sha256") != sha256_bytes(
            bitstream
        ):
            return None
        return bitstream

    def store(self, key: str, bitstream: bytes, description: Mapping[str, Any]) -> None:
        """Store a bitstream and its description under a key (atomically).

        Parameters
        ----------
        key : str
            From :func:`encode_key`.
        bitstream : bytes
            The encoded file.
        description : Mapping
            JSON-serialisable facts about it (codec, setting, ...); ``n_bytes`` and
            ``sha256`` are added here.

        Raises
        ------
        OSError
            If the cache folder cannot be written.
        """
        record = {**description, "n_bytes": len(bitstream), "sha256": sha256_bytes(bitstream)}
        _write_atomically(self._path(key, ".bits"), bitstream)
        _write_atomically(
            self._path(key, ".json"), json.dumps(record, sort_keys=True).encode("utf-8")
        )

    def encode(
        self, codec: Codec, rgb: Any, setting: float, *, source_sha256: str
    ) -> tuple[bytes, bool]:
        """Return the bitstream of an encode, from the cache or by encoding (then stored).

        Parameters
        ----------
        codec : Codec
            The codec.
        rgb : numpy.ndarray
            The source image (used only on a miss).
        setting : float
            Value of the codec's setting.
        source_sha256 : str
            :func:`~codecs_adapter.images.pixels_sha256` of ``rgb``; computed once by
            the caller, since hashing a large image costs more than a cache lookup.

        Returns
        -------
        tuple of (bytes, bool)
            The bitstream, and whether it came from the cache.

        Raises
        ------
        ValueError
            If the setting or image is invalid.
        CodecError
            If encoding fails (nothing is stored then).
        """
        key = encode_key(codec, source_sha256, setting)
        cached = self.load(key)
        if cached is not None:
            self.stats.hits += 1
            return cached, True
        bitstream = codec.encode(rgb, setting)
        self.stats.misses += 1
        self.store(
            key,
            bitstream,
            {
                "source": source_sha256,
                "codec": codec.name,
                "library": codec.library,
                "version": codec.version,
                "setting_name": codec.setting_name,
                "setting": canonical_setting(codec, setting),
            },
        )
        return bitstream, False

    def load_metrics(self, key: str, version: str) -> dict[str, float] | None:
        """Metrics stored for an encode's reconstruction, or None.

        Parameters
        ----------
        key : str
            The encode's key.
        version : str
            Version of the metric definitions (:data:`~codecs_adapter.metrics.METRICS_VERSION`).

        Returns
        -------
        dict or None
        """
        try:
            values = json.loads(self._path(key, f".metrics-{version}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(values, dict) or not all(
            isinstance(value, int | float) and math.isfinite(value) for value in values.values()
        ):
            return None
        return {str(name): float(value) for name, value in values.items()}

    def store_metrics(self, key: str, version: str, values: Mapping[str, float]) -> None:
        """Store the metrics of an encode's reconstruction (atomically).

        Parameters
        ----------
        key : str
            The encode's key.
        version : str
            Version of the metric definitions.
        values : Mapping[str, float]
            Finite metric values.

        Raises
        ------
        OSError
            If the cache folder cannot be written.
        """
        data = json.dumps(dict(values), sort_keys=True).encode("utf-8")
        _write_atomically(self._path(key, f".metrics-{version}.json"), data)

    def __len__(self) -> int:
        """Number of complete entries (bitstreams with their description)."""
        folder = self.root / OBJECTS_FOLDER
        if not folder.is_dir():
            return 0
        return sum(1 for path in folder.glob("*/*.bits") if path.with_suffix(".json").is_file())
