"""Objective metrics against values computed independently of the code under test.

- PSNR: by hand on a 2x2 image.
- SSIM: scikit-image's ``structural_similarity`` with Wang et al.'s settings.
- MS-SSIM: closed forms. On a checkerboard (period 2 or 4 pixels) every window sees the
  same pattern up to its phase, so the window statistics follow from 1-D sums of the
  Gaussian taps; after one or two halvings the pattern averages to flat grey, where the
  contrast-structure term is exactly 1. So MS-SSIM reduces to a product of per-scale
  terms that are computed here from their definitions, without filtering an image.
- SSIMULACRA 2: the calibration libjxl publishes for its tool ("30 = low quality,
  average output of libjpeg-turbo quality 20, 4:2:0; 50 = medium, quality 35; 70 = high,
  quality 70"), on the five scikit-image photographs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from codecs_adapter import compute_metrics, get_codec, ms_ssim, psnr_rgb, psnr_y, ssim
from codecs_adapter.metrics import MS_SSIM_MIN_SIDE, MS_SSIM_WEIGHTS, ssimulacra2

#: Floating-point agreement expected between two exact computations of one quantity.
RTOL = 1e-9

#: SSIM constants and window, restated from Wang et al. (2004) for the closed forms.
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2
SIGMA = 1.5
RADIUS = 5

#: libjxl's published SSIMULACRA 2 calibration: libjpeg-turbo quality -> average score.
SSIMULACRA2_CALIBRATION = {20: 30.0, 35: 50.0, 70: 70.0}
#: How far the mean over five photographs may stray from the published averages (which
#: are over a large corpus).
SSIMULACRA2_ATOL = 5.0


def photographs() -> dict[str, np.ndarray]:
    return {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "motorcycle": data.stereo_motorcycle()[0],
    }


def jpeg_round_trip(rgb: np.ndarray, quality: float) -> np.ndarray:
    jpeg = get_codec("jpeg")
    return jpeg.decode(jpeg.encode(np.ascontiguousarray(rgb[:, :, :3]), quality))


# --- PSNR ------------------------------------------------------------------------------------


def test_psnr_by_hand_on_a_two_by_two_image() -> None:
    reference = np.zeros((2, 2, 3), dtype=np.uint8)
    distorted = reference.copy()
    distorted[0, 1, 1] = 10  # one green sample off by 10
    # RGB: one squared error of 100 among 12 samples.
    assert psnr_rgb(reference, distorted) == pytest.approx(
        10 * math.log10(255**2 / (100 / 12)), rel=RTOL
    )
    # Luma: that pixel's Y' is off by 0.587 * 10, the other three by 0.
    assert psnr_y(reference, distorted) == pytest.approx(
        10 * math.log10(255**2 / ((0.587 * 10) ** 2 / 4)), rel=RTOL
    )


def test_identical_images_have_infinite_psnr_which_compute_metrics_leaves_out() -> None:
    rgb = np.ascontiguousarray(data.astronaut()[:200, :200])
    assert psnr_rgb(rgb, rgb) == math.inf
    assert psnr_y(rgb, rgb) == math.inf
    values = compute_metrics(rgb, rgb)
    assert "psnr_rgb" not in values and "psnr_y" not in values
    assert values["ssim"] == pytest.approx(1.0)
    assert values["ms_ssim"] == pytest.approx(1.0)
    assert values["ssimulacra2"] == pytest.approx(100.0)


# --- SSIM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("quality", [10, 40, 90])
def test_ssim_equals_scikit_image_with_wangs_settings(quality: int) -> None:
    reference = np.ascontiguousarray(data.chelsea()[:150, :170])
    distorted = jpeg_round_trip(reference, quality)
    expected = structural_similarity(
        reference,
        distorted,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert ssim(reference, distorted) == pytest.approx(expected, rel=RTOL)


# --- MS-SSIM closed forms --------------------------------------------------------------------


def gaussian_taps() -> list[float]:
    taps = [math.exp(-(t * t) / (2 * SIGMA**2)) for t in range(-RADIUS, RADIUS + 1)]
    total = sum(taps)
    return [tap / total for tap in taps]


def contrast_structure(variance: float, gain: float) -> float:
    """c*s of a window where y - m = gain * (x - m): cov = gain var, var_y = gain^2 var."""
    return (2 * gain * variance + C2) / ((1 + gain * gain) * variance + C2)


def checkerboard(side: int, block: int, mean: int, amplitude: int) -> np.ndarray:
    """Grey checkerboard of square blocks, as an RGB image."""
    sign = np.where((np.arange(side) // block) % 2 == 0, 1, -1)
    grey = (mean + amplitude * np.outer(sign, sign)).astype(np.uint8)
    return np.repeat(grey[:, :, np.newaxis], 3, axis=2)


def mean_contrast_structure(side: int, block: int, amplitude: float, gain: float) -> float:
    """Mean c*s over the valid windows of a checkerboard, from 1-D sums of the taps.

    The pattern is amplitude * p(i) p(j) with p of period 2 * block, so a window centred at
    (i, j) has mean offset amplitude * S(i) S(j), where S(i) = sum_t g(t) p(i + t), and
    variance amplitude^2 (1 - S(i)^2 S(j)^2).
    """
    taps = gaussian_taps()
    period = 2 * block

    def pattern(index: int) -> int:
        return 1 if (index // block) % 2 == 0 else -1

    sums = [
        sum(
            tap * pattern(phase + offset)
            for tap, offset in zip(taps, range(-RADIUS, RADIUS + 1), strict=True)
        )
        for phase in range(period)
    ]
    centres = range(RADIUS, side - RADIUS)
    values = [
        contrast_structure(amplitude**2 * (1 - (sums[i % period] * sums[j % period]) ** 2), gain)
        for i in centres
        for j in centres
    ]
    return sum(values) / len(values)


SIDE = MS_SSIM_MIN_SIDE  # the smallest image with five scales
MEAN, AMPLITUDE, GAIN = 128, 64, 0.5


def test_ms_ssim_of_a_fine_checkerboard_is_its_finest_scale_term() -> None:
    # Period 2: one halving makes both images flat grey 128, so scales 2-5 contribute 1.
    reference = checkerboard(SIDE, 1, MEAN, AMPLITUDE)
    distorted = checkerboard(SIDE, 1, MEAN, round(AMPLITUDE * GAIN))
    finest = mean_contrast_structure(SIDE, 1, AMPLITUDE, GAIN)
    assert ms_ssim(reference, distorted) == pytest.approx(finest ** MS_SSIM_WEIGHTS[0], rel=RTOL)


def test_ms_ssim_of_a_coarser_checkerboard_multiplies_two_scales() -> None:
    # Period 4: the first halving (2x2 means aligned with the blocks) gives the period-2
    # board at half size, the second a flat image.
    reference = checkerboard(SIDE, 2, MEAN, AMPLITUDE)
    distorted = checkerboard(SIDE, 2, MEAN, round(AMPLITUDE * GAIN))
    first = mean_contrast_structure(SIDE, 2, AMPLITUDE, GAIN)
    second = mean_contrast_structure(SIDE // 2, 1, AMPLITUDE, GAIN)
    expected = first ** MS_SSIM_WEIGHTS[0] * second ** MS_SSIM_WEIGHTS[1]
    assert ms_ssim(reference, distorted) == pytest.approx(expected, rel=RTOL)


def test_ms_ssim_of_two_flat_images_is_the_coarsest_luminance_term() -> None:
    # No contrast anywhere: every c*s is 1 and SSIM is the luminance term at every scale.
    first, second = 100, 140
    reference = np.full((SIDE, SIDE, 3), first, dtype=np.uint8)
    distorted = np.full((SIDE, SIDE, 3), second, dtype=np.uint8)
    luminance = (2 * first * second + C1) / (first**2 + second**2 + C1)
    assert ssim(reference, distorted) == pytest.approx(luminance, rel=RTOL)
    assert ms_ssim(reference, distorted) == pytest.approx(
        luminance ** MS_SSIM_WEIGHTS[-1], rel=RTOL
    )


def test_ms_ssim_with_one_scale_is_ssim() -> None:
    reference = np.ascontiguousarray(data.coffee()[:64, :80])
    distorted = jpeg_round_trip(reference, 30)
    assert ms_ssim(reference, distorted, weights=(1.0,)) == pytest.approx(
        ssim(reference, distorted), rel=RTOL
    )


def test_ms_ssim_refuses_images_too_small_and_compute_metrics_leaves_it_out() -> None:
    small = np.ascontiguousarray(data.astronaut()[: SIDE - 1, :SIDE])
    distorted = jpeg_round_trip(small, 50)
    with pytest.raises(ValueError, match=f"at least {SIDE} pixels"):
        ms_ssim(small, distorted)
    values = compute_metrics(small, distorted)
    assert "ms_ssim" not in values
    assert {"psnr_rgb", "psnr_y", "ssim", "ssimulacra2"} <= set(values)


# --- SSIMULACRA 2 ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("quality", sorted(SSIMULACRA2_CALIBRATION))
def test_ssimulacra2_matches_libjxls_published_calibration(quality: int) -> None:
    scores = [
        ssimulacra2(np.ascontiguousarray(rgb[:, :, :3]), jpeg_round_trip(rgb, quality))
        for rgb in photographs().values()
    ]
    assert np.mean(scores) == pytest.approx(SSIMULACRA2_CALIBRATION[quality], abs=SSIMULACRA2_ATOL)


def test_ssimulacra2_falls_as_quality_falls() -> None:
    reference = np.ascontiguousarray(data.astronaut()[100:300, 150:350])
    scores = [ssimulacra2(reference, jpeg_round_trip(reference, q)) for q in (90, 50, 15)]
    assert scores[0] > scores[1] > scores[2]


# --- every metric ----------------------------------------------------------------------------


def test_compute_metrics_gives_every_metric_in_order_for_a_real_pair() -> None:
    reference = np.ascontiguousarray(data.astronaut()[:200, :180])
    distorted = jpeg_round_trip(reference, 40)
    values = compute_metrics(reference, distorted)
    assert list(values) == ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ssimulacra2"]
    assert values["psnr_rgb"] == pytest.approx(psnr_rgb(reference, distorted))
    assert 25 < values["psnr_rgb"] < 40
    assert 0.5 < values["ssim"] < values["ms_ssim"] < 1
    assert 20 < values["ssimulacra2"] < 90


@pytest.mark.parametrize("metric", [psnr_rgb, psnr_y, ssim, ms_ssim, ssimulacra2, compute_metrics])
def test_metrics_refuse_images_of_different_shapes(metric: object) -> None:
    assert callable(metric)
    with pytest.raises(ValueError, match="differ in shape"):
        metric(np.zeros((200, 200, 3), np.uint8), np.zeros((200, 201, 3), np.uint8))
