"""Rate control on a 2-megapixel image: encodes per target, seconds per codec, accuracy.

Run: .venv/bin/python bench/ladder.py [--bpp 0.1 0.2 0.4 0.8 1.6] [--codec NAME ...]

The image is a 1632x1224 (2.0 MP) mosaic of four scikit-image photographs (astronaut,
coffee, motorcycle, rocket), each centre-cropped to 4:3 and resized to 816x612 with
Lanczos (upscaled 1.2-1.6x: somewhat smoother than a native 2 MP photo). No scikit-image
photo is 2 MP by itself, and nothing may be downloaded.

For each codec the whole ladder runs in this process (``run_ladders(workers=1)``, no
cache, no metrics), so its seconds are one CPU's; they include decoding each chosen
bitstream and writing its PNG stimulus, timed apart once per codec. The baseline,
measured in the same run, is one encode per target at the setting the search found: the
cost if the right setting were known in advance. For every target missed by more than 3%
the bench also encodes the neighbouring settings, to show whether a better one exists (it
never should) or the setting's granularity leaves a gap around the target. Finally the
metrics of one stimulus are timed, their cost per stimulus at this size.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import codecs_adapter  # noqa: E402
from codecs_adapter import (  # noqa: E402
    Ladder,
    compute_metrics,
    get_codec,
    png_bytes,
    run_ladders,
)
from codecs_adapter.ratecontrol import DEFAULT_REL_TOL  # noqa: E402

TILE = (816, 612)  # width, height of each of the 2x2 tiles
DEFAULT_TARGETS = (0.1, 0.2, 0.4, 0.8, 1.6)
#: Relative step used to probe a continuous setting's neighbourhood around a miss.
NEIGHBOUR_STEP = 1e-3


def mosaic() -> np.ndarray:
    """The 2 MP test image (see the module docstring)."""
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.stereo_motorcycle()[0], data.rocket()]
    tiles = []
    aspect = TILE[0] / TILE[1]
    for rgb in sources:
        height, width = rgb.shape[:2]
        crop_w = min(width, round(height * aspect))
        crop_h = round(crop_w / aspect)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        crop = Image.fromarray(np.ascontiguousarray(rgb[top : top + crop_h, left : left + crop_w]))
        tiles.append(np.asarray(crop.resize(TILE, Image.Resampling.LANCZOS)))
    return np.ascontiguousarray(
        np.concatenate(
            [np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0
        )
    )


def neighbour_rates(codec: codecs_adapter.Codec, rgb: np.ndarray, setting: float) -> list[float]:
    """Bitrates at the settings next to ``setting`` (the nearest ones either side)."""
    if codec.setting_is_integer:
        candidates = [setting - 1, setting + 1]
    elif codec.setting_scale == "log":
        candidates = [setting * (1 - NEIGHBOUR_STEP), setting * (1 + NEIGHBOUR_STEP)]
    else:
        span = codec.setting_max - codec.setting_min
        candidates = [setting - NEIGHBOUR_STEP * span, setting + NEIGHBOUR_STEP * span]
    pixels = rgb.shape[0] * rgb.shape[1]
    return [
        len(codec.encode(rgb, value)) * 8 / pixels
        for value in candidates
        if codec.setting_min <= value <= codec.setting_max
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpp", type=float, nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--codec", action="append", dest="codecs")
    args = parser.parse_args()
    codec_names = args.codecs or codecs_adapter.available_codecs()

    rgb = mosaic()
    height, width = rgb.shape[:2]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpu, Python {platform.python_version()}"
    )
    print(f"image: {width}x{height} = {width * height / 1e6:.2f} MP; targets {args.bpp} bpp")
    all_encodes: list[int] = []
    all_errors: list[float] = []
    reachable = 0
    for name in codec_names:
        codec = get_codec(name)
        result = run_ladders(
            {"mosaic": rgb}, [Ladder(name, tuple(args.bpp))], workers=1, metrics=False
        )
        started = time.perf_counter()
        for stimulus in result.stimuli:
            assert stimulus.setting is not None
            bitstream = codec.encode(rgb, stimulus.setting)
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        png_bytes(codec.decode(bitstream))
        finishing = time.perf_counter() - started
        encodes = [s.encodes for s in result.stimuli] + [u.encodes for u in result.unreached]
        all_encodes += [s.encodes for s in result.stimuli]
        errors = [abs(s.bpp / s.target_bpp - 1) for s in result.stimuli if s.target_bpp]
        all_errors += errors
        reachable += len(result.stimuli)
        within = sum(error <= DEFAULT_REL_TOL for error in errors)
        print(
            f"\n{name} ({codec.library} {codec.version}): {result.seconds:.1f} s for the ladder "
            f"(baseline {baseline:.1f} s, ratio {result.seconds / max(baseline, 1e-9):.1f}x); "
            f"encodes per target {statistics.mean(encodes):.2f}; within 3%: "
            f"{within}/{len(errors)} reachable targets; decode + PNG {finishing:.1f} s "
            "per stimulus"
        )
        for stimulus in result.stimuli:
            assert stimulus.target_bpp is not None and stimulus.setting is not None
            line = (
                f"  target {stimulus.target_bpp:<5g} achieved {stimulus.bpp:.4f} "
                f"({stimulus.rel_error:+.1%}) {stimulus.setting_name}={stimulus.setting:.6g} "
                f"in {stimulus.encodes} encodes"
            )
            if not stimulus.within_tolerance:
                rates = neighbour_rates(codec, rgb, stimulus.setting)
                line += "; neighbouring settings give " + ", ".join(f"{r:.4f}" for r in rates)
            print(line)
        for unreached in result.unreached:
            print(
                f"  target {unreached.target_bpp:<5g} unreachable: range "
                f"{unreached.min_bpp:.4f}-{unreached.max_bpp:.4f} bpp "
                f"({unreached.encodes} encodes)"
            )

    within_all = sum(error <= DEFAULT_REL_TOL for error in all_errors)
    print(
        f"\nall codecs: {reachable} reachable targets, encodes per target "
        f"{statistics.mean(all_encodes):.2f}, within 3%: {within_all}/{len(all_errors)}, "
        f"|achieved/target - 1| median {statistics.median(all_errors):.2%} "
        f"max {max(all_errors):.2%}"
    )
    decoded = get_codec("jpeg").decode(get_codec("jpeg").encode(rgb, 50))
    timings = []
    for metric in (
        codecs_adapter.psnr_rgb,
        codecs_adapter.psnr_y,
        codecs_adapter.ssim,
        codecs_adapter.ms_ssim,
        codecs_adapter.ssimulacra2,
    ):
        started = time.perf_counter()
        value = metric(rgb, decoded)
        timings.append(f"{metric.__name__} {value:.4g} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    values = compute_metrics(rgb, decoded)
    seconds = time.perf_counter() - started
    print(f"compute_metrics on the 2 MP image (JPEG quality 50): {seconds:.1f} s")
    print("  " + "; ".join(timings))
    assert all(math.isfinite(value) for value in values.values())


if __name__ == "__main__":
    main()
