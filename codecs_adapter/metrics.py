"""Objective quality of a reconstruction against its reference, to set beside human Elo.

PICO's point is that these disagree with people; a study stores them with every stimulus
so that its report can show by how much. Every metric takes two uint8 RGB images of one
shape, the reference first:

===============  ===========================================================================
key              definition
===============  ===========================================================================
``psnr_rgb``     PSNR in dB over the three RGB channels together (one MSE over all
                 samples), peak 255.
``psnr_y``       PSNR in dB of luma Y' = 0.299 R' + 0.587 G' + 0.114 B' (ITU-R BT.601, the
                 matrix of JPEG/JFIF, WebP and libavif's default), computed in floating
                 point from the 8-bit RGB values, peak 255.
``ssim``         SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01,
                 K2 = 0.03, peak 255, averaged over the windows lying wholly inside the
                 image ("valid"), then over the R, G and B channels. No automatic
                 downscaling. Equals scikit-image's ``structural_similarity`` with
                 ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                 data_range=255``.
``ms_ssim``      MS-SSIM (Wang, Simoncelli, Bovik 2003) as in the authors' ``msssim.m``:
                 five scales with weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333; between
                 scales a 2x2 mean (edge pixels repeated on odd sizes) and decimation by 2;
                 contrast-structure at the four finest scales, full SSIM at the coarsest,
                 each on valid windows as above. Negative factors count as 0 (as in
                 TensorFlow and pytorch_msssim). Computed per RGB channel and averaged, as
                 learned-compression papers do. Needs at least 176 pixels a side.
``ssimulacra2``  SSIMULACRA 2 (Cloudinary/libjxl), 100 = identical, lower is worse, by the
                 ``ssimulacra2`` package from PyPI (a NumPy port of libjxl's tool; no
                 model weights). Its scores match the calibration that libjxl publishes
                 for the tool (libjpeg-turbo 4:2:0 at quality 20, 35, 70 averages about 30,
                 50, 70); it is not bit-exact with the C++ tool.
===============  ===========================================================================

:func:`compute_metrics` returns all of them as finite floats. A value that is not a finite
number is left out rather than stored: PSNR of identical images (infinite) and MS-SSIM of
an image under 176 pixels a side (undefined). JSON, where studies store them, has no
infinities.
"""

from __future__ import annotations

import functools
import importlib.metadata
import io
import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from codecs_adapter.images import RGB8, png_bytes, validate_rgb

#: Version of the definitions above; stored metrics of another version are recomputed.
METRICS_DEFINITION: Final = "1"

#: Peak value of 8-bit samples.
PEAK_8BIT: Final = 255.0

#: ITU-R BT.601 luma weights of R', G', B'.
LUMA_WEIGHTS_BT601: Final = (0.299, 0.587, 0.114)

#: SSIM constants (Wang et al. 2004).
SSIM_K1: Final = 0.01
SSIM_K2: Final = 0.03
#: Standard deviation and radius of the Gaussian window: 11x11, sigma 1.5.
SSIM_SIGMA: Final = 1.5
SSIM_RADIUS: Final = 5

#: MS-SSIM scale weights, finest first (Wang, Simoncelli, Bovik 2003, Table 1).
MS_SSIM_WEIGHTS: Final = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: Smallest side for :data:`MS_SSIM_WEIGHTS`: the coarsest scale must hold one window.
MS_SSIM_MIN_SIDE: Final = (2 * SSIM_RADIUS + 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1)

#: SSIMULACRA 2 stops at scales under 8 pixels a side; a smaller image has none.
SSIMULACRA2_MIN_SIDE: Final = 8

#: Names of the metrics :func:`compute_metrics` computes, in order.
METRIC_NAMES: Final = ("psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ssimulacra2")

#: Decibels per decade of a power ratio.
_DECIBELS: Final = 10.0

type Plane = npt.NDArray[np.float64]


def _pair(reference: np.ndarray, distorted: np.ndarray) -> tuple[RGB8, RGB8]:
    """Validate two images and check that their shapes agree."""
    first = validate_rgb(reference, name="reference")
    second = validate_rgb(distorted, name="distorted")
    if first.shape != second.shape:
        raise ValueError(f"images differ in shape: {first.shape} and {second.shape}")
    return first, second


def _psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else _DECIBELS * math.log10(PEAK_8BIT**2 / mse)


