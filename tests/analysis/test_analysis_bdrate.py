"""BD-rate against the reference package ``bjontegaard`` and against exact truths."""

from __future__ import annotations

import bjontegaard
import numpy as np
import pytest

from analysis.bdrate import BDRateError, BDRateFailure, bd_rate, bd_rate_draws

#: Agreement required with the reference implementation, in percent points.
ATOL_REFERENCE = 1e-6
#: Agreement required with exact truths, in percent points (rounding error only).
ATOL_EXACT = 1e-9
#: Relative agreement of the vectorised per-draw BD-rate with the scalar one.
RTOL_DRAWS = 1e-9

# Realistic rate-PSNR curves: (rates, PSNR in dB). The first pair is in the style of a
# JVET common-test-condition table (kbps at QP 22/27/32/37), the rest image codecs in bpp.
HEVC = ([9487.76, 4593.60, 2258.16, 1124.64], [40.037, 38.615, 36.454, 34.035])
VVC = ([9787.80, 4469.04, 2180.04, 1107.60], [40.260, 38.740, 36.514, 34.051])
JPEG = ([0.25, 0.5, 1.0, 2.0], [27.1, 30.4, 33.9, 37.8])
WEBP = ([0.2, 0.42, 0.85, 1.7], [27.8, 31.0, 34.3, 37.9])
AV1 = ([0.1, 0.2, 0.35, 0.6, 1.0, 1.6], [26.0, 28.9, 31.2, 33.6, 36.1, 38.4])
HIGH_RATE = ([0.3, 0.6, 1.2, 2.4], [31.0, 34.2, 37.5, 40.9])  # overlaps JPEG partly
TWO_POINTS = ([0.3, 1.5], [28.0, 36.0])

CURVE_PAIRS = {
    "vvc-vs-hevc": (HEVC, VVC),
    "webp-vs-jpeg": (JPEG, WEBP),
    "av1-6-points-vs-jpeg-4": (JPEG, AV1),
    "partial-overlap": (JPEG, HIGH_RATE),
    "two-point-test": (JPEG, TWO_POINTS),
    "jpeg-vs-webp-reversed": (WEBP, JPEG),
}


@pytest.mark.parametrize("pair", CURVE_PAIRS.values(), ids=CURVE_PAIRS.keys())
def test_it_matches_the_bjontegaard_package_with_pchip(pair: tuple) -> None:
    (rate_a, psnr_a), (rate_t, psnr_t) = pair
    expected = bjontegaard.bd_rate(
        rate_a, psnr_a, rate_t, psnr_t, method="pchip", require_matching_points=False, min_overlap=0
    )
    assert bd_rate(rate_a, psnr_a, rate_t, psnr_t) == pytest.approx(expected, abs=ATOL_REFERENCE)


def test_it_accepts_points_in_any_order() -> None:
    (rate_a, psnr_a), (rate_t, psnr_t) = JPEG, AV1
    expected = bjontegaard.bd_rate(
        rate_a, psnr_a, rate_t, psnr_t, method="pchip", require_matching_points=False, min_overlap=0
    )
    shuffled = np.random.default_rng(3).permutation(len(rate_t))
    got = bd_rate(rate_a[::-1], psnr_a[::-1], np.take(rate_t, shuffled), np.take(psnr_t, shuffled))
    assert got == pytest.approx(expected, abs=ATOL_REFERENCE)


@pytest.mark.parametrize("factor", [0.7, 0.5, 1.0, 1.25])
def test_scaling_every_rate_by_a_factor_gives_that_factor(factor: float) -> None:
    rate, psnr = HEVC
    got = bd_rate(rate, psnr, np.multiply(rate, factor), psnr)
    assert got == pytest.approx((factor - 1.0) * 100.0, abs=ATOL_EXACT)


def test_it_is_exact_for_log_linear_curves_sampled_at_different_points() -> None:
    # ln R = a + b Q on both curves, test shifted by ln(0.6): PCHIP reproduces a straight
    # line exactly, so BD = -40 % whatever the points and the overlap.
    intercept, slope, shift = -6.0, 0.18, np.log(0.6)
    quality_a = np.array([28.0, 31.0, 33.5, 37.0])
    quality_t = np.array([30.0, 32.0, 35.0, 38.0, 41.0])
    rate_a = np.exp(intercept + slope * quality_a)
    rate_t = np.exp(intercept + slope * quality_t + shift)
    assert bd_rate(rate_a, quality_a, rate_t, quality_t) == pytest.approx(-40.0, abs=ATOL_EXACT)


def test_swapping_anchor_and_test_inverts_the_ratio() -> None:
    (rate_a, psnr_a), (rate_t, psnr_t) = JPEG, WEBP
    forward = bd_rate(rate_a, psnr_a, rate_t, psnr_t) / 100.0
    backward = bd_rate(rate_t, psnr_t, rate_a, psnr_a) / 100.0
    assert (1.0 + forward) * (1.0 + backward) == pytest.approx(1.0, abs=ATOL_EXACT)


