"""Rate ladders: every image × every codec × every target bitrate, in parallel, resumable.

:func:`run_ladders` hits each target per image with :func:`~codecs_adapter.ratecontrol.
encode_to_bpp`, turns each reconstruction into a metadata-free PNG, computes its
objective metrics, and returns plain :class:`~codecs_adapter.records.StimulusRecord`\\ s.
Targets that a codec cannot reach on an image are returned apart, as
:class:`UnreachedTarget`\\ s, never as stimuli.

Work runs in worker processes started with the ``spawn`` method (a fresh interpreter,
never a fork: callers may be threaded web or test processes, and forking those can
deadlock the children), one job per image and codec: its targets are searched one after
the other, so that the searches of one image and codec, which often try the same
settings, never run at the same time and never encode the same thing twice. With a cache
folder every encode, and the metrics of every chosen reconstruction, are stored by
content (:mod:`codecs_adapter.cache`); an interrupted run resumes where it stopped,
replaying finished searches from the cache without encoding again.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import numpy as np

from codecs_adapter.cache import EncodeCache, encode_key
from codecs_adapter.codecs import Codec, get_codec
from codecs_adapter.images import RGB8, pixels_sha256, png_bytes, sha256_bytes, validate_rgb
from codecs_adapter.metrics import compute_metrics, metrics_version
from codecs_adapter.ratecontrol import (
    DEFAULT_MAX_ENCODES,
    DEFAULT_REL_TOL,
    RatePoint,
    TargetUnreachable,
    encode_to_bpp,
)
from codecs_adapter.records import StimulusRecord

#: Slack on the tolerance check of :attr:`StimulusRecord.within_tolerance`, for the
#: rounding of ``bpp / target`` in floating point.
_TOLERANCE_SLACK: Final = 1e-12

#: Width of :class:`TextProgress`'s bar, in characters.
PROGRESS_BAR_WIDTH: Final = 30

#: Type of a progress callback: called with (stimuli done, stimuli in total).
type Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Ladder:
    """One codec's rate points: target bitrates in bits per pixel, fewest bits first.

    Attributes
    ----------
    codec : str
        Name of a built-in codec, or of one passed to :func:`run_ladders` in ``codecs``.
    targets_bpp : tuple of float
        Strictly increasing positive targets.
    """

    codec: str
    targets_bpp: tuple[float, ...]

    def __post_init__(self) -> None:
        targets = tuple(float(target) for target in self.targets_bpp)
        if not targets:
            raise ValueError(f"ladder of {self.codec!r} has no targets")
        if not all(math.isfinite(target) and target > 0 for target in targets):
            raise ValueError(f"ladder of {self.codec!r}: targets must be positive: {targets}")
        if any(later <= earlier for earlier, later in zip(targets, targets[1:], strict=False)):
            raise ValueError(f"ladder of {self.codec!r}: targets must increase: {targets}")
        object.__setattr__(self, "targets_bpp", targets)

    def condition_name(self, rate_index: int) -> str:
        """Name of the condition at a rate index (0 = fewest bits): ``"<codec>-r<n>"``."""
        return f"{self.codec}-r{rate_index + 1}"


@dataclass(frozen=True)
class UnreachedTarget:
    """A target that no setting of a codec reaches on an image (never written as reached).

    Attributes
    ----------
    image, codec, condition : str
        Where it happened.
    rate_index : int
        Position of the target on the ladder.
    target_bpp : float
        The target.
    min_bpp, max_bpp : float
        The rates the codec's setting range spans on this image.
    encodes : int
        Encodes spent finding out.
    message : str
        The full explanation.
    """

    image: str
    codec: str
    condition: str
    rate_index: int
    target_bpp: float
    min_bpp: float
    max_bpp: float
    encodes: int
    message: str


@dataclass(frozen=True)
class LadderResult:
    """What a ladder run produced.

    Attributes
    ----------
    stimuli : tuple of StimulusRecord
        Sorted by codec, rate index, image.
    unreached : tuple of UnreachedTarget
        Sorted the same way.
    encoder_calls : int
        Encodes actually run (not found in the cache).
    cache_hits : int
        Encodes found in the cache.
    seconds : float
        Wall-clock time of the run.
    """

    stimuli: tuple[StimulusRecord, ...]
    unreached: tuple[UnreachedTarget, ...]
    encoder_calls: int
    cache_hits: int
    seconds: float

    @property
    def missed(self) -> tuple[StimulusRecord, ...]:
        """Stimuli whose rate is outside the tolerance (the closest the setting allows)."""
        return tuple(stimulus for stimulus in self.stimuli if not stimulus.within_tolerance)


@dataclass(frozen=True)
class _Job:
    """One image and one codec's ladder: the unit of work of a worker process."""

    image: str
    rgb: RGB8
    source_sha256: str
    codec: Codec
    ladder: Ladder
    rel_tol: float
    max_encodes: int
    metrics: bool
    cache_root: Path | None


