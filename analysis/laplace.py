"""Fast approximate posterior: maximum a posteriori plus a Laplace (Gaussian) approximation.

For live previews while a study runs and for active pair selection, where NUTS is too
slow. The density is the one NUTS samples (the same PyMC model, compiled once with its
exact gradient); the optimum is found by L-BFGS in the unconstrained space, the Hessian
there by central differences of the exact gradient, and draws from the Gaussian are
mapped back through the model's transforms (so zero-sum Elo stays zero-sum, a lapse stays
in (0, 1)). On the PICO-like simulations BD-rate intervals from it are within a few
tenths of a point of NUTS (BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pymc as pm
import pytensor
import scipy.linalg
import xarray as xr
from pymc.blocking import DictToArrayBijection, RaveledVars
from scipy.optimize import minimize
from xarray import DataTree

from analysis.model import ELO_VAR, BTPriors, ModelOptions, build_model, resolve_options
from analysis.types import VoteData

#: Draws from the Gaussian approximation, by default (as many as NUTS keeps).
DEFAULT_LAPLACE_DRAWS: Final = 4000
#: Relative step of the central differences of the gradient (in unconstrained units,
#: which are O(1) to O(1000)); the truncation error is O(step^2).
HESSIAN_STEP: Final = 1e-4
#: Gradient tolerance of the optimiser (log density per unconstrained unit).
MAP_GTOL: Final = 1e-6
#: Most iterations of the optimiser.
MAP_MAX_ITER: Final = 5000
#: Most Newton steps after L-BFGS, halvings of a step that does not descend, most
#: trust-region steps when the Hessian is not positive definite, and the gradient
#: below which the mode counts as found (log density per unconstrained unit).
NEWTON_MAX_STEPS: Final = 10
NEWTON_MAX_HALVINGS: Final = 30
TRUST_MAX_STEPS: Final = 100
NEWTON_GTOL: Final = 1e-3
#: Initial trust radius of the Newton steps, in unconstrained units.
TRUST_RADIUS: Final = 100.0


class LaplaceError(RuntimeError):
    """The Laplace approximation failed: no optimum, or a Hessian that is not negative
    definite there (the posterior is not locally Gaussian, e.g. a parameter the data do
    not identify)."""


@dataclass(frozen=True)
class LaplaceFit:
    """A MAP + Laplace fit.

    Attributes
    ----------
    idata : DataTree
        Group ``posterior`` with dims ``chain`` (1) and ``draw``, like a sampler's.
    map_point : dict of str to ndarray
        Values of the model's free variables at the optimum (constrained).
    covariance : ndarray
        Covariance of the Gaussian in the unconstrained space.
    converged : bool
        Whether the optimiser met its tolerance.
    seconds : float
        Wall time (compile, optimise, Hessian, draws).
    elo_covariance : ndarray or None
        Covariance of the condition scores ``elo`` (constrained, sum zero) under the
        Gaussian, by the delta method at the mode: ``J covariance J^T`` with ``J`` the
        Jacobian of ``elo`` in the unconstrained coordinates (exact for ``bt``, whose
        transform is linear). None when the model has no ``elo``. Active pair selection
        (:mod:`analysis.active`) starts from it and ``map_point["elo"]``.
    """

    idata: DataTree
    map_point: dict[str, npt.NDArray[np.float64]]
    covariance: npt.NDArray[np.float64]
    converged: bool
    seconds: float
    elo_covariance: npt.NDArray[np.float64] | None = None


def fit_laplace(
    data: VoteData,
    *,
    options: ModelOptions | None = None,
    priors: BTPriors | None = None,
    draws: int = DEFAULT_LAPLACE_DRAWS,
    random_seed: int = 0,
) -> LaplaceFit:
    """MAP and Laplace approximation of a model's posterior, with draws from it.

    Parameters
    ----------
    data : VoteData
        From :func:`analysis.model.count_votes`.
    options : ModelOptions, optional
        Model choice; the defaults resolved against ``data`` when omitted.
    priors : BTPriors, optional
        Prior scales.
    draws : int
        Draws from the Gaussian approximation.
    random_seed : int
        Seed of the draws; the same seed gives the same draws.

    Returns
    -------
    LaplaceFit

    Raises
    ------
    LaplaceError
        If the Hessian at the optimum is not negative definite.
    ValueError
        If ``draws`` is below 1 or the model cannot be built.
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    started = time.perf_counter()
    options = resolve_options(data) if options is None else options
    model = build_model(data, options=options, priors=priors, centered=False)
    return laplace_model(model, draws=draws, random_seed=random_seed, started=started)


