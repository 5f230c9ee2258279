"""Speed of the study fit on a PICO-scale simulated study, against a SciPy yardstick.

    .venv/bin/python bench/fit.py [--seed N] [--votes N] [--raters N]

Simulates 75,000 votes from 600 raters over 6 codecs x 8 rates x 30 images
(analysis.simulate's PICO-like design) and times, each in a fresh process (so compile
caches and memory are those of a real run):

- the yardstick: a plain maximum-likelihood Bradley-Terry fit with SciPy (L-BFGS on
  counts per ordered pair), on the same data;
- ``fit_study`` with ``bt`` and ``bt-rater`` (NUTS via nutpie, default settings) and
  ``--fast`` (MAP + Laplace) for both; wall time of the whole call, convergence, and
  peak resident memory of the process.

Targets (issue 4, on the 2-core machines): bt <= 20 s, bt-rater <= 60 s with R-hat <=
1.01, --fast <= 3 s, peak memory <= 2 GB. The machine is shared: compare within a run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = ("scipy-ml", "bt", "bt-rater", "bt-fast", "bt-rater-fast")


def _study(seed: int, votes: int, raters: int):
    from analysis.simulate import SimulationDesign, simulate_study

    return simulate_study(SimulationDesign(n_votes=votes, n_raters=raters), seed=seed)


def _scipy_ml(study) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    started = time.perf_counter()
    votes = study.votes[study.votes["golden"] == 0]
    labels = pd.Index(pd.unique(study.conditions["condition"]))
    a = labels.get_indexer(votes["condition_a"])
    b = labels.get_indexer(votes["condition_b"])
    win = (votes["choice"] == "a").to_numpy(dtype=float)
    k = len(labels)
    key = a * k + b
    pairs, inverse = np.unique(key, return_inverse=True)
    wins = np.bincount(inverse, win)
    n = np.bincount(inverse)
    pa, pb = pairs // k, pairs % k
    slope = np.log(10.0) / 400.0

    def negative(free: np.ndarray) -> tuple[float, np.ndarray]:
        elo = np.append(free, -free.sum())
        d = slope * (elo[pa] - elo[pb])
        loglik = np.sum(wins * log_expit(d) + (n - wins) * log_expit(-d))
        per_pair = slope * (wins - n * expit(d))
        grad = np.bincount(pa, per_pair, k) - np.bincount(pb, per_pair, k)
        return -loglik, -(grad[:-1] - grad[-1])

    found = minimize(negative, np.zeros(k - 1), jac=True, method="L-BFGS-B")
    return {"seconds": time.perf_counter() - started, "converged": bool(found.success)}


def _fit(study, case: str) -> dict[str, object]:
    from analysis.fit import fit_study

    model = case.removesuffix("-fast")
    started = time.perf_counter()
    result = fit_study(
        study.votes,
        study.conditions,
        anchor=study.anchor,
        seed=1,
        model=model,
        fast=case.endswith("-fast"),
    )
    seconds = time.perf_counter() - started
    d = result.diagnostics
    bd = result.bd_rate.set_index("codec")
    return {
        "seconds": seconds,
        "sampling_seconds": d["sampling_seconds"],
        "converged": d["converged"],
        "r_hat_max": d["r_hat_max"],
        "ess_bulk_min": d["ess_bulk_min"],
        "divergences": d["divergences"],
        "bd_width_mean": float((bd["bd_rate_hi"] - bd["bd_rate_lo"]).mean()),
        "bd_covered": int(
            sum(
                bd.loc[c, "bd_rate_lo"] <= t <= bd.loc[c, "bd_rate_hi"]
                for c, t in study.true_bd_rate.items()
            )
        ),
    }


def _one(case: str, seed: int, votes: int, raters: int) -> None:
    study = _study(seed, votes, raters)
    record = _scipy_ml(study) if case == "scipy-ml" else _fit(study, case)
    # ru_maxrss is in KiB on Linux.
    record["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--votes", type=int, default=75_000)
    parser.add_argument("--raters", type=int, default=600)
    parser.add_argument("--one", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if args.one:
        _one(args.one, args.seed, args.votes, args.raters)
        return
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {args.votes:,} votes, {args.raters} raters, "
        f"seed {args.seed}"
    )
    print(
        "| case | wall s | sampling s | R-hat max | bulk ESS min | div. | BD covered | "
        "mean BD width | peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        run = subprocess.run(
            [sys.executable, __file__, "--one", case, "--seed", str(args.seed),
             "--votes", str(args.votes), "--raters", str(args.raters)],
            capture_output=True, text=True, check=False, cwd=REPO,
        )  # fmt: skip
        if run.returncode != 0:
            print(f"| {case} | failed: {run.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])

        def cell(key: str, spec: str, record: dict[str, object] = r) -> str:
            value = record.get(key)
            return "" if value is None else format(value, spec)

        print(
            f"| {case} | {cell('seconds', '.2f')} | {cell('sampling_seconds', '.1f')} | "
            f"{cell('r_hat_max', '.4f')} | {cell('ess_bulk_min', '.0f')} | "
            f"{cell('divergences', 'd')} | {cell('bd_covered', 'd')} | "
            f"{cell('bd_width_mean', '.1f')} | {cell('peak_mib', '.0f')} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
