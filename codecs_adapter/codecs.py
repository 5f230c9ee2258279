"""One interface over the image codecs that a study compares.

A :class:`Codec` turns an 8-bit RGB array into a bitstream at one value of its single
swept setting (JPEG quality, JPEG XL distance, ...) and back. Every other encoder option
is fixed, named as a module constant below and reported in :attr:`Codec.fixed_options`,
so that a rate point records everything needed to reproduce its bytes. Encoding is
deterministic: the same pixels and setting give the same bytes on every run (the options
that would make output depend on the machine, such as libaom's thread count, are fixed).

No encoder may fall back to lossless coding: the swept ranges stop short of the values
that mean "lossless" to a library, the libraries whose default is lossless (imagecodecs'
WebP and JPEG XL) are told explicitly to be lossy, and the WebP bitstream is checked.

Built-in codecs, by :attr:`Codec.name`:

============  ====================  ==================  ==============================
name          library               setting             notes
============  ====================  ==================  ==============================
``jpeg``      libjpeg-turbo         quality 1-100       Pillow; 4:2:0, optimised Huffman,
                                                        fractional quality (see below)
``webp``      libwebp               quality 0-100       imagecodecs; lossy VP8, method 6
``avif``      libavif/libaom        quality 0-99        imagecodecs; speed 6, 4:2:0
``jxl``       libjxl                distance 0.1-25     imagecodecs; effort 7
``heif``      libheif/x265          quality 0-100       pillow-heif; preset slow, 4:2:0
``jp2``       openjpeg              compression_ratio   Pillow; 9/7 wavelet, JP2 file
============  ====================  ==================  ==============================

JPEG's quality is libjpeg's: at a whole quality the quantisation tables are libjpeg's own
(``jpeg_set_quality``, as ``cjpeg -quality q``) and the bytes those of Pillow's
``quality=q`` with the options below. Between two whole qualities the scale
factor that libjpeg applies to the standard tables is interpolated linearly, so that rate
control can land between the ~5% steps of whole qualities; any JPEG decoder reads the
result (the tables travel in the file).

External command-line encoders (:mod:`codecs_adapter.external`) subclass :class:`Codec`
the same way; nothing else in the library depends on which codec it is.
"""

from __future__ import annotations

import abc
import ctypes
import functools
import io
import math
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import imagecodecs
import numpy as np
import pillow_heif
from PIL import Image, features

from codecs_adapter.images import RGB8, RGB_CHANNELS, validate_rgb

#: Value of a fixed encoder option.
type OptionValue = str | int | float | bool

#: How rate control spaces its search over a setting: ``"linear"`` for additive knobs
#: (quality), ``"log"`` for multiplicative ones (distance, compression ratio), where equal
#: ratios of the setting change the bitrate by roughly equal ratios.
type SettingScale = Literal["linear", "log"]

# --- JPEG (Pillow / libjpeg-turbo) -----------------------------------------------------------

#: Chroma subsampling of JPEG: 4:2:0, what nearly every JPEG on the web uses.
JPEG_SUBSAMPLING: Final = "4:2:0"
#: Optimised Huffman tables (a second pass; smaller files, same pixels).
JPEG_OPTIMIZE: Final = True
#: Baseline (sequential) coding, not progressive.
JPEG_PROGRESSIVE: Final = False
#: Quality range. libjpeg treats 0 as 1, so 1 is the true minimum.
JPEG_QUALITY_MIN: Final = 1
JPEG_QUALITY_MAX: Final = 100
#: How a quality becomes quantisation tables (see :func:`jpeg_quant_tables`).
JPEG_QUALITY_SCALING: Final = "libjpeg scale, linear between whole qualities"
#: Largest quantiser of a baseline JPEG (8-bit tables), as libjpeg's force_baseline.
JPEG_BASELINE_MAX_QUANTISER: Final = 255
#: The standard ("IJG") luminance and chrominance tables of ITU-T T.81 Annex K (K.1,
#: K.2), row by row, which libjpeg scales by quality.
JPEG_LUMA_TABLE: Final = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
JPEG_CHROMA_TABLE: Final = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)
#: libjpeg's scale factors are percentages of the standard tables.
_PERCENT: Final = 100
#: libjpeg's quality at which the scaling formula changes (jcparam.c).
_JPEG_SCALING_KNEE: Final = 50