@dataclass(frozen=True)
class _Outcome:
    """What a job sends back."""

    stimuli: tuple[StimulusRecord, ...]
    unreached: tuple[UnreachedTarget, ...]
    encoder_calls: int
    cache_hits: int


def _stimulus_metrics(job: _Job, point: RatePoint, cache: EncodeCache | None) -> dict[str, float]:
    """Metrics of a chosen reconstruction, from the cache when stored there before."""
    if not job.metrics:
        return {}
    key = encode_key(job.codec, job.source_sha256, point.setting) if cache else None
    if cache is not None and key is not None:
        stored = cache.load_metrics(key, metrics_version())
        if stored is not None:
            return stored
    values = compute_metrics(job.rgb, point.decoded)
    if cache is not None and key is not None:
        cache.store_metrics(key, metrics_version(), values)
    return values


def _record(
    job: _Job, rate_index: int, point: RatePoint, cache: EncodeCache | None
) -> StimulusRecord:
    """The stimulus of a rate point."""
    png = png_bytes(point.decoded)
    target = job.ladder.targets_bpp[rate_index]
    error = abs(point.bpp / target - 1.0)
    return StimulusRecord(
        image=job.image,
        condition=job.ladder.condition_name(rate_index),
        codec=point.codec,
        rate_index=rate_index,
        target_bpp=target,
        bpp=point.bpp,
        n_bytes=point.n_bytes,
        width=point.width,
        height=point.height,
        library=point.library,
        version=point.version,
        setting_name=point.setting_name,
        setting=point.setting,
        settings=dict(point.settings),
        encodes=point.encodes,
        within_tolerance=error <= job.rel_tol + _TOLERANCE_SLACK,
        png=png,
        sha256=sha256_bytes(png),
        bitstream_sha256=sha256_bytes(point.bitstream),
        metrics=_stimulus_metrics(job, point, cache),
    )


def _run_job(job: _Job) -> _Outcome:
    """Hit every target of one codec on one image (in a worker process, or inline)."""
    cache = EncodeCache(job.cache_root) if job.cache_root is not None else None
    stimuli: list[StimulusRecord] = []
    unreached: list[UnreachedTarget] = []
    encodes = 0
    for rate_index, target in enumerate(job.ladder.targets_bpp):
        try:
            point = encode_to_bpp(
                job.codec,
                job.rgb,
                target,
                rel_tol=job.rel_tol,
                max_encodes=job.max_encodes,
                cache=cache,
                source_sha256=job.source_sha256,
            )
        except TargetUnreachable as exc:
            encodes += exc.encodes or 0
            unreached.append(
                UnreachedTarget(
                    image=job.image,
                    codec=job.codec.name,
                    condition=job.ladder.condition_name(rate_index),
                    rate_index=rate_index,
                    target_bpp=target,
                    min_bpp=exc.min_bpp,
                    max_bpp=exc.max_bpp,
                    encodes=exc.encodes or 0,
                    message=f"{job.image}: {exc}",
                )
            )
            continue
        encodes += point.encodes
        stimuli.append(_record(job, rate_index, point, cache))
    if cache is not None:
        calls, hits = cache.stats.misses, cache.stats.hits
    else:
        calls, hits = encodes, 0
    return _Outcome(tuple(stimuli), tuple(unreached), calls, hits)


def _resolve_codecs(
    ladders: Sequence[Ladder], codecs: Mapping[str, Codec] | None
) -> dict[str, Codec]:
    """The codec of every ladder: the caller's by name first, else a built-in one."""
    extra = dict(codecs or {})
    return {ladder.codec: extra.get(ladder.codec) or get_codec(ladder.codec) for ladder in ladders}


def _targets(jobs: Sequence[_Job]) -> int:
    return sum(len(job.ladder.targets_bpp) for job in jobs)


def _run_in_processes(jobs: list[_Job], workers: int, progress: Progress | None) -> list[_Outcome]:
    """Run jobs in spawned worker processes; on any exception cancel what has not started."""
    outcomes: list[_Outcome] = []
    total = _targets(jobs)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        pending: dict[Future[_Outcome], _Job] = {pool.submit(_run_job, job): job for job in jobs}
        finished: list[_Job] = []
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finished.append(pending.pop(future))
                outcomes.append(future.result())
                if progress is not None:
                    progress(_targets(finished), total)
    except BaseException:
        # Jobs already running finish (and fill the cache); queued ones never start.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return outcomes


