"""Active pair selection against balanced scheduling: votes until every BD-rate is ±5 points.

    .venv/bin/python bench/active.py [--seeds 5] [--first-seed 1] [--strategies balanced,active]
                                     [--target 5] [--batch 500] [--warmup 1000] [--timing]

Each seed simulates a PICO-like study (``analysis.simulate``: 6 codecs x 8 rates x 30
images, 600 raters of whom 80% good, 15% mediocre, 5% answering at random, per-image
visibility scales, a left bias, 4% golden trials) and runs it under each strategy
(``analysis.rehearsal.rehearse``): 1,000 balanced warm-up votes shared by all
strategies, then a Laplace refit (``bt``) every 500 votes, the 95% BD-rate intervals from
its draws by the report's code, and a stop once every half-width is at most 5 points.

- ``balanced``: the study app's rule, ``studies.scheduling.choose_balanced_pair``
  (within an image, conditions equally often, every pair eligible, no repeats per
  rater, sides balanced per rater).
- ``active``: ``analysis.active.ActivePlanner`` refreshed at every refit, with the
  trials issued since passed as pending.
- ``elo``: the same planner scoring by information about all scores (elo_rater_model's
  criterion), for comparison.

Target (issue 8): ``active`` needs at most half the votes of ``balanced`` on average over
at least 5 seeds, with intervals as often containing the truth. Also prints the forecast
of votes to target made at the first refresh and halfway, and (``--timing``) the time of
one ``choose`` on a 1,000-condition study.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.active import ActivePlanner, Objective, PlannerSettings  # noqa: E402
from analysis.forecast import forecast_votes  # noqa: E402
from analysis.rehearsal import (  # noqa: E402
    RehearsalResult,
    RehearsalSettings,
    ScheduleState,
    active_scheduler,
    rehearse,
)
from analysis.simulate import SimulationDesign, simulate_study  # noqa: E402
from studies.scheduling import IssuedCounts, choose_balanced_pair  # noqa: E402

#: Votes of the simulated study's own sample (unused: the strategies choose the pairs).
DESIGN_VOTES = 100


def balanced_scheduler(rater: int, state: ScheduleState, rng: random.Random):
    choice = choose_balanced_pair(
        image_ids=state.image_ids,
        condition_ids=state.condition_ids,
        issued=IssuedCounts(
            pairs=state.issued,
            issued_per_image=state.issued_per_image,
            image_appearances=state.image_appearances,
        ),
        seen_by_rater=state.seen_by_rater.get(rater, set()),
        rng=rng,
        side_balance=state.side_balance.get(rater, {}),
    )
    if choice is None:
        return None
    return choice.image_id, choice.left_condition_id, choice.right_condition_id


def _forecast_errors(result: RehearsalResult, strategy: str, seed: int) -> list[str]:
    """Forecasts made at the first refresh and halfway, against the votes actually needed."""
    lines: list[str] = []
    planners = result.planners
    if not planners:
        return lines
    halfway = min(planners, key=lambda p: abs(p.n_votes - result.votes / 2))
    for label, planner in (("first refresh", planners[0]), ("halfway", halfway)):
        forecast = forecast_votes(planner, strategy=strategy, random_seed=seed)
        total = planner.n_votes + forecast.votes
        lines.append(
            f"forecast at {planner.n_votes} votes ({label}): {total:.0f} total "
            f"(80%: {planner.n_votes + forecast.votes_lo:.0f}-"
            f"{planner.n_votes + forecast.votes_hi:.0f}); needed {result.votes}; "
            f"ratio {total / result.votes:.2f}"
        )
    return lines


def run_seeds(args: argparse.Namespace) -> None:
    design = SimulationDesign(n_votes=DESIGN_VOTES)
    strategies = args.strategies.split(",")
    settings = RehearsalSettings(target_halfwidth=args.target, batch=args.batch, warmup=args.warmup)
    results: dict[str, list[RehearsalResult]] = {s: [] for s in strategies}
    print(
        "| seed | "
        + " | ".join(f"{s} votes | {s} covered" for s in strategies)
        + " | "
        + " | ".join(f"{s} s" for s in strategies)
        + " |"
    )
    print("|---" * (3 * len(strategies) + 1) + "|")
    forecast_lines: list[str] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        study = simulate_study(design, seed=seed)
        row_votes, row_seconds = [], []
        for strategy in strategies:
            if strategy == "balanced":
                scheduler, planner_settings = balanced_scheduler, settings.planner
            else:
                scheduler = active_scheduler
                objective = Objective.ELO if strategy == "elo" else Objective.BD_RATE
                planner_settings = PlannerSettings(objective=objective)
            result = rehearse(
                study,
                scheduler,
                seed=seed,
                settings=RehearsalSettings(
                    target_halfwidth=settings.target_halfwidth,
                    batch=settings.batch,
                    warmup=settings.warmup,
                    planner=planner_settings,
                ),
                needs_planner=True,
            )
            results[strategy].append(result)
            votes = f"{result.votes:,}" if result.reached else f">{result.votes:,}"
            row_votes.append(f"{votes} | {sum(result.covered.values())}/{len(result.covered)}")
            row_seconds.append(f"{result.seconds['total']:.0f}")
            if strategy in ("balanced", "active") and result.reached:
                forecast_lines += [
                    f"seed {seed} {strategy}: {line}"
                    for line in _forecast_errors(result, strategy, seed)
                ]
        print(
            f"| {seed} | " + " | ".join(row_votes) + " | " + " | ".join(row_seconds) + " |",
            flush=True,
        )

    print()
    print(
        "| strategy | mean votes to target | coverage of final 95% intervals"
        " | mean final worst half-width |"
    )
    print("|---|---|---|---|")
    for strategy, runs in results.items():
        covered = [c for r in runs for c in r.covered.values()]
        print(
            f"| {strategy} | {statistics.mean(r.votes for r in runs):,.0f} | "
            f"{sum(covered)}/{len(covered)} ({np.mean(covered):.0%}) | "
            f"{statistics.mean(r.checkpoints[-1].worst for r in runs):.2f} |"
        )
    if "balanced" in results:
        base = statistics.mean(r.votes for r in results["balanced"])
        for strategy, runs in results.items():
            if strategy == "balanced":
                continue
            ratios = [r.votes / b.votes for r, b in zip(runs, results["balanced"], strict=True)]
            print(
                f"\n{strategy} / balanced: ratio of means "
                f"{statistics.mean(r.votes for r in runs) / base:.3f}, "
                f"per-seed ratios {', '.join(f'{x:.2f}' for x in ratios)} "
                f"(mean {statistics.mean(ratios):.3f})"
            )
    print()
    for line in forecast_lines:
        print(line)
    if "active" in results:
        reasons = pd.concat(
            [
                r.votes_table.loc[r.votes_table["golden"] == 0].assign(seed=i)
                for i, r in enumerate(results["active"])
            ]
        )
        print(f"\nactive runs: {len(reasons):,} counted votes in all")


def timing(args: argparse.Namespace) -> None:
    """p50/p99 of ActivePlanner.choose on a 1,000-condition study (50 codecs x 20 rates)."""
    rng = np.random.default_rng(7)
    n_codecs, n_rates, n_images = 50, 20, 30
    codec = np.repeat([f"c{i:02d}" for i in range(n_codecs)], n_rates)
    factor = np.repeat(np.exp(rng.normal(0, 0.3, n_codecs)), n_rates)
    bpp = np.tile(np.geomspace(0.04, 0.5, n_rates), n_codecs) * factor
    elo = 450 * np.log(bpp / factor)
    elo -= elo.mean()
    k = elo.size
    points = pd.DataFrame({"condition": [f"k{i}" for i in range(k)], "codec": codec, "bpp": bpp})
    # Posterior of a balanced study with 30 votes per condition: precision = prior +
    # information of random pairs.
    a = rng.integers(0, k, 15 * k)
    b = (a + rng.integers(1, k, a.size)) % k
    from analysis.active import pair_information

    info = pair_information(elo[a] - elo[b])
    precision = np.eye(k) / 600**2
    np.add.at(precision, (a, a), info)
    np.add.at(precision, (b, b), info)
    np.add.at(precision, (a, b), -info)
    np.add.at(precision, (b, a), -info)
    centre = np.eye(k) - 1.0 / k
    covariance = centre @ np.linalg.inv(precision) @ centre
    mean = elo + rng.multivariate_normal(np.zeros(k), covariance, method="eigh")
    started = time.perf_counter()
    planner = ActivePlanner.from_posterior(
        mean, covariance, points, anchor="c00", condition_ids=list(range(1000, 1000 + k))
    )
    build = time.perf_counter() - started
    blob = planner.to_bytes()
    started = time.perf_counter()
    planner = ActivePlanner.from_bytes(blob)
    load = time.perf_counter() - started
    choice_rng = random.Random(7)
    state = ScheduleState(
        image_ids=list(range(n_images)), condition_ids=list(range(1000, 1000 + k))
    )
    state.planner = planner
    times = []
    for step in range(args.timing_choices):
        rater = choice_rng.randrange(300)
        if step % args.refresh_every == 0:
            state.pending = {}
        started = time.perf_counter()
        picked = active_scheduler(rater, state, choice_rng)
        times.append(time.perf_counter() - started)
        assert picked is not None
        state.record(rater, *picked)
    ms = np.asarray(times) * 1000
    print(
        f"1,000 conditions ({n_codecs} codecs x {n_rates} rates, {n_images} images): "
        f"build {build:.1f} s, planner {len(blob) / 1e6:.1f} MB, load {load * 1000:.0f} ms; "
        f"choose over {ms.size} calls (pending reset every {args.refresh_every}): "
        f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, "
        f"max {ms.max():.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--strategies", default="balanced,active")
    parser.add_argument("--target", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--timing", action="store_true", help="only time choose()")
    parser.add_argument("--timing-choices", type=int, default=3000)
    parser.add_argument("--refresh-every", type=int, default=500)
    args = parser.parse_args()
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    if args.timing:
        timing(args)
    else:
        run_seeds(args)


if __name__ == "__main__":
    main()