# --- WebP (imagecodecs / libwebp) ------------------------------------------------------------

#: imagecodecs encodes WebP losslessly unless told otherwise.
WEBP_LOSSLESS: Final = False
#: libwebp's speed/size trade-off, 0 (fast) to 6 (slowest, smallest files).
WEBP_METHOD: Final = 6
#: Quality range of libwebp's lossy mode (a float; the encoder quantises it finely).
WEBP_QUALITY_MIN: Final = 0.0
WEBP_QUALITY_MAX: Final = 100.0
#: Chunk type of a lossy WebP bitstream (``VP8L`` would be lossless), RIFF offset 12.
WEBP_LOSSY_CHUNK: Final = b"VP8 "
_WEBP_CHUNK_OFFSET: Final = 12

# --- AVIF (imagecodecs / libavif with libaom) ------------------------------------------------

#: AV1 encoder that libavif must use.
AVIF_ENCODER: Final = "aom"
#: libavif speed, 0 (slowest) to 10 (fastest); 6 is a common quick-but-good choice.
AVIF_SPEED: Final = 6
#: Chroma format of AVIF: 4:2:0 like the other codecs here.
AVIF_PIXEL_FORMAT: Final = "yuv420"
#: Bits per sample of the coded image.
AVIF_BIT_DEPTH: Final = 8
#: libaom's output differs between one thread and several; one thread gives the same
#: bytes on every machine.
AVIF_NUM_THREADS: Final = 1
#: Quality range: libavif maps quality to AV1's 64 quantizer steps; 100 means lossless
#: to libavif, so the range stops at 99.
AVIF_QUALITY_MIN: Final = 0
AVIF_QUALITY_MAX: Final = 99

# --- JPEG XL (imagecodecs / libjxl) ----------------------------------------------------------

#: libjxl effort, 1 (fastest) to 10; 7 is libjxl's default.
JXL_EFFORT: Final = 7
#: imagecodecs encodes JPEG XL losslessly unless told otherwise.
JXL_LOSSLESS: Final = False
#: Bare codestream, no ISO-BMFF container (no metadata to carry).
JXL_CONTAINER: Final = False
#: Butteraugli distance range: 1.0 is "visually lossless", libjxl's maximum is 25;
#: below 0.1 the rate rises steeply for no visible gain.
JXL_DISTANCE_MIN: Final = 0.1
JXL_DISTANCE_MAX: Final = 25.0

# --- HEIF (pillow-heif / libheif with x265) --------------------------------------------------

#: Chroma subsampling of HEIF.
HEIF_CHROMA: Final = 420
#: x265 preset and tune, as libheif's x265 plugin defaults them (pinned here).
HEIF_PRESET: Final = "slow"
HEIF_TUNE: Final = "ssim"
#: Write the colour (nclx) box, so that decoders use the right YCbCr matrix.
HEIF_SAVE_NCLX: Final = True
#: Quality range; libheif maps quality q to x265 CRF (100 - q) / 2. Lossless is a
#: separate flag (quality -1 in pillow-heif), never reached here.
HEIF_QUALITY_MIN: Final = 0
HEIF_QUALITY_MAX: Final = 100

# --- JPEG 2000 (Pillow / openjpeg) -----------------------------------------------------------

