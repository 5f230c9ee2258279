"""Simulation-based calibration of the 95% BD-rate intervals on PICO-like studies.

    .venv/bin/python bench/calibration.py [--studies 20] [--models bt-rater,bt-rater-fast,bt]

Each study: 6 codecs x 8 rates x 30 images, 75,000 votes from 600 raters (80% good,
15% mediocre, 5% answering at random), per-image scale of the quality differences, a
left/right bias; 5 non-anchor codecs with known BD-rates. Target (issue 4): the intervals
contain the truth for 90-98% of codecs. Prints coverage, bias and width per model, and
per codec for the default model.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST_SEED = 1000


def main() -> None:
    from analysis.calibration import calibrate, calibration_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--models", default="bt-rater,bt-rater-fast,bt")
    parser.add_argument("--votes", type=int, default=75_000)
    parser.add_argument("--csv", type=Path, help="write the per-codec records here")
    args = parser.parse_args()
    from analysis.simulate import SimulationDesign

    design = SimulationDesign(n_votes=args.votes)
    seeds = range(FIRST_SEED, FIRST_SEED + args.studies)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {args.studies} studies, {args.votes:,} votes"
    )
    print(
        "| model | intervals | coverage | bias (points) | mean abs. error | mean width | "
        "converged fits | s per fit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    all_records = []
    for case in args.models.split(","):
        started = time.perf_counter()
        records = calibrate(
            seeds,
            design=design,
            fit_options={"model": case.removesuffix("-fast"), "fast": case.endswith("-fast")},
        )
        summary = calibration_summary(records)
        seconds = (time.perf_counter() - started) / args.studies
        print(
            f"| {case} | {summary['n_intervals']} | {summary['coverage']:.1%} | "
            f"{summary['bias']:+.2f} | {summary['mean_abs_error']:.2f} | "
            f"{summary['width']:.2f} | {summary['converged_share']:.0%} | {seconds:.0f} |",
            flush=True,
        )
        all_records.append(records.assign(model=case))
        if case == args.models.split(",")[0]:
            per_codec = records.groupby("codec", sort=False).agg(
                truth=("truth", "first"),
                coverage=("covered", "mean"),
                median=("bd_rate", "mean"),
            )
            per_codec["width"] = (
                (records["bd_rate_hi"] - records["bd_rate_lo"]).groupby(records["codec"]).mean()
            )
            print(per_codec.round(3).to_string(), file=sys.stderr, flush=True)
    if args.csv is not None:
        import pandas as pd

        pd.concat(all_records).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
