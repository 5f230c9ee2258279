"""Each built-in codec round-trips real photographs, lossy, deterministic, the right way up.

Expectations come from outside the code under test: file signatures from the format
specifications, the direction of each library's knob from its documentation, PSNR
computed here by hand, the lossless WebP size from libwebp's own lossless mode.
"""

from __future__ import annotations

import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
from skimage import data

import codecs_adapter
import codecs_adapter.codecs
from codecs_adapter import Codec, CodecError, UnknownCodecError, get_codec

ALL_CODECS = ("jpeg", "webp", "avif", "jxl", "heif", "jp2")

#: Side of the square crops: small enough for fast encodes, large enough for real content.
CROP_SIDE = 128

#: A setting each library documents as "moderate", one clearly worse and one clearly
#: better (quality: higher is better; JPEG XL distance and JPEG 2000 compression ratio:
#: lower is better).
MODERATE = {"jpeg": 75, "webp": 75.0, "avif": 60, "jxl": 1.0, "heif": 60, "jp2": 24.0}
WORSE = {"jpeg": 20, "webp": 20.0, "avif": 20, "jxl": 6.0, "heif": 20, "jp2": 96.0}
BETTER = {"jpeg": 90, "webp": 90.0, "avif": 85, "jxl": 0.5, "heif": 85, "jp2": 8.0}

#: A lossy codec at a moderate setting on a natural photo lands well above this.
MIN_MODERATE_PSNR_DB = 28.0

#: At its best setting, lossy WebP must still be far smaller than lossless WebP.
MAX_LOSSY_TO_LOSSLESS_RATIO = 0.5

#: Odd sizes that exercise chroma subsampling and padding at the edges.
ODD_SHAPE = (37, 53)