#: Irreversible 9/7 wavelet: lossy at every ratio (the 5/3 wavelet can be lossless).
JP2_IRREVERSIBLE: Final = True
#: Multiple-component (colour) transform; Pillow's default is off, which wastes bits.
JP2_MCT: Final = 1
#: Wavelet decomposition levels + 1 (openjpeg's default, pinned). openjpeg needs
#: ``2 ** (resolutions - 1)`` to fit in the image, so images under 32 pixels on a side
#: get as many as fit.
JP2_NUM_RESOLUTIONS: Final = 6
#: Code-block size (openjpeg's default, pinned).
JP2_CODEBLOCK_SIZE: Final = (64, 64)
#: Progression order (openjpeg's default, pinned).
JP2_PROGRESSION: Final = "LRCP"
#: Write a JP2 file (signature and header boxes), not a bare J2K codestream.
JP2_FILE_FORMAT: Final = "jp2"
#: Compression-ratio range, relative to 24 bits per pixel: 2 is ~12 bpp (near the most
#: openjpeg spends on a photo), 1000 is ~0.024 bpp (below that the headers dominate).
JP2_RATIO_MIN: Final = 2.0
JP2_RATIO_MAX: Final = 1000.0

#: Size of the buffer that libavif's ``avifCodecVersions`` fills (see avif.h).
_AVIF_CODEC_VERSIONS_BUFFER: Final = 256


class CodecError(Exception):
    """An encoder or decoder failed, or produced something it must not."""


class UnknownCodecError(CodecError, LookupError):
    """No codec of that name is available here.

    Parameters
    ----------
    name : str
        The name asked for.
    available : sequence of str
        The names that are available.
    """

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = tuple(available)
        listed = ", ".join(self.available) if self.available else "none"
        super().__init__(f"unknown or unavailable codec {name!r}; available codecs: {listed}")