def laplace_model(
    model: pm.Model, *, draws: int, random_seed: int, started: float | None = None
) -> LaplaceFit:
    """MAP and Laplace approximation of any PyMC model with continuous free variables.

    Parameters
    ----------
    model : pm.Model
    draws : int
        Draws from the Gaussian approximation.
    random_seed : int
        Seed of the draws.
    started : float, optional
        ``time.perf_counter()`` at the start of the caller's work, for ``seconds``.

    Returns
    -------
    LaplaceFit

    Raises
    ------
    LaplaceError
        If the Hessian at the optimum is not negative definite.
    """
    started = time.perf_counter() if started is None else started
    value_grad = model.logp_dlogp_function(ravel_inputs=True)
    value_grad.set_extra_values({})
    initial = model.initial_point()
    names = [var.name for var in value_grad._grad_vars]
    start = DictToArrayBijection.map({name: initial[name] for name in names})

    def negative(x: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        with np.errstate(all="ignore"):
            logp, grad = value_grad(x)
        grad = -np.asarray(grad, dtype=np.float64)
        if not (np.isfinite(logp) and np.all(np.isfinite(grad))):
            # Outside where the density can be evaluated: a wall for the optimisers.
            return float("inf"), np.zeros_like(grad)
        return -float(logp), grad

    # Unconstrained units run from log-odds (~1) to Elo points (~100s): L-BFGS works on
    # coordinates scaled by the curvature at the start, so that all are O(1).
    scale = np.sqrt(
        np.clip(np.abs(np.diag(_hessian_of_negative(negative, start.data))), 1e-8, None)
    )

    def scaled(y: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        value, grad = negative(y / scale)
        return value, grad / scale

    found = minimize(
        scaled,
        start.data * scale,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": MAP_GTOL, "ftol": 0.0, "maxiter": MAP_MAX_ITER, "maxcor": 30},
    )
    found.x = found.x / scale
    # L-BFGS stalls on the badly scaled directions (Elo in hundreds of points, a lapse
    # in log-odds); Newton steps with the finite-difference Hessian finish the job.
    optimum, precision, converged = _newton_polish(negative, np.asarray(found.x, np.float64))
    try:
        cholesky = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        raise LaplaceError(
            "the Hessian at the posterior mode is not negative definite; "
            "the data do not identify every parameter of this model"
        ) from None
    rng = np.random.default_rng(random_seed)
    standard = rng.standard_normal((draws, optimum.size))
    # x = mode + L^-T z has covariance (L L^T)^-1 = precision^-1.
    unconstrained = optimum + np.linalg.solve(cholesky.T, standard.T).T
    identity = np.eye(optimum.size)
    covariance = np.linalg.solve(cholesky.T, np.linalg.solve(cholesky, identity))

    evaluate = _constrained_function(model, start)
    constrained = _constrained_draws(evaluate, unconstrained)
    map_point = {
        name: values[0] for name, values in _constrained_draws(evaluate, optimum[None, :]).items()
    }
    elo_covariance = (
        _zero_sum_projection(_delta_covariance(evaluate, optimum, covariance, ELO_VAR))
        if ELO_VAR in map_point
        else None
    )
    posterior = xr.Dataset(
        {
            name: xr.DataArray(
                values[np.newaxis, ...],
                dims=("chain", "draw", *_dims(model, name, values.ndim - 1)),
            )
            for name, values in constrained.items()
        },
        coords={
            "chain": [0],
            "draw": np.arange(draws),
            **{dim: list(model.coords[dim]) for dim in _used_dims(model, constrained)},
        },
    )
    posterior.attrs["laplace_converged"] = int(converged)
    idata = DataTree.from_dict({"posterior": posterior})
    return LaplaceFit(
        idata=idata,
        map_point=map_point,
        covariance=covariance,
        converged=converged,
        seconds=round(time.perf_counter() - started, 3),
        elo_covariance=elo_covariance,
    )


def _newton_polish(
    negative: Any, point: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], bool]:
    """Newton steps with the finite-difference Hessian from near the mode.

    Plain Newton steps (halved until they descend) while the Hessian is positive
    definite, which from L-BFGS's end point converge in a few steps; a trust-region
    method where it is not (a mixture posterior far from its mode).
    """
    value, grad = negative(point)
    for _ in range(NEWTON_MAX_STEPS):
        hessian = _hessian_of_negative(negative, point)
        if np.max(np.abs(grad)) < NEWTON_GTOL:
            return point, hessian, True
        try:
            step = scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian), grad)
        except np.linalg.LinAlgError:
            break
        for _halving in range(NEWTON_MAX_HALVINGS):
            candidate_value, candidate_grad = negative(point - step)
            if candidate_value <= value:
                break
            step = step / 2.0
        else:
            break
        point, value, grad = point - step, candidate_value, candidate_grad
    found = minimize(
        lambda x: negative(x)[0],
        point,
        jac=lambda x: negative(x)[1],
        hess=lambda x: _hessian_of_negative(negative, x),
        method="trust-exact",
        options={
            "gtol": NEWTON_GTOL,
            "maxiter": TRUST_MAX_STEPS,
            # Unconstrained units run from log-odds (~1) to Elo points (~100s).
            "initial_trust_radius": TRUST_RADIUS,
            "max_trust_radius": 100 * TRUST_RADIUS,
        },
    )
    optimum = np.asarray(found.x, dtype=np.float64)
    grad = negative(optimum)[1]
    converged = bool(np.max(np.abs(grad)) < NEWTON_GTOL)
    return optimum, _hessian_of_negative(negative, optimum), converged


