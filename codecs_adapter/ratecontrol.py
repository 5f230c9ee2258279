"""Rate control: encode an image at a setting, or find the setting that hits a bitrate.

Conditions of a study must be rate-matched per image, so :func:`encode_to_bpp` searches a
codec's setting for the value whose bitstream has the target bits per pixel *for this
image*. The search is regula falsi on ``log(bpp)``, safeguarded by bisection:

1. Positions ``u`` in ``[0, 1]`` run from the setting that spends the fewest bits to the
   one that spends the most, evenly in the codec's :attr:`~Codec.setting_scale`
   (linear for quality, logarithmic for distance or compression ratio), so that
   ``log(bpp)`` is close to linear in ``u`` for every codec.
2. The first encode is at :data:`START_POSITION`. Until the target is bracketed, each
   step extrapolates along the secant through the two points nearest the target (the
   first step assumes :data:`PRIOR_LOG_BPP_SLOPE`), clamped to the ends of the range.
3. Once bracketed, each step interpolates ``log(bpp)`` to the target: inverse quadratic
   through the bracket's ends and the next-best probe when that lands inside the
   bracket, else linearly between the ends (regula falsi). If two steps failed to halve
   the bracket, the next one bisects it (the safeguard of Brent's method).
4. Integer settings are rounded, and never encoded twice: when rounding lands on a known
   value the nearest unknown integer inside the bracket is taken instead.

With an :class:`~codecs_adapter.cache.EncodeCache`, every encode of the search is looked
up before it is run and stored after: the search is deterministic, so repeating it (a
ladder resumed after an interruption) replays the same settings from the cache.

The search stops as soon as a bitstream is within ``rel_tol`` of the target, when the
bracket can shrink no further (adjacent integers, or a continuous bracket narrower than
:data:`MIN_BRACKET_WIDTH`), or after ``max_encodes`` encodes, and returns the point
closest to the target in ``|log(bpp / target)|``. An integer setting may be too coarse
for ``rel_tol``; the closest point is then returned and its :attr:`RatePoint.bpp` shows
the miss. A target that lies beyond what the setting's range can reach by more than
``rel_tol`` raises :class:`TargetUnreachable`; it is never silently clamped.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from codecs_adapter.cache import EncodeCache
from codecs_adapter.codecs import Codec, CodecError, OptionValue
from codecs_adapter.images import RGB8, pixels_sha256, validate_rgb

#: Relative bitrate tolerance of :func:`encode_to_bpp`: stop within 3% of the target.
DEFAULT_REL_TOL: Final = 0.03

#: Most encodes one :func:`encode_to_bpp` call may spend (typical searches need 2-6).
DEFAULT_MAX_ENCODES: Final = 16

#: Search position of the first encode (the middle of the setting range).
START_POSITION: Final = 0.5

#: Assumed slope of ``ln(bpp)`` against search position, used only to size the second
#: encode of a search (later steps use measured slopes). The built-in codecs span
#: ``ln`` 3.5-6 over the whole range, most of it near the ends; 3 gave the fewest encodes
#: on average over them (measured on five scikit-image photos, targets 0.1-1.5 bpp).
PRIOR_LOG_BPP_SLOPE: Final = 3.0

#: A continuous search stops once its bracket is narrower than this (in positions, i.e. a
#: fraction of the setting range): finer steps no longer change the bitstream.
MIN_BRACKET_WIDTH: Final = 1e-3

#: Bisection safeguard (as in Brent's method): when the bracket is still wider than
#: ``BISECTION_TRIGGER`` times its width ``BISECTION_LOOKBACK`` steps earlier, the next
#: step bisects instead of interpolating, so a badly curved rate function cannot stall
#: the search.
BISECTION_TRIGGER: Final = 0.5
BISECTION_LOOKBACK: Final = 2

#: Bits in a byte.
BITS_PER_BYTE: Final = 8

#: Smallest ``max_encodes``: one probe plus one encode at an end of the range.
MIN_ENCODES: Final = 2


class TargetUnreachable(CodecError):
    """No setting of a codec gets within tolerance of a target bitrate on an image.

    Attributes
    ----------
    codec : str
        Name of the codec.
    target_bpp : float
        The target.
    min_bpp, max_bpp : float
        Lowest and highest bitrate measured on this image (the ends of the setting range).
    rel_tol : float
        The tolerance that was allowed.
    encodes : int or None
        Encodes the search spent before giving up, when known.
    """

    def __init__(
        self,
        *,
        codec: str,
        target_bpp: float,
        min_bpp: float,
        max_bpp: float,
        rel_tol: float,
        encodes: int | None = None,
    ) -> None:
        self.codec = codec
        self.target_bpp = target_bpp
        self.min_bpp = min_bpp
        self.max_bpp = max_bpp
        self.rel_tol = rel_tol
        self.encodes = encodes
        super().__init__(
            f"{codec}: target {target_bpp:.4g} bpp is unreachable on this image; "
            f"reachable range is {min_bpp:.4g} to {max_bpp:.4g} bpp "
            f"(tolerance {rel_tol:.1%})"
        )

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Keyword-only arguments: rebuild through a partial so the error survives
        # pickling (it crosses process boundaries in ladders).
        rebuild = functools.partial(
            TargetUnreachable,
            codec=self.codec,
            target_bpp=self.target_bpp,
            min_bpp=self.min_bpp,
            max_bpp=self.max_bpp,
            rel_tol=self.rel_tol,
            encodes=self.encodes,
        )
        return (rebuild, ())


@dataclass(frozen=True)
class RatePoint:
    """One encoding of one image: the bitstream, its rate and its reconstruction.

    Attributes
    ----------
    codec, library, version : str
        The codec's name, implementation and runtime library version.
    setting_name : str
        Name of the swept setting.
    setting : float
        Its value (an ``int`` for integer settings).
    target_bpp : float or None
        The rate asked for, or None for an encode at a given setting.
    bpp : float
        Achieved bits per pixel of the original image.
    n_bytes : int
        Size of the bitstream.
    bitstream : bytes
        The encoded file.
    decoded : numpy.ndarray
        Its reconstruction, uint8 ``(height, width, 3)``, read-only.
    encodes : int
        How many settings were tried to produce this point (encoded, or found in a
        cache).
    width, height : int
        Size of the original image.
    fixed_options : Mapping[str, OptionValue]
        The codec's other encoder options.
    cache_hits : int
        How many of the ``encodes`` came from a cache instead of the encoder.
    """

    codec: str
    library: str
    version: str
    setting_name: str
    setting: float
    target_bpp: float | None
    bpp: float
    n_bytes: int
    bitstream: bytes = field(repr=False)
    decoded: RGB8 = field(repr=False, compare=False)
    encodes: int
    width: int
    height: int
    fixed_options: Mapping[str, OptionValue] = field(compare=False)
    cache_hits: int = field(default=0, compare=False)

    @property
    def settings(self) -> dict[str, OptionValue]:
        """The complete encoder configuration: the swept setting, then the fixed options."""
        return {self.setting_name: self.setting, **self.fixed_options}

    @property
    def rel_error(self) -> float | None:
        """``bpp / target_bpp - 1``, or None when there was no target."""
        if self.target_bpp is None:
            return None
        return self.bpp / self.target_bpp - 1.0


def bits_per_pixel(n_bytes: int, width: int, height: int) -> float:
    """Bits of a bitstream per pixel of the original image.

    Parameters
    ----------
    n_bytes : int
        Size of the bitstream (the whole file, container included).
    width, height : int
        Size of the original image in pixels.

    Returns
    -------
    float
        ``8 * n_bytes / (width * height)``.

    Raises
    ------
    ValueError
        If ``n_bytes`` is negative or the image has no pixels.
    """
    if n_bytes < 0:
        raise ValueError(f"n_bytes must be >= 0, got {n_bytes}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return BITS_PER_BYTE * n_bytes / (width * height)


def _make_point(
    codec: Codec,
    rgb: RGB8,
    setting: float,
    bitstream: bytes,
    target_bpp: float | None,
    encodes: int,
    cache_hits: int = 0,
) -> RatePoint:
    """Decode a bitstream and wrap everything in a RatePoint."""
    decoded = codec.decode(bitstream)
    if decoded.shape != rgb.shape:
        raise CodecError(
            f"{codec.name}: decoded shape {decoded.shape} differs from the original {rgb.shape}"
        )
    decoded.flags.writeable = False
    height, width, _ = rgb.shape
    return RatePoint(
        codec=codec.name,
        library=codec.library,
        version=codec.version,
        setting_name=codec.setting_name,
        setting=setting,
        target_bpp=target_bpp,
        bpp=bits_per_pixel(len(bitstream), width, height),
        n_bytes=len(bitstream),
        bitstream=bitstream,
        decoded=decoded,
        encodes=encodes,
        width=width,
        height=height,
        fixed_options=dict(codec.fixed_options),
        cache_hits=cache_hits,
    )


class _Encoder:
    """Encodes one image with one codec, through a cache if there is one, and counts."""

    def __init__(
        self, codec: Codec, rgb: RGB8, cache: EncodeCache | None, source_sha256: str | None
    ) -> None:
        self.codec = codec
        self.rgb = rgb
        self.cache = cache
        if cache is not None and source_sha256 is None:
            source_sha256 = pixels_sha256(rgb)
        self.source_sha256 = source_sha256
        self.cache_hits = 0

    def __call__(self, setting: float) -> bytes:
        if self.cache is None or self.source_sha256 is None:
            return self.codec.encode(self.rgb, setting)
        bitstream, hit = self.cache.encode(
            self.codec, self.rgb, setting, source_sha256=self.source_sha256
        )
        self.cache_hits += hit
        return bitstream


def encode_at(
    codec: Codec,
    rgb: np.ndarray,
    setting: float,
    *,
    cache: EncodeCache | None = None,
    source_sha256: str | None = None,
) -> RatePoint:
    """Encode an image at one setting and decode it again.

    Parameters
    ----------
    codec : Codec
        The codec.
    rgb : numpy.ndarray
        uint8 image of shape ``(height, width, 3)``.
    setting : float
        Value of the codec's setting.
    cache : EncodeCache, optional
        Where to look the encode up first, and store it after.
    source_sha256 : str, optional
        :func:`~codecs_adapter.images.pixels_sha256` of ``rgb`` if already known
        (computed here when a cache needs it).

    Returns
    -------
    RatePoint
        With ``target_bpp=None`` and ``encodes=1``.

    Raises
    ------
    ValueError
        If the image or the setting is invalid.
    CodecError
        If encoding or decoding fails, or the reconstruction has another size.
    """
    pixels = validate_rgb(rgb)
    value = codec.check_setting(setting)
    encoder = _Encoder(codec, pixels, cache, source_sha256)
    bitstream = encoder(value)
    return _make_point(codec, pixels, value, bitstream, None, 1, encoder.cache_hits)


@dataclass
class _Probe:
    """One encode of a search: where, at which setting, and how far from the target."""

    position: float
    setting: float
    bpp: float
    log_error: float  # ln(bpp / target)


class _RateSearch:
    """Bookkeeping of one search: the position <-> setting map and a cache of encodes."""

    def __init__(self, codec: Codec, encoder: _Encoder, target_bpp: float) -> None:
        self.codec = codec
        self.rgb = encoder.rgb
        self.encoder = encoder
        self.target_bpp = target_bpp
        few, many = codec.setting_min, codec.setting_max
        if not codec.higher_setting_more_bits:
            few, many = many, few
        self._few = self._scale(few)
        self._many = self._scale(many)
        self.bitstreams: dict[float, bytes] = {}
        self.probes: list[_Probe] = []

    def _scale(self, setting: float) -> float:
        return math.log(setting) if self.codec.setting_scale == "log" else float(setting)

    def _unscale(self, scaled: float) -> float:
        return math.exp(scaled) if self.codec.setting_scale == "log" else scaled

    def raw_setting_at(self, position: float) -> float:
        """The (unrounded) setting at a position, clamped to the codec's range."""
        value = self._unscale(self._few + position * (self._many - self._few))
        return min(max(value, self.codec.setting_min), self.codec.setting_max)

    def setting_at(self, position: float) -> float:
        """The valid setting at a position (rounded for integer settings)."""
        value = self.raw_setting_at(position)
        if self.codec.setting_is_integer:
            return self.codec.check_setting(math.floor(value + 0.5))
        return value

    def position_of(self, setting: float) -> float:
        return (self._scale(setting) - self._few) / (self._many - self._few)

    @property
    def encodes(self) -> int:
        return len(self.bitstreams)

    def measure(self, setting: float) -> _Probe:
        """Encode at a setting (once; repeats come from the cache) and record the probe."""
        for probe in self.probes:
            if probe.setting == setting:
                return probe
        bitstream = self.encoder(setting)
        self.bitstreams[setting] = bitstream
        height, width, _ = self.rgb.shape
        bpp = bits_per_pixel(len(bitstream), width, height)
        # An empty bitstream cannot happen for a real codec; treat it as "far too few bits".
        log_error = math.log(bpp / self.target_bpp) if bpp > 0 else -math.inf
        probe = _Probe(self.position_of(setting), setting, bpp, log_error)
        self.probes.append(probe)
        return probe

    def is_known(self, setting: float) -> bool:
        return setting in self.bitstreams