class Codec(abc.ABC):
    """An image codec with one swept setting.

    Subclasses set the class attributes and implement :attr:`version`, :meth:`_encode`
    and :meth:`_decode`; :meth:`encode` and :meth:`decode` validate around them.

    Attributes
    ----------
    name : str
        Short identifier (``"jpeg"``, ``"webp"``, ...), unique among codecs.
    library : str
        The implementation (``"libjpeg-turbo"``, ``"libavif/libaom"``, ...).
    extension : str
        Usual file extension of the bitstream, with the dot.
    setting_name : str
        Name of the swept setting (``"quality"``, ``"distance"``, ...).
    setting_min, setting_max : float
        Inclusive range of the setting.
    setting_is_integer : bool
        Whether only whole values are valid.
    higher_setting_more_bits : bool
        Direction of the setting: True if a larger value spends more bits.
    setting_scale : {"linear", "log"}
        Spacing in which rate control searches the setting.
    fixed_options : Mapping[str, OptionValue]
        Every other encoder option, fixed.
    """

    name: str
    library: str
    extension: str
    setting_name: str
    setting_min: float
    setting_max: float
    setting_is_integer: bool
    higher_setting_more_bits: bool
    setting_scale: SettingScale = "linear"
    fixed_options: Mapping[str, OptionValue] = MappingProxyType({})

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """Runtime version of the library, as reported by its binding."""

    @classmethod
    def is_available(cls) -> bool:
        """Tell whether this codec can run here (its library is present and capable).

        Returns
        -------
        bool
            True if :meth:`encode` and :meth:`decode` can work.
        """
        return True

    def check_setting(self, setting: float) -> float:
        """Validate a setting value and return it in canonical form.

        Parameters
        ----------
        setting : float
            Candidate value of :attr:`setting_name`.

        Returns
        -------
        float
            The value; an ``int`` for integer settings.

        Raises
        ------
        ValueError
            If the value is not a finite number in ``[setting_min, setting_max]``, or not
            whole for an integer setting.
        """
        if isinstance(setting, bool) or not isinstance(setting, int | float | np.number):
            raise ValueError(f"{self.name}: {self.setting_name} must be a number, got {setting!r}")
        value = float(setting)
        if not math.isfinite(value) or not self.setting_min <= value <= self.setting_max:
            raise ValueError(
                f"{self.name}: {self.setting_name}={setting!r} is outside "
                f"[{self.setting_min}, {self.setting_max}]"
            )
        if self.setting_is_integer:
            if not value.is_integer():
                raise ValueError(f"{self.name}: {self.setting_name} must be whole, got {setting!r}")
            return int(value)
        return value

    def settings(self, setting: float) -> dict[str, OptionValue]:
        """Return the complete encoder configuration at one setting.

        Parameters
        ----------
        setting : float
            Value of the swept setting.

        Returns
        -------
        dict
            ``{setting_name: setting}`` followed by :attr:`fixed_options`.

        Raises
        ------
        ValueError
            If the setting is invalid (see :meth:`check_setting`).
        """
        return {self.setting_name: self.check_setting(setting), **self.fixed_options}

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        """Encode an image at one setting.

        Parameters
        ----------
        rgb : numpy.ndarray
            uint8 image of shape ``(height, width, 3)``.
        setting : float
            Value of :attr:`setting_name`.

        Returns
        -------
        bytes
            The complete file (container included), deterministic for equal inputs.

        Raises
        ------
        ValueError
            If the image or the setting is invalid.
        CodecError
            If the encoder fails or produces a bitstream it must not (e.g. lossless).
        """
        pixels = validate_rgb(rgb)
        value = self.check_setting(setting)
        try:
            data = self._encode(pixels, value)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(
                f"{self.name}: encoding at {self.setting_name}={value} failed: {exc}"
            ) from exc
        return bytes(data)

    def decode(self, data: bytes) -> RGB8:
        """Decode a bitstream of this codec into an RGB image.

        Parameters
        ----------
        data : bytes
            A file produced by :meth:`encode` (or by the same format's reference encoder).

        Returns
        -------
        numpy.ndarray
            uint8 array of shape ``(height, width, 3)``.

        Raises
        ------
        CodecError
            If the data cannot be decoded, or do not decode to 8-bit RGB.
        """
        try:
            pixels = np.asarray(self._decode(bytes(data)))
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"{self.name}: decoding failed: {exc}") from exc
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != RGB_CHANNELS:
            raise CodecError(
                f"{self.name}: decoder returned {pixels.dtype} {pixels.shape}, "
                "expected uint8 (height, width, 3)"
            )
        return np.ascontiguousarray(pixels)

    @abc.abstractmethod
    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        """Encode validated pixels at a validated setting."""

    @abc.abstractmethod
    def _decode(self, data: bytes) -> np.ndarray:
        """Decode bytes into an array (validated by :meth:`decode`)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.library})>"


# --- helpers ---------------------------------------------------------------------------------


def _without_prefix(version: str, prefix: str) -> str:
    """Strip a library-name prefix such as ``"libwebp "`` from a version string."""
    return version.removeprefix(prefix).strip()


def _pillow_save(rgb: RGB8, image_format: str, **options: object) -> bytes:
    """Encode pixels with one of Pillow's encoders."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _pillow_decode(data: bytes, image_format: str) -> np.ndarray:
    """Decode with one of Pillow's decoders (and only that one) into an RGB array."""
    with Image.open(io.BytesIO(data), formats=[image_format]) as image:
        image.load()
        return np.array(image.convert("RGB"))


def _pillow_version(feature: str) -> str:
    """Version of a library linked into Pillow; CodecError if Pillow lacks it."""
    version = features.version(feature)
    if version is None:
        raise CodecError(f"Pillow was built without {feature}")
    return version


# --- JPEG ------------------------------------------------------------------------------------


