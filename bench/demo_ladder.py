"""How long the demo study's rate ladders take, and how many encodes rate control costs.

Run: .venv/bin/python bench/demo_ladder.py [--workers N]

Encodes the demo's 6 images x 4 codecs x 4 target bitrates with bisection on
each codec's setting (what `manage.py demo_study` does), then, as the
baseline measured in the same run, encodes every stimulus once at the setting
the search found: the cost if the right setting were known in advance.
Prints wall-clock seconds of both, their ratio, encodes per target and how
close the achieved bpp came to the target.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import codecs_adapter  # noqa: E402
from studies import demo  # noqa: E402
from studies.ladder import encode_ladders  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    images = demo.demo_images()
    started = time.perf_counter()
    stimuli = encode_ladders(images, demo.DEMO_LADDERS, workers=args.workers)
    ladder_seconds = time.perf_counter() - started

    # Baseline: one encode per stimulus at the setting found, in one process.
    started = time.perf_counter()
    for stimulus in stimuli:
        codec = codecs_adapter.get_codec(stimulus.codec)
        setting = stimulus.settings[codec.setting_name]
        codec.encode(images[stimulus.image], setting)
    single_seconds = time.perf_counter() - started

    errors = [abs(s.bpp / s.target_bpp - 1) for s in stimuli if s.target_bpp]
    print(f"machine: {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}")
    print(f"stimuli: {len(stimuli)} ({len(images)} images x 16 conditions)")
    print(f"ladder with rate control, {args.workers} processes: {ladder_seconds:.1f} s")
    print(
        f"baseline, one encode per stimulus at the found setting, 1 process: {single_seconds:.1f} s"
    )
    print(f"ratio ladder / baseline: {ladder_seconds / single_seconds:.1f}x")
    print(
        f"|achieved/target - 1|: median {statistics.median(errors):.1%}, "
        f"max {max(errors):.1%}, within 3%: {sum(e <= 0.03 for e in errors) / len(errors):.0%}"
    )
    print(f"encodes per target, mean: {statistics.mean(s.encodes for s in stimuli):.2f}")
    for ladder in demo.DEMO_LADDERS:
        mine = [s for s in stimuli if s.codec == ladder.codec and s.target_bpp]
        misses = [abs(s.bpp / s.target_bpp - 1) for s in mine if s.target_bpp]
        within = sum(e <= 0.03 for e in misses)
        encodes = statistics.mean(s.encodes for s in mine)
        print(
            f"  {ladder.codec:5s} encodes/target {encodes:.2f}, max miss {max(misses):.1%}, "
            f"within 3%: {within}/{len(misses)}"
        )


if __name__ == "__main__":
    main()