def _secant_step(search: _RateSearch) -> float:
    """Next position while the target is not bracketed: extrapolate toward it."""
    nearest = sorted(search.probes, key=lambda probe: abs(probe.log_error))
    best = nearest[0]
    slope = PRIOR_LOG_BPP_SLOPE
    for other in nearest[1:]:
        if other.position != best.position and math.isfinite(other.log_error):
            measured = (best.log_error - other.log_error) / (best.position - other.position)
            if measured > 0 and math.isfinite(measured):
                slope = measured
            break
    if not math.isfinite(best.log_error):
        return 1.0
    return min(max(best.position - best.log_error / slope, 0.0), 1.0)


def _integer_between(search: _RateSearch, low: float, high: float, wanted: float) -> float | None:
    """The unknown integer setting strictly between two settings nearest to ``wanted``."""
    first, last = math.floor(min(low, high)) + 1, math.ceil(max(low, high)) - 1
    candidates = [value for value in range(first, last + 1) if not search.is_known(value)]
    if not candidates:
        return None
    return min(candidates, key=lambda value: (abs(value - wanted), value))


def _unreachable(search: _RateSearch, rel_tol: float) -> TargetUnreachable:
    """Measure both ends of the range and build the error that reports them."""
    for end in (0.0, 1.0):
        search.measure(search.setting_at(end))
    rates = [probe.bpp for probe in search.probes]
    return TargetUnreachable(
        codec=search.codec.name,
        target_bpp=search.target_bpp,
        min_bpp=min(rates),
        max_bpp=max(rates),
        rel_tol=rel_tol,
        encodes=search.encodes,
    )


