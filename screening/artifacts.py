"""The item bank of the compression-artifact test, made with codecs_adapter.

Screening images are never study images: scikit-image's immunohistochemistry
slide (colour texture), brick and grass (textures and edges, grey), its
colour wheel, and a generated smooth gradient (where banding shows). Each is
cropped to ``ITEM_SIDE`` pixels and encoded at a ladder of bitrates
(``LEVEL_BPP``, most severe first) with several codecs, so the artifacts range
over blocking (JPEG), blur and smoothing (WebP, AVIF), ringing (JPEG XL, AVIF)
and colour banding (all, on the gradient and the wheel). Rate points a codec
cannot reach on an image are left out; every level keeps items of several
codecs and images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

import codecs_adapter
from screening.staircase import StaircaseRules

ITEM_SIDE = 256
# Severity ladder, most severe first: each level has about 1.47x the bits of
# the one before.
LEVEL_BPP = (0.06, 0.09, 0.13, 0.19, 0.28, 0.41, 0.6, 0.88, 1.3, 1.9)
ARTIFACT_CODECS = ("jpeg", "webp", "avif", "jxl")
# The staircase over these levels (defaults in screening.staircase).
STAIRCASE = StaircaseRules(n_levels=len(LEVEL_BPP))
# Rate control may miss its target by this much here (integer quality steps
# on small images); the item keeps its achieved bpp either way.
ITEM_RATE_TOLERANCE = 0.12


@dataclass(frozen=True)
class BankItem:
    image: str
    level: int
    codec: str
    target_bpp: float
    bpp: float
    png: bytes


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def _crop(image: np.ndarray, side: int = ITEM_SIDE) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = max((height - side) // 2, 0), max((width - side) // 2, 0)
    return image[top : top + side, left : left + side]


def gradient_image(side: int = ITEM_SIDE) -> np.ndarray:
    """A smooth sky-like gradient with two soft discs: banding shows at once."""
    y, x = np.mgrid[0:side, 0:side] / (side - 1)
    r = 0.25 + 0.55 * y
    g = 0.45 + 0.35 * y + 0.1 * x
    b = 0.85 - 0.25 * y
    for cx, cy, radius, tint in ((0.3, 0.35, 0.18, 0.12), (0.72, 0.62, 0.22, -0.1)):
        blob = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)))
        r, g, b = r + tint * blob, g + 0.5 * tint * blob, b - tint * blob
    rgb = np.clip(np.stack([r, g, b], axis=-1), 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def screening_images() -> dict[str, np.ndarray]:
    """The screening images by name, RGB uint8, ITEM_SIDE pixels square."""
    from skimage import data

    return {
        "ihc": _crop(_to_rgb(data.immunohistochemistry())),
        "brick": _crop(_to_rgb(data.brick())),
        "grass": _crop(_to_rgb(data.grass())),
        "wheel": _crop(_to_rgb(data.colorwheel())),
        "gradient": gradient_image(),
    }


def build_items(
    images: dict[str, np.ndarray],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[BankItem]:
    """Encode every image at every level with every codec that reaches it."""
    jobs = [(name, codec) for name in images for codec in ARTIFACT_CODECS]
    for done, (name, codec_name) in enumerate(jobs, start=1):
        codec = codecs_adapter.get_codec(codec_name)
        for level, target in enumerate(LEVEL_BPP):
            try:
                point = codecs_adapter.encode_to_bpp(
                    codec, images[name], target, rel_tol=ITEM_RATE_TOLERANCE
                )
            except codecs_adapter.TargetUnreachable:
                continue
            if abs(point.bpp / target - 1) > ITEM_RATE_TOLERANCE:
                continue
            yield BankItem(
                image=name,
                level=level,
                codec=codec_name,
                target_bpp=target,
                bpp=point.bpp,
                png=codecs_adapter.png_bytes(point.decoded),
            )
        if progress is not None:
            progress(done, len(jobs))


def level_bpp(level: float) -> float:
    """The bitrate of a (fractional) level, interpolated on the geometric ladder."""
    low = int(np.clip(np.floor(level), 0, len(LEVEL_BPP) - 1))
    high = min(low + 1, len(LEVEL_BPP) - 1)
    fraction = float(np.clip(level - low, 0, 1))
    return float(LEVEL_BPP[low] * (LEVEL_BPP[high] / LEVEL_BPP[low]) ** fraction)