@pytest.mark.parametrize(
    ("anchor", "test", "reason"),
    [
        (([1.0], [30.0]), JPEG, BDRateFailure.TOO_FEW_POINTS),
        (JPEG, ([1.0, 2.0], [30.0]), BDRateFailure.TOO_FEW_POINTS),
        (([0.0, 1.0], [30.0, 35.0]), JPEG, BDRateFailure.INVALID_VALUES),
        (JPEG, ([0.5, 1.0], [np.nan, 35.0]), BDRateFailure.INVALID_VALUES),
        (([0.5, 1.0, 2.0], [30.0, 36.0, 35.0]), JPEG, BDRateFailure.ANCHOR_NOT_INCREASING),
        (([0.5, 0.5, 2.0], [30.0, 33.0, 36.0]), JPEG, BDRateFailure.ANCHOR_NOT_INCREASING),
        (JPEG, ([0.5, 1.0], [30.0, 30.0]), BDRateFailure.TEST_NOT_INCREASING),
        (JPEG, ([4.0, 8.0], [40.0, 44.0]), BDRateFailure.NO_OVERLAP),
        (JPEG, ([4.0, 8.0], [37.8, 44.0]), BDRateFailure.NO_OVERLAP),  # touching only
    ],
)
def test_it_refuses_curves_without_a_bd_rate(
    anchor: tuple, test: tuple, reason: BDRateFailure
) -> None:
    with pytest.raises(BDRateError) as raised:
        bd_rate(anchor[0], anchor[1], test[0], test[1])
    assert raised.value.reason is reason
    assert isinstance(raised.value, ValueError)


def _random_draws(
    rng: np.random.Generator, n_draws: int, n_points: int, *, monotone_share: float
) -> np.ndarray:
    """Elo-like qualities: increasing in most draws, shuffled in the rest."""
    quality = np.sort(rng.normal(0.0, 300.0, (n_draws, n_points)), axis=1)
    quality += rng.normal(0.0, 150.0, (n_draws, 1))
    shuffle = rng.random(n_draws) > monotone_share
    quality[shuffle] = rng.permuted(quality[shuffle], axis=1)
    return quality


def test_per_draw_bd_rates_match_the_scalar_function_draw_by_draw() -> None:
    rng = np.random.default_rng(2024)
    rate_a, rate_t = np.array(JPEG[0]), np.array(AV1[0])
    quality_a = _random_draws(rng, 2000, rate_a.size, monotone_share=0.9)
    quality_t = _random_draws(rng, 2000, rate_t.size, monotone_share=0.9)
    draws = bd_rate_draws(rate_a, quality_a, rate_t, quality_t)

    seen = set()
    for i in range(quality_a.shape[0]):
        try:
            expected = bd_rate(rate_a, quality_a[i], rate_t, quality_t[i])
        except BDRateError as error:
            assert draws.failures[i] is error.reason
            assert np.isnan(draws.percent[i])
            seen.add(error.reason)
        else:
            assert draws.failures[i] is None
            assert draws.percent[i] == pytest.approx(expected, rel=RTOL_DRAWS, abs=ATOL_EXACT)
    # The random draws exercise every per-draw failure.
    assert seen == {
        BDRateFailure.ANCHOR_NOT_INCREASING,
        BDRateFailure.TEST_NOT_INCREASING,
        BDRateFailure.NO_OVERLAP,
    }


def test_per_draw_bd_rates_match_the_bjontegaard_package() -> None:
    rng = np.random.default_rng(7)
    rate_a, rate_t = np.sort(HEVC[0]), np.sort(VVC[0])  # qualities below are increasing
    quality_a = _random_draws(rng, 200, rate_a.size, monotone_share=1.0)
    quality_t = quality_a + rng.normal(20.0, 30.0, quality_a.shape)
    quality_t.sort(axis=1)
    draws = bd_rate_draws(rate_a, quality_a, rate_t, quality_t)
    assert draws.usable.all()
    expected = [
        bjontegaard.bd_rate(
            rate_a, quality_a[i], rate_t, quality_t[i], method="pchip", min_overlap=0
        )
        for i in range(quality_a.shape[0])
    ]
    np.testing.assert_allclose(draws.percent, expected, rtol=RTOL_DRAWS, atol=ATOL_REFERENCE)


def test_per_draw_bd_rates_fail_every_draw_when_a_curve_is_too_short() -> None:
    draws = bd_rate_draws([1.0], np.zeros((5, 1)), JPEG[0], np.tile(JPEG[1], (5, 1)))
    assert not draws.usable.any()
    assert draws.failure_counts() == {BDRateFailure.TOO_FEW_POINTS: 5}


def test_per_draw_bd_rates_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one column per rate point"):
        bd_rate_draws(JPEG[0], np.zeros((3, 2)), JPEG[0], np.zeros((3, 4)))