def _next_setting(
    search: _RateSearch, rel_tol: float, max_encodes: int, widths: list[float]
) -> float | None:
    """Choose the next setting to encode, or None to stop; raise if the target is out of reach.

    ``widths`` carries the bracket widths of earlier steps (for the bisection safeguard).
    """
    below = [probe for probe in search.probes if probe.log_error < 0]
    above = [probe for probe in search.probes if probe.log_error > 0]
    if not (below and above):
        # Not bracketed: every probe has too few bits (go up) or too many (go down).
        end = 1.0 if below else 0.0
        end_setting = search.setting_at(end)
        if search.is_known(end_setting):
            raise _unreachable(search, rel_tol)
        if search.encodes >= max_encodes - 1:
            return end_setting  # last encode: settle reachability rather than give up
        setting = search.setting_at(_secant_step(search))
        if search.is_known(setting):
            best = min(search.probes, key=lambda probe: abs(probe.log_error))
            step = 1 if (end == 1.0) == search.codec.higher_setting_more_bits else -1
            nudged = best.setting + step
            in_range = search.codec.setting_min <= nudged <= search.codec.setting_max
            setting = nudged if in_range and not search.is_known(nudged) else end_setting
        return setting

    if search.encodes >= max_encodes:
        return None
    # The bracket: the closest probe on each side of the target. On a plateau (equal
    # rates, e.g. where headers dominate) ties go to the probe nearest the other side,
    # so that the bracket keeps shrinking.
    low = max(below, key=lambda probe: (probe.log_error, probe.position))
    high = min(above, key=lambda probe: (probe.log_error, -probe.position))
    width = abs(high.position - low.position)
    if not search.codec.setting_is_integer and width < MIN_BRACKET_WIDTH:
        return None
    stalled = (
        len(widths) >= BISECTION_LOOKBACK
        and width > BISECTION_TRIGGER * widths[-BISECTION_LOOKBACK]
    )
    midpoint = (low.position + high.position) / 2
    position = midpoint if stalled else _interpolate(search, low, high)
    widths.append(width)
    if search.codec.setting_is_integer:
        return _integer_between(search, low.setting, high.setting, search.raw_setting_at(position))
    setting = search.setting_at(position)
    if search.is_known(setting):
        setting = search.setting_at((low.position + high.position) / 2)
    return None if search.is_known(setting) else setting