def _libjpeg_scale(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: the percentage applied to the standard tables."""
    if quality < _JPEG_SCALING_KNEE:
        return 5000 // quality
    return 200 - 2 * quality


def jpeg_quant_tables(quality: float) -> list[list[int]]:
    """Luminance and chrominance quantisation tables of a (possibly fractional) quality.

    At a whole quality these are exactly libjpeg's ``jpeg_set_quality(q, TRUE)`` tables:
    each entry of the standard table times libjpeg's percentage scale, rounded half up,
    clamped to 1..255. Between whole qualities the percentage is interpolated linearly
    between its values at the two neighbours (it decreases with quality, so the rate
    still rises with quality). Exact rational arithmetic keeps the rounding identical to
    libjpeg's integer arithmetic.

    Parameters
    ----------
    quality : float
        In ``[JPEG_QUALITY_MIN, JPEG_QUALITY_MAX]``.

    Returns
    -------
    list of list of int
        Two tables of 64 entries in row-major (natural) order, luminance first.

    Raises
    ------
    ValueError
        If the quality is outside the range.
    """
    if not JPEG_QUALITY_MIN <= quality <= JPEG_QUALITY_MAX:
        raise ValueError(
            f"jpeg quality {quality!r} outside [{JPEG_QUALITY_MIN}, {JPEG_QUALITY_MAX}]"
        )
    exact = Fraction(quality)
    low, high = math.floor(exact), math.ceil(exact)
    low_scale, high_scale = _libjpeg_scale(low), _libjpeg_scale(high)
    scale = low_scale + (exact - low) * (high_scale - low_scale)
    return [
        [
            min(
                max(math.floor(base * scale / _PERCENT + Fraction(1, 2)), 1),
                JPEG_BASELINE_MAX_QUANTISER,
            )
            for row in table
            for base in row
        ]
        for table in (JPEG_LUMA_TABLE, JPEG_CHROMA_TABLE)
    ]


class JpegCodec(Codec):
    """Baseline JPEG by libjpeg-turbo through Pillow (4:2:0, optimised Huffman tables).

    The quality is continuous: whole values give libjpeg's own tables (the same bytes as
    Pillow's ``quality=``), fractional values the tables of :func:`jpeg_quant_tables`.
    Decoding uses Pillow's libjpeg-turbo with its defaults (accurate integer IDCT, fancy
    chroma upsampling).
    """

    name = "jpeg"
    library = "libjpeg-turbo"
    extension = ".jpg"
    setting_name = "quality"
    setting_min = JPEG_QUALITY_MIN
    setting_max = JPEG_QUALITY_MAX
    setting_is_integer = False
    higher_setting_more_bits = True
    fixed_options = MappingProxyType(
        {
            "subsampling": JPEG_SUBSAMPLING,
            "optimize": JPEG_OPTIMIZE,
            "progressive": JPEG_PROGRESSIVE,
            "quality_scaling": JPEG_QUALITY_SCALING,
        }
    )

    @property
    def version(self) -> str:
        """libjpeg-turbo version linked into Pillow."""
        return _pillow_version("libjpeg_turbo")

    @classmethod
    def is_available(cls) -> bool:
        """True if Pillow is linked with libjpeg-turbo (not another libjpeg)."""
        return bool(features.check_codec("jpg")) and features.version("libjpeg_turbo") is not None

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        # Pillow hands explicit tables to libjpeg unscaled (scale 100%).
        return _pillow_save(
            rgb,
            "JPEG",
            qtables=jpeg_quant_tables(setting),
            subsampling=JPEG_SUBSAMPLING,
            optimize=JPEG_OPTIMIZE,
            progressive=JPEG_PROGRESSIVE,
        )

    def _decode(self, data: bytes) -> np.ndarray:
        return _pillow_decode(data, "JPEG")


# --- WebP ------------------------------------------------------------------------------------


class WebpCodec(Codec):
    """Lossy WebP (VP8) by libwebp through imagecodecs.

    The quality is a float; libwebp maps it to its quantiser finely enough (steps of about
    0.3 quality) that rate control treats it as continuous. Every bitstream is checked to
    be lossy VP8.
    """

    name = "webp"
    library = "libwebp"
    extension = ".webp"
    setting_name = "quality"
    setting_min = WEBP_QUALITY_MIN
    setting_max = WEBP_QUALITY_MAX
    setting_is_integer = False
    higher_setting_more_bits = True
    fixed_options = MappingProxyType({"lossless": WEBP_LOSSLESS, "method": WEBP_METHOD})

    @property
    def version(self) -> str:
        """libwebp version of imagecodecs."""
        return _without_prefix(imagecodecs.webp_version(), "libwebp")

    @classmethod
    def is_available(cls) -> bool:
        """True if imagecodecs has WebP."""
        return bool(imagecodecs.WEBP.available)

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        data = bytes(
            imagecodecs.webp_encode(rgb, float(setting), lossless=WEBP_LOSSLESS, method=WEBP_METHOD)
        )
        chunk = data[_WEBP_CHUNK_OFFSET : _WEBP_CHUNK_OFFSET + len(WEBP_LOSSY_CHUNK)]
        if chunk != WEBP_LOSSY_CHUNK:
            raise CodecError(
                f"webp: expected a lossy {WEBP_LOSSY_CHUNK!r} bitstream, libwebp wrote {chunk!r}"
            )
        return data

    def _decode(self, data: bytes) -> np.ndarray:
        return np.asarray(imagecodecs.webp_decode(data, hasalpha=False))


# --- AVIF ------------------------------------------------------------------------------------


def _bundled_library_dirs(package_file: str) -> list[Path]:
    """Folders where a wheel keeps the shared libraries of the package at ``package_file``."""
    package = Path(package_file).parent
    return [package.parent / f"{package.name}.libs", package / ".dylibs", package]


@functools.cache
def _libavif_codec_versions() -> str | None:
    """Ask the libavif that imagecodecs loaded which AV1 codecs it has, e.g. ``aom ...``.

    imagecodecs reports libavif's own version only; libavif's ``avifCodecVersions`` names
    the AV1 encoder and decoder versions. Returns None if the library cannot be found.
    """
    for folder in _bundled_library_dirs(imagecodecs.__file__):
        for candidate in sorted(folder.glob("libavif*")):
            try:
                library = ctypes.CDLL(str(candidate))
                buffer = ctypes.create_string_buffer(_AVIF_CODEC_VERSIONS_BUFFER)
                library.avifCodecVersions(buffer)
            except (OSError, AttributeError):
                continue
            return buffer.value.decode("ascii", errors="replace")
    return None


@functools.cache
def _avif_aom_works() -> bool:
    """Encode a tiny image with libaom: the test that the AV1 encoder is really there."""
    probe_size = 16
    probe = np.zeros((probe_size, probe_size, RGB_CHANNELS), dtype=np.uint8)
    try:
        imagecodecs.avif_encode(probe, AVIF_QUALITY_MIN, codec=AVIF_ENCODER, speed=AVIF_SPEED)
    except Exception:
        return False
    return True


class AvifCodec(Codec):
    """AVIF (AV1 intra) by libavif with the libaom encoder, through imagecodecs.

    libavif maps quality 0-99 onto AV1's 64 quantiser steps, so neighbouring qualities
    often give identical files and one step changes the rate by several percent: rate
    control cannot always land within 3% (it returns the closest). Decoding uses
    whichever AV1 decoder libavif prefers (AV1 decoding is bit-exact).
    """

    name = "avif"
    library = "libavif/libaom"
    extension = ".avif"
    setting_name = "quality"
    setting_min = AVIF_QUALITY_MIN
    setting_max = AVIF_QUALITY_MAX
    setting_is_integer = True
    higher_setting_more_bits = True
    fixed_options = MappingProxyType(
        {
            "encoder": AVIF_ENCODER,
            "speed": AVIF_SPEED,
            "pixel_format": AVIF_PIXEL_FORMAT,
            "bit_depth": AVIF_BIT_DEPTH,
            "threads": AVIF_NUM_THREADS,
        }
    )

    @property
    def version(self) -> str:
        """``"<libavif>/<libaom>"``, e.g. ``"1.4.2/3.15.1"`` (``unknown`` if not found)."""
        libavif = _without_prefix(imagecodecs.avif_version(), "libavif")
        match = re.search(r"aom \[[^\]]*\]:v?(\S+?)(?:,|$)", _libavif_codec_versions() or "")
        return f"{libavif}/{match.group(1) if match else 'unknown'}"

    @classmethod
    def is_available(cls) -> bool:
        """True if imagecodecs has AVIF and its libavif can encode with libaom."""
        return bool(imagecodecs.AVIF.available) and _avif_aom_works()

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        return bytes(
            imagecodecs.avif_encode(
                rgb,
                int(setting),
                speed=AVIF_SPEED,
                bitspersample=AVIF_BIT_DEPTH,
                pixelformat=AVIF_PIXEL_FORMAT,
                codec=AVIF_ENCODER,
                numthreads=AVIF_NUM_THREADS,
            )
        )

    def _decode(self, data: bytes) -> np.ndarray:
        return np.asarray(imagecodecs.avif_decode(data))


# --- JPEG XL ---------------------------------------------------------------------------------


class JxlCodec(Codec):
    """JPEG XL (VarDCT) by libjxl through imagecodecs, swept by butteraugli distance.

    Distance is libjxl's native rate knob (quality is mapped onto it); it is continuous
    and the rate changes smoothly with its logarithm. libjxl's output does not depend on
    its thread count, so threads are left to the library.
    """

    name = "jxl"
    library = "libjxl"
    extension = ".jxl"
    setting_name = "distance"
    setting_min = JXL_DISTANCE_MIN
    setting_max = JXL_DISTANCE_MAX
    setting_is_integer = False
    higher_setting_more_bits = False
    setting_scale = "log"
    fixed_options = MappingProxyType(
        {"effort": JXL_EFFORT, "lossless": JXL_LOSSLESS, "container": JXL_CONTAINER}
    )

    @property
    def version(self) -> str:
        """libjxl version of imagecodecs."""
        return _without_prefix(imagecodecs.jpegxl_version(), "libjxl")

    @classmethod
    def is_available(cls) -> bool:
        """True if imagecodecs has JPEG XL."""
        return bool(imagecodecs.JPEGXL.available)

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        return bytes(
            imagecodecs.jpegxl_encode(
                rgb,
                distance=float(setting),
                lossless=JXL_LOSSLESS,
                effort=JXL_EFFORT,
                usecontainer=JXL_CONTAINER,
            )
        )

    def _decode(self, data: bytes) -> np.ndarray:
        return np.asarray(imagecodecs.jpegxl_decode(data))


# --- HEIF ------------------------------------------------------------------------------------


def _x265_version() -> str | None:
    """x265 version from libheif's encoder list (``"x265 HEVC encoder (4.3+1-...)"``)."""
    description = pillow_heif.libheif_info().get("encoders", {}).get("x265")
    if not description:
        return None
    match = re.search(r"\(([^)]+)\)", description)
    return match.group(1) if match else description


