"""Bjøntegaard-delta rate (BD-rate) with a quality measure of choice (here Elo).

Over the quality interval both curves cover, BD-rate is the average difference of log
rate at equal quality, turned into a ratio:

    BD = exp( 1/(Q_hi - Q_lo) * integral_{Q_lo}^{Q_hi} [ln R_test(Q) - ln R_anchor(Q)] dQ ) - 1,

in percent; negative means the test codec needs fewer bits than the anchor at equal
quality. ln R is interpolated against quality with a monotone piecewise cubic (PCHIP,
``scipy.interpolate.PchipInterpolator``), as current JVET practice does for PSNR, and
integrated exactly.

:func:`bd_rate` computes one BD-rate with SciPy's interpolator. :func:`bd_rate_draws`
computes the same quantity for thousands of posterior draws at once; it evaluates the
same PCHIP interpolant (SciPy's derivative rule, written out for arrays) and agrees
with :func:`bd_rate` to rounding error (checked by the tests).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator, make_interp_spline

#: Fewest rate points a curve needs for an interpolant.
MIN_CURVE_POINTS: Final = 2
#: Percent per unit ratio.
PERCENT: Final = 100.0
#: Degree of the polynomial of ``interp="cubic"`` (VCEG-M33's original method), and the
#: fewest points it needs.
CUBIC_DEGREE: Final = 3
#: Fewest points for an Akima spline; with fewer, the straight line (as ``bjontegaard``).
MIN_AKIMA_POINTS: Final = 3


class Interpolation(StrEnum):
    """How ln(rate) is interpolated against quality."""

    PCHIP = "pchip"
    """Monotone piecewise cubic Hermite (current JVET practice); the default."""
    AKIMA = "akima"
    """Akima spline (SciPy's), the straight line for two points."""
    CUBIC = "cubic"
    """Least-squares cubic polynomial through all points (VCEG-M33)."""


class BDRateFailure(StrEnum):
    """Why a BD-rate could not be computed."""

    TOO_FEW_POINTS = "too_few_points"
    """A curve has fewer than two points, or rates and qualities differ in length."""
    INVALID_VALUES = "invalid_values"
    """A rate is not positive and finite, or a quality is not finite."""
    ANCHOR_NOT_INCREASING = "anchor_not_increasing"
    """The anchor's quality does not strictly increase with its rate."""
    TEST_NOT_INCREASING = "test_not_increasing"
    """The test codec's quality does not strictly increase with its rate."""
    NO_OVERLAP = "no_overlap"
    """The quality ranges of the two curves do not overlap."""


class BDRateError(ValueError):
    """A BD-rate cannot be computed from the given curves.

    Parameters
    ----------
    reason : BDRateFailure
        Machine-readable cause (counted per codec in fit diagnostics).
    message : str
        Human-readable explanation.
    """

    def __init__(self, reason: BDRateFailure, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def bd_rate(
    rate_anchor: ArrayLike,
    quality_anchor: ArrayLike,
    rate_test: ArrayLike,
    quality_test: ArrayLike,
    *,
    interp: Interpolation | str = Interpolation.PCHIP,
) -> float:
    """Bjøntegaard-delta rate of a test curve against an anchor curve, in percent.

    Parameters
    ----------
    rate_anchor, quality_anchor : array_like
        Rate points (e.g. bpp; any positive unit, the same for both curves) and their
        quality (e.g. Elo, PSNR) for the anchor, in any order.
    rate_test, quality_test : array_like
        The same for the codec under test. The curves may have different numbers of
        points.
    interp : Interpolation or str
        ``pchip`` (default), ``akima`` or ``cubic`` (the ``bjontegaard`` package's
        methods).

    Returns
    -------
    float
        BD-rate in percent; negative means fewer bits than the anchor at equal quality.

    Raises
    ------
    BDRateError
        If a curve has fewer than two points, a rate is not positive and finite, a
        quality is not finite, quality does not strictly increase with rate on either
        curve, or the quality ranges do not overlap (touching at one value counts as
        no overlap). ``reason`` tells which. ``cubic`` also needs four points per curve.
    ValueError
        If ``interp`` is not a known method.
    """
    method = Interpolation(interp)
    ln_rate_anchor, q_anchor = _curve(rate_anchor, quality_anchor, "anchor")
    ln_rate_test, q_test = _curve(rate_test, quality_test, "test")
    q_lo = max(q_anchor[0], q_test[0])
    q_hi = min(q_anchor[-1], q_test[-1])
    if not q_hi > q_lo:
        raise BDRateError(
            BDRateFailure.NO_OVERLAP,
            f"quality ranges do not overlap: anchor [{q_anchor[0]:g}, {q_anchor[-1]:g}], "
            f"test [{q_test[0]:g}, {q_test[-1]:g}]",
        )
    area_anchor = _integral(method, q_anchor, ln_rate_anchor, q_lo, q_hi, "anchor")
    area_test = _integral(method, q_test, ln_rate_test, q_lo, q_hi, "test")
    mean_log_ratio = (area_test - area_anchor) / (q_hi - q_lo)
    return float(np.expm1(mean_log_ratio) * PERCENT)


def overlap_fraction(quality_anchor: ArrayLike, quality_test: ArrayLike) -> float:
    """Share of the two curves' joint quality range that both cover.

    The length of the intersection of the quality ranges over that of their union, as
    the ``bjontegaard`` package computes it (it warns below 0.75): 1 when the ranges
    coincide, 0 when they do not overlap.

    Parameters
    ----------
    quality_anchor, quality_test : array_like
        Qualities of the two curves' points.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        If a curve has no point.
    """
    qa = np.asarray(quality_anchor, dtype=np.float64).ravel()
    qt = np.asarray(quality_test, dtype=np.float64).ravel()
    if qa.size == 0 or qt.size == 0:
        raise ValueError("each curve needs at least one point")
    union = max(qa.max(), qt.max()) - min(qa.min(), qt.min())
    if union <= 0:
        return 0.0
    return max(min(qa.max(), qt.max()) - max(qa.min(), qt.min()), 0.0) / union


def _integral(
    method: Interpolation,
    quality: npt.NDArray[np.float64],
    ln_rate: npt.NDArray[np.float64],
    lo: float,
    hi: float,
    name: str,
) -> float:
    """Integral over [lo, hi] of ln(rate) interpolated against quality."""
    if method is Interpolation.PCHIP:
        return float(PchipInterpolator(quality, ln_rate).integrate(lo, hi))
    if method is Interpolation.AKIMA:
        if quality.size >= MIN_AKIMA_POINTS:
            return float(Akima1DInterpolator(quality, ln_rate).integrate(lo, hi))
        return float(make_interp_spline(quality, ln_rate, k=1).integrate(lo, hi))
    if quality.size <= CUBIC_DEGREE:
        raise BDRateError(
            BDRateFailure.TOO_FEW_POINTS,
            f"{name} curve has {quality.size} points; cubic interpolation needs {CUBIC_DEGREE + 1}",
        )
    antiderivative = np.polyint(np.polyfit(quality, ln_rate, CUBIC_DEGREE))
    return float(np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo))


def _curve(
    rate: ArrayLike, quality: ArrayLike, name: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Log rate and quality of one curve, sorted by rate, after checking it."""
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.size != q.size:
        raise BDRateError(
            BDRateFailure.TOO_FEW_POINTS,
            f"{name} curve has {r.size} rates but {q.size} qualities",
        )
    if r.size < MIN_CURVE_POINTS:
        raise BDRateError(
            BDRateFailure.TOO_FEW_POINTS,
            f"{name} curve has {r.size} point(s); at least {MIN_CURVE_POINTS} are needed",
        )
    if not (np.all(np.isfinite(r)) and np.all(r > 0) and np.all(np.isfinite(q))):
        raise BDRateError(
            BDRateFailure.INVALID_VALUES,
            f"{name} curve needs positive finite rates and finite qualities",
        )
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    if not (np.all(np.diff(r) > 0) and np.all(np.diff(q) > 0)):
        reason = (
            BDRateFailure.ANCHOR_NOT_INCREASING
            if name == "anchor"
            else BDRateFailure.TEST_NOT_INCREASING
        )
        raise BDRateError(
            reason, f"{name} quality does not strictly increase with rate: {q.tolist()}"
        )
    return np.log(r), q


@dataclass(frozen=True)
class BDRateDraws:
    """BD-rates of one test curve against one anchor curve, per posterior draw.

    Attributes
    ----------
    percent : ndarray of float, shape (n_draws,)
        BD-rate in percent; NaN where the draw is unusable.
    failures : ndarray of object, shape (n_draws,)
        The :class:`BDRateFailure` of each unusable draw, None for usable ones.
    """

    percent: npt.NDArray[np.float64]
    failures: npt.NDArray[np.object_]

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        """Mask of the draws that gave a BD-rate."""
        return np.isfinite(self.percent)

    def failure_counts(self) -> Counter[BDRateFailure]:
        """Number of unusable draws for each reason."""
        return Counter(reason for reason in self.failures if reason is not None)


def bd_rate_draws(
    rate_anchor: ArrayLike,
    quality_anchor: ArrayLike,
    rate_test: ArrayLike,
    quality_test: ArrayLike,
) -> BDRateDraws:
    """BD-rate of a test curve against an anchor for many draws of the qualities.

    Each draw gives the same result as :func:`bd_rate` on that draw's qualities, or
    records the :class:`BDRateFailure` that :func:`bd_rate` would raise (checked in the
    same order: anchor curve, test curve, overlap).

    Parameters
    ----------
    rate_anchor : array_like, shape (k_anchor,)
        Anchor rate points, shared by all draws.
    quality_anchor : array_like, shape (n_draws, k_anchor)
        Anchor quality of each point in each draw.
    rate_test : array_like, shape (k_test,)
        Test rate points.
    quality_test : array_like, shape (n_draws, k_test)
        Test quality of each point in each draw.

    Returns
    -------
    BDRateDraws

    Raises
    ------
    ValueError
        If the array shapes disagree.
    """
    r_anchor = np.asarray(rate_anchor, dtype=np.float64).ravel()
    r_test = np.asarray(rate_test, dtype=np.float64).ravel()
    q_anchor = np.atleast_2d(np.asarray(quality_anchor, dtype=np.float64))
    q_test = np.atleast_2d(np.asarray(quality_test, dtype=np.float64))
    if q_anchor.shape[1] != r_anchor.size or q_test.shape[1] != r_test.size:
        raise ValueError("quality arrays must have one column per rate point")
    if q_anchor.shape[0] != q_test.shape[0]:
        raise ValueError("anchor and test qualities must have the same number of draws")
    n_draws = q_anchor.shape[0]
    values = np.full(n_draws, np.nan)
    failures = np.full(n_draws, None, dtype=object)

    ok = np.ones(n_draws, dtype=bool)

    def fail(mask: npt.NDArray[np.bool_], reason: BDRateFailure) -> None:
        """Record ``reason`` for the draws in ``mask`` that have not failed yet."""
        newly = mask & ok
        failures[newly] = reason
        ok[newly] = False

    order_anchor = np.argsort(r_anchor, kind="stable")
    order_test = np.argsort(r_test, kind="stable")
    r_anchor, q_anchor = r_anchor[order_anchor], q_anchor[:, order_anchor]
    r_test, q_test = r_test[order_test], q_test[:, order_test]
    everything = np.ones(n_draws, dtype=bool)
    for name, r, q in (("anchor", r_anchor, q_anchor), ("test", r_test, q_test)):
        not_increasing = (
            BDRateFailure.ANCHOR_NOT_INCREASING
            if name == "anchor"
            else BDRateFailure.TEST_NOT_INCREASING
        )
        if r.size < MIN_CURVE_POINTS:
            fail(everything, BDRateFailure.TOO_FEW_POINTS)
            continue
        if not (np.all(np.isfinite(r)) and np.all(r > 0)):
            fail(everything, BDRateFailure.INVALID_VALUES)
            continue
        fail(~np.all(np.isfinite(q), axis=1), BDRateFailure.INVALID_VALUES)
        if not np.all(np.diff(r) > 0):
            fail(everything, not_increasing)
            continue
        with np.errstate(invalid="ignore"):
            fail(~np.all(np.diff(q, axis=1) > 0, axis=1), not_increasing)
    if not ok.any():
        return BDRateDraws(percent=values, failures=failures)

    q_lo = np.maximum(q_anchor[:, 0], q_test[:, 0])
    q_hi = np.minimum(q_anchor[:, -1], q_test[:, -1])
    with np.errstate(invalid="ignore"):
        fail(~(q_hi > q_lo), BDRateFailure.NO_OVERLAP)
    if ok.any():
        lo, hi = q_lo[ok], q_hi[ok]
        area_anchor = _pchip_integral(q_anchor[ok], np.log(r_anchor), lo, hi)
        area_test = _pchip_integral(q_test[ok], np.log(r_test), lo, hi)
        values[ok] = np.expm1((area_test - area_anchor) / (hi - lo)) * PERCENT
    return BDRateDraws(percent=values, failures=failures)


def _pchip_integral(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Integral over [lo, hi] of the PCHIP interpolant through (x[i], y), row by row.

    ``x`` (n, k) rows and ``y`` (k,) are strictly increasing and x[:, 0] <= lo < hi <=
    x[:, -1]. Derivatives follow ``scipy.interpolate.PchipInterpolator``: a weighted
    harmonic mean of neighbouring slopes inside (all slopes are positive here, so
    SciPy's zero-derivative cases cannot occur), the one-sided three-point rule
    clipped at zero at the ends, and the straight line for two points.
    """
    h = np.diff(x, axis=1)
    slope = np.diff(y)[np.newaxis, :] / h
    d = np.empty_like(x)
    if x.shape[1] == MIN_CURVE_POINTS:
        d[:, 0] = d[:, 1] = slope[:, 0]
    else:
        w1 = 2.0 * h[:, 1:] + h[:, :-1]
        w2 = h[:, 1:] + 2.0 * h[:, :-1]
        d[:, 1:-1] = 1.0 / ((w1 / slope[:, :-1] + w2 / slope[:, 1:]) / (w1 + w2))
        d[:, 0] = _pchip_end_slope(h[:, 0], h[:, 1], slope[:, 0], slope[:, 1])
        d[:, -1] = _pchip_end_slope(h[:, -1], h[:, -2], slope[:, -1], slope[:, -2])
    # Integrate each cubic Hermite piece over its part of [lo, hi], in the local
    # coordinate s = (x - x_j) / h_j clipped to [0, 1].
    s_lo = np.clip((lo[:, np.newaxis] - x[:, :-1]) / h, 0.0, 1.0)
    s_hi = np.clip((hi[:, np.newaxis] - x[:, :-1]) / h, 0.0, 1.0)
    y0, y1 = y[np.newaxis, :-1], y[np.newaxis, 1:]
    d0, d1 = d[:, :-1], d[:, 1:]

    def antiderivative(s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        s2, s3, s4 = s * s, s**3, s**4
        return (
            y0 * (s4 / 2 - s3 + s)
            + h * d0 * (s4 / 4 - 2 * s3 / 3 + s2 / 2)
            + y1 * (-s4 / 2 + s3)
            + h * d1 * (s4 / 4 - s3 / 3)
        )

    return np.sum(h * (antiderivative(s_hi) - antiderivative(s_lo)), axis=1)


def _pchip_end_slope(
    h0: npt.NDArray[np.float64],
    h1: npt.NDArray[np.float64],
    m0: npt.NDArray[np.float64],
    m1: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """SciPy's one-sided three-point end derivative for increasing data."""
    d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    return np.where(d > 0, d, 0.0)


def rate_ratio_draws(
    rate_anchor: ArrayLike,
    quality_anchor: ArrayLike,
    rate_test: ArrayLike,
    quality_test: ArrayLike,
    anchor_rates: ArrayLike,
    *,
    linear: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Rate of the test codec over the anchor's at equal quality, per draw and anchor rate.

    At anchor rate R, the anchor's quality Q = Q_anchor(R) is read off its curve, and
    the test codec's rate at Q off its curve; the ratio is R_test(Q) / R. Both curves
    are interpolated in ln(rate) against quality (PCHIP, or straight lines with
    ``linear``, as Google's jpegli report did).

    Parameters
    ----------
    rate_anchor : array_like, shape (k_anchor,)
        Anchor rate points.
    quality_anchor : array_like, shape (n_draws, k_anchor)
        Anchor quality per draw.
    rate_test : array_like, shape (k_test,)
        Test rate points.
    quality_test : array_like, shape (n_draws, k_test)
        Test quality per draw.
    anchor_rates : array_like, shape (m,)
        Anchor rates at which to compare.
    linear : bool
        Straight lines instead of PCHIP.

    Returns
    -------
    ratio : ndarray, shape (n_draws, m)
        NaN where the draw's curves do not both increase, or the anchor rate or its
        quality lies outside a curve.
    quality : ndarray, shape (n_draws, m)
        The anchor's quality at each anchor rate (NaN outside its curve).

    Raises
    ------
    ValueError
        If the shapes disagree.
    """
    r_a = np.asarray(rate_anchor, dtype=np.float64).ravel()
    r_t = np.asarray(rate_test, dtype=np.float64).ravel()
    q_a = np.atleast_2d(np.asarray(quality_anchor, dtype=np.float64))
    q_t = np.atleast_2d(np.asarray(quality_test, dtype=np.float64))
    at = np.asarray(anchor_rates, dtype=np.float64).ravel()
    if q_a.shape[1] != r_a.size or q_t.shape[1] != r_t.size or q_a.shape[0] != q_t.shape[0]:
        raise ValueError("quality arrays must be (n_draws, n_points) for their rate points")
    n = q_a.shape[0]
    ratio = np.full((n, at.size), np.nan)
    quality = np.full((n, at.size), np.nan)
    if r_a.size < MIN_CURVE_POINTS or r_t.size < MIN_CURVE_POINTS:
        return ratio, quality
    order_a, order_t = np.argsort(r_a), np.argsort(r_t)
    ln_a, ln_t = np.log(r_a[order_a]), np.log(r_t[order_t])
    q_a, q_t = q_a[:, order_a], q_t[:, order_t]
    if not (np.all(np.diff(ln_a) > 0) and np.all(np.diff(ln_t) > 0)):
        return ratio, quality
    with np.errstate(invalid="ignore"):
        ok = np.all(np.diff(q_a, axis=1) > 0, axis=1) & np.all(np.diff(q_t, axis=1) > 0, axis=1)
    if not ok.any():
        return ratio, quality
    ln_at = np.broadcast_to(np.log(at), (int(ok.sum()), at.size))
    ln_a_rows = np.broadcast_to(ln_a, (int(ok.sum()), ln_a.size))
    ln_t_rows = np.broadcast_to(ln_t, (int(ok.sum()), ln_t.size))
    q_star = _interpolate_rows(ln_a_rows, q_a[ok], ln_at, linear=linear)
    ln_test = _interpolate_rows(q_t[ok], ln_t_rows, q_star, linear=linear)
    quality[ok] = q_star
    ratio[ok] = np.exp(ln_test - ln_at)
    return ratio, quality


def _interpolate_rows(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    t: npt.NDArray[np.float64],
    *,
    linear: bool,
) -> npt.NDArray[np.float64]:
    """Row-wise interpolation of increasing (x, y) at t (n, m); NaN outside [x0, x_last]."""
    k = x.shape[1]
    with np.errstate(invalid="ignore"):
        inside = (t >= x[:, :1]) & (t <= x[:, -1:])
        # Segment j with x_j <= t <= x_{j+1}.
        segment = np.clip(np.sum(x[:, np.newaxis, :] <= t[:, :, np.newaxis], axis=2) - 1, 0, k - 2)
    rows = np.arange(x.shape[0])[:, np.newaxis]
    x0, x1 = x[rows, segment], x[rows, segment + 1]
    y0, y1 = y[rows, segment], y[rows, segment + 1]
    h = x1 - x0
    s = (t - x0) / h
    if linear or k == MIN_CURVE_POINTS:
        value = y0 + s * (y1 - y0)
    else:
        d = _pchip_derivatives(x, y)
        d0, d1 = d[rows, segment], d[rows, segment + 1]
        s2, s3 = s * s, s**3
        value = (
            y0 * (2 * s3 - 3 * s2 + 1)
            + h * d0 * (s3 - 2 * s2 + s)
            + y1 * (-2 * s3 + 3 * s2)
            + h * d1 * (s3 - s2)
        )
    return np.where(inside, value, np.nan)


def _pchip_derivatives(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """SciPy's PCHIP derivatives, row by row, for strictly increasing x and y."""
    h = np.diff(x, axis=1)
    slope = np.diff(y, axis=1) / h
    d = np.empty_like(x)
    w1 = 2.0 * h[:, 1:] + h[:, :-1]
    w2 = h[:, 1:] + 2.0 * h[:, :-1]
    d[:, 1:-1] = 1.0 / ((w1 / slope[:, :-1] + w2 / slope[:, 1:]) / (w1 + w2))
    d[:, 0] = _pchip_end_slope(h[:, 0], h[:, 1], slope[:, 0], slope[:, 1])
    d[:, -1] = _pchip_end_slope(h[:, -1], h[:, -2], slope[:, -1], slope[:, -2])
    return d