def _interpolate(search: _RateSearch, low: _Probe, high: _Probe) -> float:
    """Position where ``log(bpp)`` is estimated to meet the target, inside a bracket.

    Inverse quadratic interpolation through the bracket's ends and the next-best probe
    follows the curvature of rate against setting (steep near the top of a quality
    scale); when it is not possible or leaves the bracket, linear interpolation
    (regula falsi) between the ends is used.
    """
    others = [
        probe
        for probe in search.probes
        if probe is not low
        and probe is not high
        and math.isfinite(probe.log_error)
        and probe.log_error not in (low.log_error, high.log_error)
    ]
    left, right = sorted((low.position, high.position))
    if others:
        third = min(others, key=lambda probe: abs(probe.log_error))
        points = [(low.position, low.log_error), (high.position, high.log_error)]
        points.append((third.position, third.log_error))
        position = 0.0
        for index, (position_i, error_i) in enumerate(points):
            weight = 1.0
            for other_index, (_, error_j) in enumerate(points):
                if other_index != index:
                    weight *= -error_j / (error_i - error_j)
            position += weight * position_i
        if left < position < right:
            return position
    if not (math.isfinite(low.log_error) and math.isfinite(high.log_error)):
        return (low.position + high.position) / 2
    fraction = -low.log_error / (high.log_error - low.log_error)
    return low.position + fraction * (high.position - low.position)


