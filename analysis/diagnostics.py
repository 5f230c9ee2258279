"""Convergence diagnostics of a posterior sample, and the thresholds a fit must meet."""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Final

import arviz_stats as azs
import numpy as np
from xarray import DataTree

#: Distributions whose versions a diagnostics record lists.
VERSIONED_PACKAGES: Final = (
    "numpy",
    "scipy",
    "pandas",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz-base",
    "arviz-stats",
    "matplotlib",
)


@dataclass(frozen=True)
class ConvergenceThresholds:
    """Limits a fit must meet to count as converged.

    Attributes
    ----------
    r_hat_max : float
        Largest acceptable rank-normalised split R-hat (Vehtari et al. 2021 recommend
        1.01).
    ess_bulk_min : float
        Smallest acceptable bulk effective sample size of any variable (Vehtari et al.
        2021: at least 100 per chain for four chains, i.e. 400).
    divergences_max : int
        Largest acceptable number of divergent transitions (any divergence means the
        sampler may have missed part of the posterior).
    """

    r_hat_max: float = 1.01
    ess_bulk_min: float = 400.0
    divergences_max: int = 0


def sampling_diagnostics(
    idata: DataTree,
    var_names: Sequence[str],
    *,
    thresholds: ConvergenceThresholds | None = None,
) -> dict[str, Any]:
    """Summarise the convergence of an MCMC fit.

    Parameters
    ----------
    idata : DataTree
        Result of a sampler, with ``posterior`` and ``sample_stats`` groups.
    var_names : sequence of str
        Posterior variables to check.
    thresholds : ConvergenceThresholds, optional
        Limits for ``converged``; the defaults when omitted.

    Returns
    -------
    dict
        ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``,
        ``converged`` (bool), ``convergence_problems`` (list of sentences, empty when
        converged) and ``thresholds``. JSON-ready: non-finite values become None.

    Raises
    ------
    KeyError
        If a variable or group is missing from ``idata``.
    """
    thresholds = ConvergenceThresholds() if thresholds is None else thresholds
    r_hat: list[float] = []
    ess_bulk: list[float] = []
    ess_tail: list[float] = []
    for name in var_names:
        values = idata.posterior[name]
        r_hat.append(float(np.max(azs.rhat(values).values)))
        ess_bulk.append(float(np.min(azs.ess(values, method="bulk").values)))
        ess_tail.append(float(np.min(azs.ess(values, method="tail").values)))
    divergences = int(idata.sample_stats["diverging"].sum())
    r_hat_max = max(r_hat)
    ess_bulk_min = min(ess_bulk)

    problems: list[str] = []
    if not (math.isfinite(r_hat_max) and r_hat_max <= thresholds.r_hat_max):
        problems.append(f"R-hat {r_hat_max:.3f} exceeds {thresholds.r_hat_max}")
    if not (math.isfinite(ess_bulk_min) and ess_bulk_min >= thresholds.ess_bulk_min):
        problems.append(f"bulk ESS {ess_bulk_min:.0f} is below {thresholds.ess_bulk_min:.0f}")
    if divergences > thresholds.divergences_max:
        problems.append(f"{divergences} divergent transitions")
    return {
        "converged": not problems,
        "convergence_problems": problems,
        "r_hat_max": _finite_or_none(r_hat_max),
        "ess_bulk_min": _finite_or_none(ess_bulk_min),
        "ess_tail_min": _finite_or_none(min(ess_tail)),
        "divergences": divergences,
        "thresholds": asdict(thresholds),
    }


def library_versions() -> dict[str, str]:
    """Versions of the numerical packages a result depends on.

    Returns
    -------
    dict
        Package name to version string ("not installed" when absent).
    """
    versions: dict[str, str] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
