"""Simulation-based calibration of BD-rate intervals.

Simulate many studies with known BD-rates (:mod:`analysis.simulate`), fit each, and count
how often the 95% intervals contain the truth. Used by ``bench/calibration.py`` (20+
PICO-scale studies) and, reduced, by the tests; also a way to check a planned study
design before paying raters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.fit import fit_study
from analysis.simulate import SimulationDesign, simulate_study

#: Columns of the per-codec calibration records.
CALIBRATION_COLUMNS: Final = (
    "seed",
    "codec",
    "truth",
    "bd_rate",
    "bd_rate_lo",
    "bd_rate_hi",
    "covered",
    "seconds",
    "converged",
)


def calibrate(
    seeds: Iterable[int],
    *,
    design: SimulationDesign | None = None,
    fit_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit one simulated study per seed and compare BD-rate intervals with the truth.

    Parameters
    ----------
    seeds : iterable of int
        One study per seed (the fit uses the same seed).
    design : SimulationDesign, optional
        The simulated study; PICO-like when omitted.
    fit_options : dict, optional
        Keyword arguments of :func:`analysis.fit.fit_study` (``model``, ``fast``,
        ``draws``, ...).

    Returns
    -------
    DataFrame
        Columns :data:`CALIBRATION_COLUMNS`, one row per study and non-anchor codec;
        ``covered`` is whether the 95% interval contains the true BD-rate (False when no
        interval exists).

    Raises
    ------
    ValueError
        If the design is invalid.
    """
    options = dict(fit_options or {})
    rows = []
    for seed in seeds:
        study = simulate_study(design, seed=seed)
        result = fit_study(study.votes, study.conditions, anchor=study.anchor, seed=seed, **options)
        bd = result.bd_rate.set_index("codec")
        median_of = bd["bd_rate"].astype("float64")
        lo_of = bd["bd_rate_lo"].astype("float64")
        hi_of = bd["bd_rate_hi"].astype("float64")
        for codec, truth in study.true_bd_rate.items():
            lo, hi = float(lo_of.loc[codec]), float(hi_of.loc[codec])
            rows.append(
                {
                    "seed": seed,
                    "codec": codec,
                    "truth": truth,
                    "bd_rate": float(median_of.loc[codec]),
                    "bd_rate_lo": lo,
                    "bd_rate_hi": hi,
                    "covered": bool(lo <= truth <= hi),
                    "seconds": result.diagnostics["seconds"],
                    "converged": bool(result.diagnostics["converged"]),
                }
            )
    return pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))


def calibration_summary(records: pd.DataFrame) -> dict[str, float]:
    """Coverage, bias and interval width of calibration records.

    Parameters
    ----------
    records : DataFrame
        From :func:`calibrate`.

    Returns
    -------
    dict
        ``coverage`` (share of intervals containing the truth), ``n_intervals``,
        ``bias`` (mean of median minus truth, percent points), ``mean_abs_error``,
        ``width`` (mean interval width, points), ``n_studies``, ``converged_share``.
    """
    error = records["bd_rate"] - records["truth"]
    return {
        "coverage": float(records["covered"].mean()),
        "n_intervals": len(records),
        "bias": float(error.mean()),
        "mean_abs_error": float(np.abs(error).mean()),
        "width": float((records["bd_rate_hi"] - records["bd_rate_lo"]).mean()),
        "n_studies": int(records["seed"].nunique()),
        "converged_share": float(records.groupby("seed")["converged"].first().mean()),
    }