def encode_to_bpp(
    codec: Codec,
    rgb: np.ndarray,
    target_bpp: float,
    *,
    rel_tol: float = DEFAULT_REL_TOL,
    max_encodes: int = DEFAULT_MAX_ENCODES,
    cache: EncodeCache | None = None,
    source_sha256: str | None = None,
) -> RatePoint:
    """Find the codec setting whose bitstream has a target bitrate on this image.

    See the module docstring for the search. Typical searches take 2-6 encodes.

    Parameters
    ----------
    codec : Codec
        The codec.
    rgb : numpy.ndarray
        uint8 image of shape ``(height, width, 3)``.
    target_bpp : float
        Target bits per pixel of the original image.
    rel_tol : float, optional
        Stop as soon as ``|bpp / target_bpp - 1| <= rel_tol``; also how far outside the
        reachable range a target may lie and still be served by the end of the range.
    max_encodes : int, optional
        Most encodes to spend. Proving a target unreachable may take up to two more, to
        measure both ends of the range for the error message.
    cache : EncodeCache, optional
        Where each encode of the search is looked up first, and stored after.
    source_sha256 : str, optional
        :func:`~codecs_adapter.images.pixels_sha256` of ``rgb`` if already known
        (computed here when a cache needs it).

    Returns
    -------
    RatePoint
        The encode closest to the target in ``|log(bpp / target_bpp)|``; within
        ``rel_tol`` unless the setting is too coarse or the budget ran out (check
        :attr:`RatePoint.rel_error`). ``encodes`` counts the encodes spent.

    Raises
    ------
    ValueError
        If the image is invalid, ``target_bpp`` is not a positive finite number,
        ``rel_tol`` is not in (0, 1) or ``max_encodes`` is below :data:`MIN_ENCODES`.
    TargetUnreachable
        If even the ends of the setting range miss the target by more than ``rel_tol``;
        the message gives the reachable range.
    CodecError
        If encoding or decoding fails.
    """
    pixels = validate_rgb(rgb)
    is_number = isinstance(target_bpp, numbers.Real) and not isinstance(target_bpp, bool)
    if not (is_number and math.isfinite(target_bpp) and target_bpp > 0):
        raise ValueError(f"target_bpp must be a positive finite number, got {target_bpp!r}")
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol!r}")
    if max_encodes < MIN_ENCODES:
        raise ValueError(f"max_encodes must be at least {MIN_ENCODES}, got {max_encodes}")

    encoder = _Encoder(codec, pixels, cache, source_sha256)
    search = _RateSearch(codec, encoder, float(target_bpp))
    within_low, within_high = math.log1p(-rel_tol), math.log1p(rel_tol)
    widths: list[float] = []
    setting: float | None = search.setting_at(START_POSITION)
    while setting is not None:
        probe = search.measure(setting)
        if within_low <= probe.log_error <= within_high:
            break
        setting = _next_setting(search, rel_tol, max_encodes, widths)

    best = min(search.probes, key=lambda probe: abs(probe.log_error))
    bitstream = search.bitstreams[best.setting]
    return _make_point(
        codec,
        pixels,
        best.setting,
        bitstream,
        float(target_bpp),
        search.encodes,
        encoder.cache_hits,
    )