def psnr_rgb(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB over all RGB samples.

    Parameters
    ----------
    reference, distorted : numpy.ndarray
        uint8 images of shape ``(height, width, 3)``, equal in shape.

    Returns
    -------
    float
        ``10 log10(255^2 / MSE)``; ``inf`` for identical images.

    Raises
    ------
    ValueError
        If an image is invalid or the shapes differ.
    """
    first, second = _pair(reference, distorted)
    error = first.astype(np.float64) - second.astype(np.float64)
    return _psnr_from_mse(float(np.mean(error * error)))


def luma_bt601(rgb: np.ndarray) -> Plane:
    """BT.601 luma of an RGB image, unrounded, on the 0-255 scale.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 image of shape ``(height, width, 3)``.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(height, width)``.

    Raises
    ------
    ValueError
        If the image is invalid.
    """
    pixels = validate_rgb(rgb).astype(np.float64)
    red, green, blue = LUMA_WEIGHTS_BT601
    luma: Plane = red * pixels[:, :, 0] + green * pixels[:, :, 1] + blue * pixels[:, :, 2]
    return luma


def psnr_y(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB of BT.601 luma.

    Parameters
    ----------
    reference, distorted : numpy.ndarray
        uint8 images of shape ``(height, width, 3)``, equal in shape.

    Returns
    -------
    float
        ``10 log10(255^2 / MSE(Y'))``; ``inf`` if the lumas are equal.

    Raises
    ------
    ValueError
        If an image is invalid or the shapes differ.
    """
    first, second = _pair(reference, distorted)
    error = luma_bt601(first) - luma_bt601(second)
    return _psnr_from_mse(float(np.mean(error * error)))


@functools.cache
def _gaussian_taps() -> Plane:
    """The normalised 1-D Gaussian of the SSIM window (the 2-D window is its outer product)."""
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    taps: Plane = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return taps / taps.sum()


def _window_mean(plane: Plane) -> Plane:
    """Gaussian-weighted mean over every window that lies wholly inside the plane."""
    taps = _gaussian_taps()
    filtered = ndimage.correlate1d(plane, taps, axis=0, mode="nearest")
    filtered = ndimage.correlate1d(filtered, taps, axis=1, mode="nearest")
    # The border values used padding; only the "valid" interior is kept.
    valid: Plane = filtered[SSIM_RADIUS:-SSIM_RADIUS, SSIM_RADIUS:-SSIM_RADIUS]
    return valid


def _ssim_and_contrast_structure(first: Plane, second: Plane) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two planes (valid windows)."""
    c1 = (SSIM_K1 * PEAK_8BIT) ** 2
    c2 = (SSIM_K2 * PEAK_8BIT) ** 2
    mean_1 = _window_mean(first)
    mean_2 = _window_mean(second)
    var_1 = _window_mean(first * first) - mean_1 * mean_1
    var_2 = _window_mean(second * second) - mean_2 * mean_2
    covariance = _window_mean(first * second) - mean_1 * mean_2
    contrast_structure = (2 * covariance + c2) / (var_1 + var_2 + c2)
    luminance = (2 * mean_1 * mean_2 + c1) / (mean_1 * mean_1 + mean_2 * mean_2 + c1)
    return float(np.mean(luminance * contrast_structure)), float(np.mean(contrast_structure))


def _check_window_fits(shape: tuple[int, ...], smallest: int, what: str) -> None:
    if min(shape[0], shape[1]) < smallest:
        raise ValueError(
            f"{what} needs images of at least {smallest} pixels a side, got {shape[1]}x{shape[0]}"
        )


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIM averaged over valid windows and the three RGB channels.

    Parameters
    ----------
    reference, distorted : numpy.ndarray
        uint8 images of shape ``(height, width, 3)``, equal in shape, at least 11 pixels
        a side.

    Returns
    -------
    float
        1 for identical images.

    Raises
    ------
    ValueError
        If an image is invalid, the shapes differ, or the images are too small.
    """
    first, second = _pair(reference, distorted)
    _check_window_fits(first.shape, 2 * SSIM_RADIUS + 1, "SSIM")
    values = [
        _ssim_and_contrast_structure(
            first[:, :, channel].astype(np.float64), second[:, :, channel].astype(np.float64)
        )[0]
        for channel in range(first.shape[2])
    ]
    return float(np.mean(values))


def _halve(plane: Plane) -> Plane:
    """2x2 mean and decimation (``msssim.m``: ``imfilter(ones(2)/4, 'symmetric')``, step 2)."""
    height, width = plane.shape
    padded = np.pad(plane, ((0, height % 2), (0, width % 2)), mode="edge")
    half: Plane = 0.25 * (
        padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]
    )
    return half