def run_ladders(
    images: Mapping[str, np.ndarray],
    ladders: Sequence[Ladder],
    *,
    codecs: Mapping[str, Codec] | None = None,
    cache: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    rel_tol: float = DEFAULT_REL_TOL,
    max_encodes: int = DEFAULT_MAX_ENCODES,
    metrics: bool = True,
) -> LadderResult:
    """Encode every image with every ladder, hitting each target per image.

    Parameters
    ----------
    images : Mapping[str, numpy.ndarray]
        Source images by name, uint8 ``(height, width, 3)``.
    ladders : sequence of Ladder
        One per codec.
    codecs : Mapping[str, Codec], optional
        Codecs by name for ladders that name a codec that is not built in (e.g.
        :class:`~codecs_adapter.external.CommandCodec`\\ s); they must be picklable.
    cache : str or os.PathLike, optional
        Cache folder (see :mod:`codecs_adapter.cache`); without one nothing is reused.
    workers : int, optional
        Worker processes; by default one per CPU (at most one per job). With 1 the
        jobs run in this process, one after the other.
    progress : callable, optional
        Called as ``progress(done, total)`` in this process, counting stimuli (image ×
        codec × target), after each job (one image's ladder of one codec). An exception
        it raises (e.g. ``KeyboardInterrupt``) stops the run: queued jobs are cancelled,
        running ones finish into the cache.
    rel_tol : float, optional
        Rate tolerance of each target (see :func:`~codecs_adapter.ratecontrol.encode_to_bpp`).
    max_encodes : int, optional
        Most encodes per target.
    metrics : bool, optional
        Compute :func:`~codecs_adapter.metrics.compute_metrics` for every stimulus.

    Returns
    -------
    LadderResult
        The stimuli, the unreached targets and counts of the work done.

    Raises
    ------
    ValueError
        If an image is invalid, two ladders name one codec, or ``workers`` < 1.
    UnknownCodecError
        If a ladder names a codec that is neither given nor built in.
    CodecError
        If an encoder or decoder fails (an unreachable target is not an error).
    """
    started = time.perf_counter()
    names = [ladder.codec for ladder in ladders]
    if len(set(names)) != len(names):
        raise ValueError(f"two ladders name the same codec: {names}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    resolved = _resolve_codecs(ladders, codecs)
    cache_root = Path(cache) if cache is not None else None
    jobs = []
    for image, rgb in images.items():
        pixels = validate_rgb(rgb, name=f"image {image!r}")
        digest = pixels_sha256(pixels)
        jobs += [
            _Job(
                image=image,
                rgb=pixels,
                source_sha256=digest,
                codec=resolved[ladder.codec],
                ladder=ladder,
                rel_tol=rel_tol,
                max_encodes=max_encodes,
                metrics=metrics,
                cache_root=cache_root,
            )
            for ladder in ladders
        ]
    count = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    if count == 1:
        outcomes = []
        for index, job in enumerate(jobs):
            outcomes.append(_run_job(job))
            if progress is not None:
                progress(_targets(jobs[: index + 1]), _targets(jobs))
    else:
        outcomes = _run_in_processes(jobs, count, progress)

    def order(item: StimulusRecord | UnreachedTarget) -> tuple[str, int, str]:
        return (item.codec, item.rate_index, item.image)

    stimuli = sorted((s for outcome in outcomes for s in outcome.stimuli), key=order)
    unreached = sorted((u for outcome in outcomes for u in outcome.unreached), key=order)
    return LadderResult(
        stimuli=tuple(stimuli),
        unreached=tuple(unreached),
        encoder_calls=sum(outcome.encoder_calls for outcome in outcomes),
        cache_hits=sum(outcome.cache_hits for outcome in outcomes),
        seconds=time.perf_counter() - started,
    )


class TextProgress:
    """A one-line text progress bar, redrawn in place (for terminals and logs).

    Parameters
    ----------
    label : str
        What is counted (``"stimuli"``).
    stream : TextIO, optional
        Where to draw; standard error by default.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        """Draw the bar for ``done`` of ``total``; end the line when complete."""
        filled = PROGRESS_BAR_WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled)
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"\r[{bar}] {done}/{total} {self.label}, {elapsed:.0f} s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
