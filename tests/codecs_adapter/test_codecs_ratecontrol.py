"""Rate control hits its targets, returns the closest point, and never silently clamps.

Synthetic codecs with a known rate curve give exact truths (the best integer setting is
found by brute force over every setting); real codecs are checked against bitrates
recomputed here from the bitstream.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import struct

import numpy as np
import pytest
from skimage import data

from codecs_adapter import (
    Codec,
    RatePoint,
    TargetUnreachable,
    bits_per_pixel,
    encode_at,
    encode_to_bpp,
    get_codec,
)
from codecs_adapter.ratecontrol import DEFAULT_MAX_ENCODES, DEFAULT_REL_TOL

#: The house tolerance of rate matching.
REL_TOL = 0.03
#: The average number of encodes per target that rate control is designed to stay under.
MAX_MEAN_ENCODES = 8.0

#: Side of the square crops used with real codecs.
CROP_SIDE = 160

#: Targets (bpp) that each continuous-knob codec reaches on the astronaut crop (JPEG XL
#: cannot go far below 0.3 bpp on it, WebP not far below 0.2).
CONTINUOUS_TARGETS = {
    "webp": (0.3, 0.6, 1.0),
    "jxl": (0.4, 0.7, 1.0),
    "jp2": (0.1, 0.4, 1.0),
    "jpeg": (0.5, 1.0, 1.5),
}
#: Targets for the integer-knob codecs, where ±3% is not always possible.
INTEGER_TARGETS = {"avif": (0.3, 0.8), "heif": (0.5,)}

#: Targets no codec reaches on a photograph.
ABSURDLY_LOW_BPP = 0.001
ABSURDLY_HIGH_BPP = 30.0


def center_crop(image: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(image[top : top + side, left : left + side, :3])


ASTRONAUT = center_crop(data.astronaut())
CHELSEA = center_crop(data.chelsea())

# --- synthetic codecs ----------------------------------------------------------------------

#: Image used with the synthetic codecs: only its size matters to them.
SYNTHETIC_SHAPE = (40, 50, 3)
SYNTHETIC_IMAGE = np.zeros(SYNTHETIC_SHAPE, dtype=np.uint8)
SYNTHETIC_PIXELS = SYNTHETIC_SHAPE[0] * SYNTHETIC_SHAPE[1]
_HEADER = struct.Struct(">II")


class SyntheticCodec(Codec):
    """A codec whose file size is a known function of its setting.

    The "bitstream" is a header with the image size, padded to the size the curve asks
    for; decoding gives a grey image of that size.
    """

    name = "synthetic"
    library = "test-curve"
    extension = ".bin"
    setting_name = "quality"
    setting_min = 0.0
    setting_max = 100.0
    setting_is_integer = False
    higher_setting_more_bits = True

    def __init__(self, bpp_at: object, **attributes: object) -> None:
        self.bpp_at = bpp_at
        self.calls = 0
        for key, value in attributes.items():
            setattr(self, key, value)

    @property
    def version(self) -> str:
        return "1.0"

    def n_bytes(self, setting: float) -> int:
        assert callable(self.bpp_at)
        return max(_HEADER.size, round(self.bpp_at(setting) * SYNTHETIC_PIXELS / 8))

    def _encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self.calls += 1
        header = _HEADER.pack(rgb.shape[0], rgb.shape[1])
        return header + bytes(self.n_bytes(setting) - len(header))

    def _decode(self, data: bytes) -> np.ndarray:
        height, width = _HEADER.unpack_from(data)
        return np.full((height, width, 3), 128, dtype=np.uint8)


def quality_curve(setting: float) -> float:
    """A JPEG-like curve: rate grows ever faster toward the top of the scale.

    It runs from 0.05 bpp at setting 0 to 0.05 e^3 + 2 = 3.004 bpp at setting 100.
    """
    return 0.05 * math.exp(0.03 * setting) + 0.002 * setting**1.5


def synthetic_bpp(codec: SyntheticCodec, setting: float) -> float:
    return codec.n_bytes(setting) * 8 / SYNTHETIC_PIXELS


def log_miss(bpp: float, target: float) -> float:
    return abs(math.log(bpp / target))


# --- bits_per_pixel --------------------------------------------------------------------------


def test_bits_per_pixel_is_eight_bits_per_byte_over_pixels() -> None:
    assert bits_per_pixel(1000, 100, 80) == 1.0
    assert bits_per_pixel(1, 1, 1) == 8.0
    assert bits_per_pixel(0, 3, 3) == 0.0


@pytest.mark.parametrize(("n_bytes", "width", "height"), [(-1, 4, 4), (10, 0, 4), (10, 4, -2)])
def test_bits_per_pixel_refuses_impossible_sizes(n_bytes: int, width: int, height: int) -> None:
    with pytest.raises(ValueError):
        bits_per_pixel(n_bytes, width, height)


# --- the search on known curves --------------------------------------------------------------


@pytest.mark.parametrize("target", [0.06, 0.1, 0.3, 0.7, 1.5, 2.2, 2.9])
def test_continuous_search_lands_within_tolerance(target: float) -> None:
    codec = SyntheticCodec(quality_curve)
    point = encode_to_bpp(codec, SYNTHETIC_IMAGE, target)
    assert abs(point.bpp / target - 1) <= REL_TOL
    assert point.encodes == codec.calls <= DEFAULT_MAX_ENCODES


@pytest.mark.parametrize("target", [0.06, 0.1, 0.25, 0.5, 1.0, 2.0, 2.9])
def test_integer_search_returns_the_closest_setting_of_all(target: float) -> None:
    codec = SyntheticCodec(quality_curve, setting_is_integer=True, setting_min=1, setting_max=100)
    point = encode_to_bpp(codec, SYNTHETIC_IMAGE, target)
    best_possible = min(
        log_miss(synthetic_bpp(codec, setting), target) for setting in range(1, 101)
    )
    assert isinstance(point.setting, int)
    if abs(point.bpp / target - 1) > REL_TOL:
        # Too coarse for the tolerance: then it must be the very best setting there is.
        assert log_miss(point.bpp, target) == pytest.approx(best_possible)


def test_search_follows_a_decreasing_log_scaled_knob() -> None:
    # Like JPEG XL's distance: rate falls as a power of the setting.
    codec = SyntheticCodec(
        lambda distance: 1.6 * distance**-0.8,
        setting_name="distance",
        setting_min=0.1,
        setting_max=25.0,
        higher_setting_more_bits=False,
        setting_scale="log",
    )
    for target in (0.2, 0.5, 1.0, 4.0):
        point = encode_to_bpp(codec, SYNTHETIC_IMAGE, target)
        assert abs(point.bpp / target - 1) <= REL_TOL
        assert point.setting == pytest.approx((target / 1.6) ** (-1 / 0.8), rel=0.05)


def test_mean_encodes_per_target_stay_low_on_a_curved_rate_function() -> None:
    codec = SyntheticCodec(quality_curve, setting_is_integer=True, setting_min=1, setting_max=100)
    encodes = [
        encode_to_bpp(codec, SYNTHETIC_IMAGE, target).encodes
        for target in np.geomspace(0.06, 2.9, 15)
    ]
    assert np.mean(encodes) <= MAX_MEAN_ENCODES


def test_a_target_just_beyond_the_top_within_tolerance_gets_the_top_setting() -> None:
    codec = SyntheticCodec(quality_curve)
    top = synthetic_bpp(codec, codec.setting_max)
    point = encode_to_bpp(codec, SYNTHETIC_IMAGE, top * (1 + REL_TOL / 2))
    assert point.setting == codec.setting_max


def test_a_target_beyond_the_range_raises_with_the_range() -> None:
    codec = SyntheticCodec(quality_curve)
    bottom = synthetic_bpp(codec, codec.setting_min)
    top = synthetic_bpp(codec, codec.setting_max)
    for target in (top * 1.1, bottom / 1.1):
        with pytest.raises(TargetUnreachable) as caught:
            encode_to_bpp(codec, SYNTHETIC_IMAGE, target)
        assert caught.value.min_bpp == pytest.approx(bottom)
        assert caught.value.max_bpp == pytest.approx(top)
        assert caught.value.codec == "synthetic"


def test_the_budget_of_encodes_is_respected() -> None:
    codec = SyntheticCodec(quality_curve)
    point = encode_to_bpp(codec, SYNTHETIC_IMAGE, 0.77, rel_tol=1e-9, max_encodes=4)
    assert point.encodes == codec.calls == 4


@pytest.mark.parametrize(
    ("target", "options"),
    [
        (0.0, {}),
        (-1.0, {}),
        (float("nan"), {}),
        (float("inf"), {}),
        (1.0, {"rel_tol": 0.0}),
        (1.0, {"rel_tol": 1.5}),
        (1.0, {"max_encodes": 1}),
    ],
)
def test_bad_search_arguments_are_refused(target: float, options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        encode_to_bpp(SyntheticCodec(quality_curve), SYNTHETIC_IMAGE, target, **options)  # type: ignore[arg-type]


# --- real codecs -----------------------------------------------------------------------------


def check_point_against_its_bitstream(point: RatePoint, codec: Codec, rgb: np.ndarray) -> None:
    """The point's numbers follow from its bitstream, and its settings reproduce it."""
    height, width, _ = rgb.shape
    assert (point.width, point.height) == (width, height)
    assert point.n_bytes == len(point.bitstream)
    assert point.bpp == pytest.approx(len(point.bitstream) * 8 / (height * width))
    assert np.array_equal(point.decoded, codec.decode(point.bitstream))
    assert codec.encode(rgb, point.setting) == point.bitstream
    assert (point.codec, point.library, point.version) == (
        codec.name,
        codec.library,
        codec.version,
    )


