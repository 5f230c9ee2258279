"""Codecs, rate control and stimulus images for Codec Arena.

A plain library: it never imports Django. The Django apps hand it arrays and paths and
store what comes back.
"""

from __future__ import annotations

from codecs_adapter.codecs import (
    Codec,
    CodecError,
    UnknownCodecError,
    available_codecs,
    get_codec,
)
from codecs_adapter.images import load_rgb, png_bytes, sha256_bytes, write_png
from codecs_adapter.ratecontrol import (
    RatePoint,
    TargetUnreachable,
    bits_per_pixel,
    encode_at,
    encode_to_bpp,
)

__all__ = [
    "Codec",
    "CodecError",
    "RatePoint",
    "TargetUnreachable",
    "UnknownCodecError",
    "available_codecs",
    "bits_per_pixel",
    "encode_at",
    "encode_to_bpp",
    "get_codec",
    "load_rgb",
    "png_bytes",
    "sha256_bytes",
    "write_png",
]