def center_crop(image: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(image[top : top + side, left : left + side, :3])


ASTRONAUT = center_crop(data.astronaut())
CHELSEA = center_crop(data.chelsea())
PHOTOS = {"astronaut": ASTRONAUT, "chelsea": CHELSEA}


def psnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio of 8-bit images, from its definition."""
    error = reference.astype(np.float64) - test.astype(np.float64)
    mse = float(np.mean(error**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def most_bits_setting(codec: Codec) -> float:
    return codec.setting_max if codec.higher_setting_more_bits else codec.setting_min


def has_signature(name: str, bitstream: bytes) -> bool:
    """File signatures from the format specifications."""
    if name == "jpeg":  # ITU T.81: SOI ... EOI
        return bitstream.startswith(b"\xff\xd8\xff") and bitstream.endswith(b"\xff\xd9")
    if name == "webp":  # RIFF container, lossy VP8 chunk
        return bitstream[:4] == b"RIFF" and bitstream[8:16] == b"WEBPVP8 "
    if name == "avif":  # ISO-BMFF ftyp box with major brand avif
        return bitstream[4:12] == b"ftypavif"
    if name == "jxl":  # JPEG XL bare codestream signature
        return bitstream.startswith(b"\xff\x0a")
    if name == "heif":  # ISO-BMFF ftyp box with an HEVC image brand
        return bitstream[4:8] == b"ftyp" and bitstream[8:12] in (b"heic", b"heix", b"mif1")
    if name == "jp2":  # JPEG 2000 signature box
        return bitstream.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n")
    raise AssertionError(name)


def test_all_six_codecs_are_available_in_order() -> None:
    assert codecs_adapter.available_codecs() == list(ALL_CODECS)


def test_unknown_codec_error_lists_the_available_names() -> None:
    with pytest.raises(UnknownCodecError) as caught:
        get_codec("vvc")
    message = str(caught.value)
    assert "'vvc'" in message
    for name in ALL_CODECS:
        assert name in message
    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize("name", ALL_CODECS)
def test_codec_describes_itself(name: str) -> None:
    codec = get_codec(name)
    assert codec.name == name
    assert codec.library and codec.setting_name
    assert codec.setting_min < codec.setting_max
    assert any(character.isdigit() for character in codec.version)
    settings = codec.settings(MODERATE[name])
    assert settings[codec.setting_name] == MODERATE[name]
    assert set(codec.fixed_options) <= set(settings)


def test_avif_uses_libaom_and_reports_both_versions() -> None:
    avif = get_codec("avif")
    assert avif.library == "libavif/libaom"
    libavif, libaom = avif.version.split("/")
    assert imagecodecs.avif_version().endswith(libavif)
    assert libaom != "unknown"
    # The same bytes as asking libavif for libaom by name, with the documented options.
    direct = imagecodecs.avif_encode(
        ASTRONAUT, 60, speed=6, pixelformat="yuv420", codec="aom", numthreads=1
    )
    assert avif.encode(ASTRONAUT, 60) == bytes(direct)


def test_heif_reports_libheif_and_x265_versions() -> None:
    libheif, x265 = get_codec("heif").version.split("/", 1)
    assert libheif[0].isdigit()
    assert x265 != "unknown"


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("name", ALL_CODECS)
def test_round_trip_keeps_shape_and_is_close_but_not_lossless(name: str, photo: str) -> None:
    codec = get_codec(name)
    original = PHOTOS[photo]
    bitstream = codec.encode(original, MODERATE[name])
    decoded = codec.decode(bitstream)
    assert has_signature(name, bitstream)
    assert decoded.shape == original.shape
    assert decoded.dtype == np.uint8
    quality = psnr_db(original, decoded)
    assert MIN_MODERATE_PSNR_DB < quality < float("inf")


@pytest.mark.parametrize("name", ALL_CODECS)
def test_better_setting_spends_more_bits_and_looks_better(name: str) -> None:
    codec = get_codec(name)
    worse = codec.encode(ASTRONAUT, WORSE[name])
    better = codec.encode(ASTRONAUT, BETTER[name])
    assert len(better) > len(worse)
    assert psnr_db(ASTRONAUT, codec.decode(better)) > psnr_db(ASTRONAUT, codec.decode(worse))
    assert codec.higher_setting_more_bits == (BETTER[name] > WORSE[name])


@pytest.mark.parametrize("name", ALL_CODECS)
def test_encoding_is_deterministic(name: str) -> None:
    pixels_elsewhere = np.array(ASTRONAUT, copy=True)
    first = get_codec(name).encode(ASTRONAUT, MODERATE[name])
    second = get_codec(name).encode(pixels_elsewhere, MODERATE[name])
    assert first == second


@pytest.mark.parametrize("name", ALL_CODECS)
def test_even_the_best_setting_is_lossy(name: str) -> None:
    codec = get_codec(name)
    decoded = codec.decode(codec.encode(CHELSEA, most_bits_setting(codec)))
    assert np.any(decoded != CHELSEA)


def test_webp_is_lossy_vp8_and_far_smaller_than_lossless() -> None:
    webp = get_codec("webp")
    lossy = webp.encode(ASTRONAUT, webp.setting_max)
    lossless = bytes(imagecodecs.webp_encode(ASTRONAUT, lossless=True))
    assert lossless[12:16] == b"VP8L"
    assert lossy[12:16] == b"VP8 "
    assert len(lossy) < MAX_LOSSY_TO_LOSSLESS_RATIO * len(lossless)
    assert np.any(webp.decode(lossy) != ASTRONAUT)


def test_a_lossless_webp_bitstream_is_refused_not_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate the imagecodecs default (lossless) leaking through: the codec must refuse.
    monkeypatch.setattr(codecs_adapter.codecs, "WEBP_LOSSLESS", True)
    with pytest.raises(CodecError, match="lossy"):
        get_codec("webp").encode(ASTRONAUT, MODERATE["webp"])


@pytest.mark.parametrize("name", ALL_CODECS)
def test_odd_sizes_round_trip_to_the_same_shape(name: str) -> None:
    codec = get_codec(name)
    height, width = ODD_SHAPE
    original = np.ascontiguousarray(data.astronaut()[:height, :width])
    assert codec.decode(codec.encode(original, MODERATE[name])).shape == original.shape


@pytest.mark.parametrize("name", ALL_CODECS)
def test_decoding_garbage_raises_codec_error(name: str) -> None:
    with pytest.raises(CodecError):
        get_codec(name).decode(b"this is not an image file at all")


@pytest.mark.parametrize("name", ALL_CODECS)
def test_settings_outside_the_range_are_refused(name: str) -> None:
    codec = get_codec(name)
    span = codec.setting_max - codec.setting_min
    for bad in (codec.setting_min - span, codec.setting_max + span, float("nan")):
        with pytest.raises(ValueError, match=codec.setting_name):
            codec.encode(ASTRONAUT, bad)


@pytest.mark.parametrize("name", ["avif", "heif"])
def test_integer_settings_refuse_fractions(name: str) -> None:
    with pytest.raises(ValueError, match="whole"):
        get_codec(name).encode(ASTRONAUT, 50.5)


@pytest.mark.parametrize(
    "bad_image",
    [
        ASTRONAUT.astype(np.float32),
        ASTRONAUT[:, :, 0],
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((0, 8, 3), dtype=np.uint8),
    ],
    ids=["float", "grey", "rgba", "empty"],
)
def test_encode_refuses_anything_but_uint8_rgb(bad_image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        get_codec("jpeg").encode(bad_image, MODERATE["jpeg"])


def test_the_library_never_imports_django() -> None:
    probe = "import sys, codecs_adapter; sys.exit(any(m.startswith('django') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0