class HeifCodec(Codec):
    """HEIF with HEVC intra coding by x265 through libheif (pillow-heif).

    libheif maps quality q to x265 CRF (100 - q) / 2 and x265 rounds to whole
    quantisers, so one quality step changes the rate by up to ~10%: rate control returns
    the closest point when 3% is out of reach. Decoding uses libheif's libde265.
    """

    name = "heif"
    library = "libheif/x265"
    extension = ".heic"
    setting_name = "quality"
    setting_min = HEIF_QUALITY_MIN
    setting_max = HEIF_QUALITY_MAX
    setting_is_integer = True
    higher_setting_more_bits = True
    fixed_options = MappingProxyType(
        {
            "chroma": HEIF_CHROMA,
            "preset": HEIF_PRESET,
            "tune": HEIF_TUNE,
            "save_nclx_profile": HEIF_SAVE_NCLX,
        }
    )

    @property
    def version(self) -> str:
        """``"<libheif>/<x265>"``, e.g. ``"1.23.6/4.3+1-e9b8812"``."""
        libheif = pillow_heif.libheif_info().get("libheif", pillow_heif.libheif_version())
        return f"{libheif}/{_x265_version() or 'unknown'}"

    @classmethod
    def is_available(cls) -> bool:
        """True if pillow-heif's libheif has the x265 encoder."""
        return _x265_version() is not None

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        height, width, _ = rgb.shape
        heif_file = pillow_heif.from_bytes(mode="RGB", size=(width, height), data=rgb.tobytes())
        buffer = io.BytesIO()
        heif_file.save(
            buffer,
            quality=int(setting),
            chroma=HEIF_CHROMA,
            enc_params={"preset": HEIF_PRESET, "tune": HEIF_TUNE},
            save_nclx_profile=HEIF_SAVE_NCLX,
        )
        return buffer.getvalue()

    def _decode(self, data: bytes) -> np.ndarray:
        heif_file = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        if heif_file.mode != "RGB":
            raise CodecError(f"heif: decoded mode {heif_file.mode!r}, expected 'RGB'")
        return np.array(heif_file)