@pytest.mark.parametrize("name", sorted(CONTINUOUS_TARGETS))
def test_continuous_codecs_hit_targets_within_three_percent(name: str) -> None:
    codec = get_codec(name)
    encodes = []
    for target in CONTINUOUS_TARGETS[name]:
        point = encode_to_bpp(codec, ASTRONAUT, target)
        assert point.target_bpp == target
        assert abs(point.bpp / target - 1) <= REL_TOL
        assert point.rel_error == pytest.approx(point.bpp / target - 1)
        check_point_against_its_bitstream(point, codec, ASTRONAUT)
        encodes.append(point.encodes)
    assert np.mean(encodes) <= MAX_MEAN_ENCODES


@pytest.mark.parametrize("name", sorted(INTEGER_TARGETS))
def test_integer_codecs_return_a_setting_no_neighbour_beats(name: str) -> None:
    codec = get_codec(name)
    height, width, _ = CHELSEA.shape
    for target in INTEGER_TARGETS[name]:
        point = encode_to_bpp(codec, CHELSEA, target)
        check_point_against_its_bitstream(point, codec, CHELSEA)
        if abs(point.bpp / target - 1) <= DEFAULT_REL_TOL:
            continue
        for neighbour in (point.setting - 1, point.setting + 1):
            if codec.setting_min <= neighbour <= codec.setting_max:
                bpp = len(codec.encode(CHELSEA, neighbour)) * 8 / (height * width)
                assert log_miss(point.bpp, target) <= log_miss(bpp, target)


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif", "jxl", "heif", "jp2"])
@pytest.mark.parametrize("target", [ABSURDLY_LOW_BPP, ABSURDLY_HIGH_BPP])
def test_absurd_targets_raise_target_unreachable_with_the_range(name: str, target: float) -> None:
    codec = get_codec(name)
    small = center_crop(data.astronaut(), side=64)
    fewest = codec.setting_min if codec.higher_setting_more_bits else codec.setting_max
    most = codec.setting_max if codec.higher_setting_more_bits else codec.setting_min
    pixels = small.shape[0] * small.shape[1]
    lowest = len(codec.encode(small, fewest)) * 8 / pixels
    highest = len(codec.encode(small, most)) * 8 / pixels
    with pytest.raises(TargetUnreachable) as caught:
        encode_to_bpp(codec, small, target)
    error = caught.value
    assert error.min_bpp == pytest.approx(lowest)
    assert error.max_bpp == pytest.approx(highest)
    message = str(error)
    assert name in message
    assert f"{target:.4g}" in message
    assert f"{lowest:.4g}" in message and f"{highest:.4g}" in message


def test_encode_at_makes_a_complete_frozen_point() -> None:
    codec = get_codec("jpeg")
    point = encode_at(codec, ASTRONAUT, 37)
    check_point_against_its_bitstream(point, codec, ASTRONAUT)
    assert point.target_bpp is None and point.rel_error is None
    assert point.encodes == 1
    assert point.settings == {
        "quality": 37,
        "subsampling": "4:2:0",
        "optimize": True,
        "progressive": False,
        "quality_scaling": "libjpeg scale, linear between whole qualities",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.bpp = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        point.decoded[0, 0, 0] = 0


def test_rate_points_of_equal_encodes_are_equal() -> None:
    codec = get_codec("webp")
    assert encode_at(codec, CHELSEA, 50.0) == encode_at(codec, CHELSEA, 50.0)


def test_rate_points_survive_pickling_for_worker_processes() -> None:
    point = encode_at(get_codec("avif"), CHELSEA, 40)
    restored = pickle.loads(pickle.dumps(point))  # noqa: S301 - our own bytes
    assert restored == point
    assert restored.settings == point.settings
    assert np.array_equal(restored.decoded, point.decoded)
