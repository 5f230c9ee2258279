"""The plain records that the library hands to its callers (the Django apps, the CLI).

A :class:`StimulusRecord` is one reconstruction ready to show to raters: its PNG bytes
(metadata-free, see :func:`~codecs_adapter.images.png_bytes`), the rate it cost and how it
was made, and its objective metrics. Ladders (:mod:`codecs_adapter.ladder`) and imports of
external reconstructions (:mod:`codecs_adapter.imports`) both produce them, so a study
stores both kinds the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from codecs_adapter.codecs import OptionValue

#: Library and version recorded for imported reconstructions whose manifest names none.
UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class StimulusRecord:
    """One stimulus: a source image under one condition.

    Attributes
    ----------
    image : str
        Name of the source image.
    condition : str
        Name of the condition (``"avif-r2"``, ``"pico_r3"``).
    codec : str
        Name of the codec.
    rate_index : int
        Position on the codec's rate ladder, 0 = fewest bits.
    target_bpp : float or None
        The rate asked for; None when there was no target (fixed setting, import).
    bpp : float
        Bits of the bitstream per pixel of the source image.
    n_bytes : int
        Size of the bitstream.
    width, height : int
        Size of the image.
    library, version : str
        The codec's implementation and version (``"unknown"`` if an import names none).
    setting_name : str or None
        Name of the swept setting (None for imports).
    setting : float or None
        Its value.
    settings : dict
        The complete encoder configuration (empty for imports).
    encodes : int
        Settings the rate search tried (0 for imports).
    within_tolerance : bool
        Whether ``bpp`` is within the rate tolerance of ``target_bpp`` (True when there
        is no target).
    png : bytes
        The stimulus file: lossless, metadata-free PNG of the reconstruction.
    sha256 : str
        SHA-256 of ``png``.
    bitstream_sha256 : str or None
        SHA-256 of the bitstream, when the bitstream itself was seen.
    metrics : dict of str to float
        Objective metrics against the source (:func:`~codecs_adapter.metrics.compute_metrics`);
        empty when not computed.
    """

    image: str
    condition: str
    codec: str
    rate_index: int
    target_bpp: float | None
    bpp: float
    n_bytes: int
    width: int
    height: int
    library: str
    version: str
    setting_name: str | None
    setting: float | None
    settings: dict[str, OptionValue]
    encodes: int
    within_tolerance: bool
    png: bytes = field(repr=False)
    sha256: str
    bitstream_sha256: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def rel_error(self) -> float | None:
        """``bpp / target_bpp - 1``, or None when there was no target."""
        if self.target_bpp is None:
            return None
        return self.bpp / self.target_bpp - 1.0
