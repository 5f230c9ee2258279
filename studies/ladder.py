"""Encoding a study's rate ladders: images × codecs × target bitrates, in parallel.

A thin layer over :func:`codecs_adapter.run_ladders` (the library's runner: spawned
worker processes, rate control per image, optional content-addressed cache), so the
worker processes never touch Django. The results are PNG bytes ready to be stored as
stimuli.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import codecs_adapter
from codecs_adapter.ladder import Ladder

__all__ = ["EncodedStimulus", "Ladder", "LadderError", "encode_ladders"]


@dataclass(frozen=True)
class EncodedStimulus:
    image: str
    codec: str
    condition: str
    rate_index: int
    target_bpp: float | None  # None: encoded at a fixed setting, or imported
    bpp: float
    bitstream_bytes: int
    png: bytes
    sha256: str
    library: str
    version: str
    settings: dict[str, Any] = field(default_factory=dict)
    encodes: int = 1  # encodes the rate search took
    metrics: dict[str, float] = field(default_factory=dict)  # codecs_adapter.compute_metrics

    @classmethod
    def from_point(
        cls,
        point: codecs_adapter.RatePoint,
        *,
        image: str,
        condition: str,
        rate_index: int,
    ) -> EncodedStimulus:
        """The stimulus of an encoded rate point: its decoded pixels as a PNG."""
        png = codecs_adapter.png_bytes(point.decoded)
        return cls(
            image=image,
            codec=point.codec,
            condition=condition,
            rate_index=rate_index,
            target_bpp=point.target_bpp,
            bpp=point.bpp,
            bitstream_bytes=point.n_bytes,
            png=png,
            sha256=codecs_adapter.sha256_bytes(png),
            library=point.library,
            version=point.version,
            settings=dict(point.settings),
            encodes=point.encodes,
        )

    @classmethod
    def from_record(cls, record: codecs_adapter.StimulusRecord) -> EncodedStimulus:
        """The stimulus of a library record (a ladder's or an import's)."""
        return cls(
            image=record.image,
            codec=record.codec,
            condition=record.condition,
            rate_index=record.rate_index,
            target_bpp=record.target_bpp,
            bpp=record.bpp,
            bitstream_bytes=record.n_bytes,
            png=record.png,
            sha256=record.sha256,
            library=record.library,
            version=record.version,
            settings=dict(record.settings),
            encodes=record.encodes,
            metrics=dict(record.metrics),
        )


class LadderError(Exception):
    """Some rate points could not be produced; the message lists every one."""


def encode_ladders(
    images: Mapping[str, np.ndarray],
    ladders: Sequence[Ladder],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    metrics: bool = False,
) -> list[EncodedStimulus]:
    """Encode every image with every ladder, hitting each target bpp per image.

    ``progress(done, total)`` counts stimuli (image × codec × target). With
    ``cache_dir`` encodes are reused across runs (and an interrupted build resumes);
    with ``metrics`` every stimulus carries its objective metrics.

    Raises
    ------
    LadderError
        A target could not be reached on some image; lists every such case.
    """
    result = codecs_adapter.run_ladders(
        images,
        ladders,
        workers=workers,
        progress=progress,
        cache=cache_dir,
        metrics=metrics,
    )
    if result.unreached:
        raise LadderError(
            "targets not reached:\n" + "\n".join(item.message for item in result.unreached)
        )
    return [EncodedStimulus.from_record(record) for record in result.stimuli]