# --- JPEG 2000 -------------------------------------------------------------------------------


class Jp2Codec(Codec):
    """JPEG 2000 (JP2 file) by openjpeg through Pillow, swept by compression ratio.

    The ratio is relative to the raw 24 bits per pixel: openjpeg truncates the code
    blocks to hit ``24 / ratio`` bits per pixel of codestream, so it is a direct rate
    knob and rate control converges in few encodes.
    """

    name = "jp2"
    library = "openjpeg"
    extension = ".jp2"
    setting_name = "compression_ratio"
    setting_min = JP2_RATIO_MIN
    setting_max = JP2_RATIO_MAX
    setting_is_integer = False
    higher_setting_more_bits = False
    setting_scale = "log"
    fixed_options = MappingProxyType(
        {
            "irreversible": JP2_IRREVERSIBLE,
            "mct": JP2_MCT,
            "num_resolutions": JP2_NUM_RESOLUTIONS,
            "codeblock_size": "x".join(str(side) for side in JP2_CODEBLOCK_SIZE),
            "progression": JP2_PROGRESSION,
            "file_format": JP2_FILE_FORMAT,
        }
    )

    @property
    def version(self) -> str:
        """openjpeg version linked into Pillow."""
        return _pillow_version("jpg_2000")

    @classmethod
    def is_available(cls) -> bool:
        """True if Pillow is linked with openjpeg."""
        return bool(features.check_codec("jpg_2000"))

    def _encode(self, rgb: RGB8, setting: float) -> bytes:
        shortest_side = min(rgb.shape[0], rgb.shape[1])
        resolutions = min(JP2_NUM_RESOLUTIONS, shortest_side.bit_length())
        return _pillow_save(
            rgb,
            "JPEG2000",
            quality_mode="rates",
            quality_layers=[float(setting)],
            irreversible=JP2_IRREVERSIBLE,
            mct=JP2_MCT,
            num_resolutions=resolutions,
            codeblock_size=JP2_CODEBLOCK_SIZE,
            progression=JP2_PROGRESSION,
            no_jp2=JP2_FILE_FORMAT != "jp2",
        )

    def _decode(self, data: bytes) -> np.ndarray:
        return _pillow_decode(data, "JPEG2000")


# --- registry --------------------------------------------------------------------------------

#: The built-in codecs, in the order :func:`available_codecs` lists them.
BUILTIN_CODECS: Final[tuple[type[Codec], ...]] = (
    JpegCodec,
    WebpCodec,
    AvifCodec,
    JxlCodec,
    HeifCodec,
    Jp2Codec,
)


def available_codecs() -> list[str]:
    """Names of the codecs that can run here, in a fixed order.

    Returns
    -------
    list of str
        Subset of ``["jpeg", "webp", "avif", "jxl", "heif", "jp2"]``; a codec whose
        library is missing or incapable is left out rather than raising.
    """
    return [codec_type.name for codec_type in BUILTIN_CODECS if codec_type.is_available()]


def get_codec(name: str) -> Codec:
    """Return the codec of a name.

    Parameters
    ----------
    name : str
        One of :func:`available_codecs`.

    Returns
    -------
    Codec
        A fresh instance (codecs hold no state).

    Raises
    ------
    UnknownCodecError
        If no available codec has that name; the message lists the available ones.
    """
    for codec_type in BUILTIN_CODECS:
        if codec_type.name == name and codec_type.is_available():
            return codec_type()
    raise UnknownCodecError(name, available_codecs())