def _hessian_of_negative(negative: Any, point: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Hessian of the negative log density by central differences of its gradient."""
    n = point.size
    hessian = np.empty((n, n))
    for i in range(n):
        step = HESSIAN_STEP * max(1.0, abs(point[i]))
        up, down = point.copy(), point.copy()
        up[i] += step
        down[i] -= step
        hessian[:, i] = (negative(up)[1] - negative(down)[1]) / (2.0 * step)
    if not np.all(np.isfinite(hessian)):
        hessian = np.nan_to_num(hessian, nan=0.0, posinf=0.0, neginf=0.0)
    return (hessian + hessian.T) / 2.0


def _constrained_function(
    model: pm.Model, template: RaveledVars
) -> Callable[[npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]]:
    """A function from one unconstrained point to the model's free variables, constrained."""
    names = [info[0] for info in template.point_map_info]
    by_name = {value.name: value for value in model.value_vars}
    values = [by_name[name] for name in names]
    free = [*model.free_RVs, *model.deterministics]
    outputs = model.replace_rvs_by_values(free)
    function = pytensor.function(values, outputs, on_unused_input="ignore")

    def evaluate(row: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.float64]]:
        point = DictToArrayBijection.rmap(RaveledVars(row, template.point_map_info))
        out = function(*[point[name] for name in names])
        return {
            rv.name: np.asarray(value, dtype=np.float64)
            for rv, value in zip(free, out, strict=True)
        }

    return evaluate


def _constrained_draws(
    evaluate: Callable[[npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]],
    unconstrained: npt.NDArray[np.float64],
) -> dict[str, npt.NDArray[np.float64]]:
    """Map unconstrained draws (rows) to the model's free variables, constrained."""
    result: dict[str, list[npt.NDArray[np.float64]]] = {}
    for row in unconstrained:
        for name, value in evaluate(row).items():
            result.setdefault(name, []).append(value)
    return {name: np.stack(rows) for name, rows in result.items()}


def _delta_covariance(
    evaluate: Callable[[npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]],
    optimum: npt.NDArray[np.float64],
    covariance: npt.NDArray[np.float64],
    name: str,
) -> npt.NDArray[np.float64]:
    """Covariance of one constrained variable by the delta method at the mode."""
    columns = []
    for i in range(optimum.size):
        step = HESSIAN_STEP * max(1.0, abs(optimum[i]))
        up, down = optimum.copy(), optimum.copy()
        up[i] += step
        down[i] -= step
        columns.append((evaluate(up)[name].ravel() - evaluate(down)[name].ravel()) / (2.0 * step))
    jacobian = np.stack(columns, axis=1)
    result = jacobian @ covariance @ jacobian.T
    return (result + result.T) / 2.0


def _zero_sum_projection(covariance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The covariance of scores that sum to zero, as the models' Elo scores do: its rows
    sum to zero. The finite differences of :func:`_delta_covariance` leave a rounding
    residue (about 1e-6 in rows of entries in the hundreds) that this removes."""
    centre = np.eye(covariance.shape[0]) - 1.0 / covariance.shape[0]
    return centre @ covariance @ centre


def _dims(model: pm.Model, name: str, ndim: int) -> tuple[str, ...]:
    dims = model.named_vars_to_dims.get(name)
    if dims is not None and len(dims) == ndim:
        return tuple(str(d) for d in dims)
    return tuple(f"{name}_dim_{i}" for i in range(ndim))


def _used_dims(model: pm.Model, constrained: dict[str, npt.NDArray[np.float64]]) -> set[str]:
    used: set[str] = set()
    for name, values in constrained.items():
        dims = model.named_vars_to_dims.get(name)
        if dims is not None and len(dims) == values.ndim - 1:
            used.update(str(d) for d in dims if d is not None)
    return used
