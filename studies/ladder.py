"""Encoding a study's rate ladders: images × codecs × target bitrates, in parallel.

Plain Python on top of codecs_adapter (no database), so the worker processes
never touch Django. The results are PNG bytes ready to be stored as stimuli.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import codecs_adapter


@dataclass(frozen=True)
class Ladder:
    """One codec's rate points: target bitrates in bits per pixel, fewest bits first."""

    codec: str
    targets_bpp: tuple[float, ...]

    def condition_name(self, rate_index: int) -> str:
        return f"{self.codec}-r{rate_index + 1}"


@dataclass(frozen=True)
class EncodedStimulus:
    image: str
    codec: str
    condition: str
    rate_index: int
    target_bpp: float | None  # None: encoded at a fixed setting, not to a rate
    bpp: float
    bitstream_bytes: int
    png: bytes
    sha256: str
    library: str
    version: str
    settings: dict[str, Any] = field(default_factory=dict)
    encodes: int = 1  # encodes the rate search took

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


class LadderError(Exception):
    """Some rate points could not be produced; the message lists every one."""


def _encode_job(
    image_name: str, rgb: np.ndarray, ladder: Ladder
) -> tuple[list[EncodedStimulus], list[str]]:
    codec = codecs_adapter.get_codec(ladder.codec)
    done: list[EncodedStimulus] = []
    problems: list[str] = []
    for rate_index, target in enumerate(ladder.targets_bpp):
        try:
            point = codecs_adapter.encode_to_bpp(codec, rgb, target)
        except codecs_adapter.TargetUnreachable as exc:
            problems.append(f"{image_name}: {exc}")
            continue
        done.append(
            EncodedStimulus.from_point(
                point,
                image=image_name,
                condition=ladder.condition_name(rate_index),
                rate_index=rate_index,
            )
        )
    return done, problems


def encode_ladders(
    images: Mapping[str, np.ndarray],
    ladders: Sequence[Ladder],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[EncodedStimulus]:
    """Encode every image with every ladder, hitting each target bpp per image.

    Raises
    ------
    LadderError
        A target could not be reached on some image; lists every such case.
    """
    jobs = [(name, rgb, ladder) for name, rgb in images.items() for ladder in ladders]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    results: list[EncodedStimulus] = []
    problems: list[str] = []
    # Fresh interpreters, not forks: the caller may be a threaded web or test
    # process, and forking one can deadlock the children.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_encode_job, *job) for job in jobs]
        for finished, future in enumerate(futures, start=1):
            done, failed = future.result()
            results.extend(done)
            problems.extend(failed)
            if progress is not None:
                progress(finished, len(jobs))
    if problems:
        raise LadderError("targets not reached:\n" + "\n".join(problems))
    return sorted(results, key=lambda s: (s.codec, s.rate_index, s.image))