def _ms_ssim_plane(first: Plane, second: Plane, weights: Sequence[float]) -> float:
    """MS-SSIM of one channel."""
    value = 1.0
    for scale, weight in enumerate(weights):
        full, contrast_structure = _ssim_and_contrast_structure(first, second)
        factor = full if scale == len(weights) - 1 else contrast_structure
        value *= max(factor, 0.0) ** weight
        first, second = _halve(first), _halve(second)
    return value


def ms_ssim(
    reference: np.ndarray, distorted: np.ndarray, *, weights: Sequence[float] = MS_SSIM_WEIGHTS
) -> float:
    """Multi-scale SSIM, per RGB channel, averaged over the channels.

    Parameters
    ----------
    reference, distorted : numpy.ndarray
        uint8 images of shape ``(height, width, 3)``, equal in shape.
    weights : sequence of float, optional
        Exponent of each scale, finest first; the default is the standard five.

    Returns
    -------
    float
        1 for identical images.

    Raises
    ------
    ValueError
        If an image is invalid, the shapes differ, ``weights`` is empty, or the images
        are smaller than ``11 * 2 ** (len(weights) - 1)`` pixels a side.
    """
    first, second = _pair(reference, distorted)
    if not weights:
        raise ValueError("weights must name at least one scale")
    _check_window_fits(first.shape, (2 * SSIM_RADIUS + 1) * 2 ** (len(weights) - 1), "MS-SSIM")
    values = [
        _ms_ssim_plane(
            first[:, :, channel].astype(np.float64),
            second[:, :, channel].astype(np.float64),
            weights,
        )
        for channel in range(first.shape[2])
    ]
    return float(np.mean(values))


def ssimulacra2(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA 2 score by the ``ssimulacra2`` package.

    Parameters
    ----------
    reference, distorted : numpy.ndarray
        uint8 images of shape ``(height, width, 3)``, equal in shape, at least 8 pixels
        a side.

    Returns
    -------
    float
        100 for identical images; 90 is visually lossless, 70 high, 50 medium and 30 low
        quality in libjxl's description; negative for very strong distortion.

    Raises
    ------
    ValueError
        If an image is invalid, the shapes differ, or the images are too small.
    """
    from ssimulacra2 import compute_ssimulacra2

    first, second = _pair(reference, distorted)
    _check_window_fits(first.shape, SSIMULACRA2_MIN_SIDE, "SSIMULACRA 2")
    # The package reads files; metadata-free PNGs in memory carry exactly the pixels.
    score = compute_ssimulacra2(io.BytesIO(png_bytes(first)), io.BytesIO(png_bytes(second)))
    return float(score)


@functools.cache
def metrics_version() -> str:
    """Version of the metric definitions and of the packages that compute them.

    Returns
    -------
    str
        E.g. ``"1+ssimulacra2-0.3.0"``; stored metrics of another version are stale.
    """
    try:
        package = importlib.metadata.version("ssimulacra2")
    except importlib.metadata.PackageNotFoundError:
        package = "missing"
    return f"{METRICS_DEFINITION}+ssimulacra2-{package}"


def compute_metrics(reference: np.ndarray, distorted: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` that is finite for this pair.

    Parameters
    ----------
    reference : numpy.ndarray
        The original, uint8 of shape ``(height, width, 3)``.
    distorted : numpy.ndarray
        Its reconstruction, of the same shape.

    Returns
    -------
    dict of str to float
        In the order of :data:`METRIC_NAMES`; a metric that is infinite (PSNR of
        identical images) or undefined (MS-SSIM under 176 pixels a side, SSIM under 11,
        SSIMULACRA 2 under 8) is left out.

    Raises
    ------
    ValueError
        If an image is invalid or the shapes differ.
    """
    first, second = _pair(reference, distorted)
    side = min(first.shape[0], first.shape[1])
    values: dict[str, float] = {
        "psnr_rgb": psnr_rgb(first, second),
        "psnr_y": psnr_y(first, second),
    }
    if side >= 2 * SSIM_RADIUS + 1:
        values["ssim"] = ssim(first, second)
    if side >= MS_SSIM_MIN_SIDE:
        values["ms_ssim"] = ms_ssim(first, second)
    if side >= SSIMULACRA2_MIN_SIDE:
        values["ssimulacra2"] = ssimulacra2(first, second)
    return {name: value for name, value in values.items() if math.isfinite(value)}
