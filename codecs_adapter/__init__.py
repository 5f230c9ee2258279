"""Codecs, rate control, ladders, imports and objective metrics for Codec Arena.

A plain library: it never imports Django. The Django apps hand it arrays and paths and
store what comes back. See docs/codecs.md.
"""

from __future__ import annotations

from codecs_adapter.cache import EncodeCache, encode_key
from codecs_adapter.codecs import (
    Codec,
    CodecError,
    UnknownCodecError,
    available_codecs,
    get_codec,
)
from codecs_adapter.external import (
    CommandCodec,
    CommandCodecConfig,
    command_codec_from_mapping,
    load_command_codecs,
)
from codecs_adapter.images import (
    DEFAULT_MAX_PIXELS,
    ImageTooLarge,
    load_rgb,
    pixels_sha256,
    png_bytes,
    sha256_bytes,
    write_png,
)
from codecs_adapter.imports import (
    ImportChanged,
    ImportedImage,
    ImportInvalid,
    ImportProblem,
    ImportReport,
    ImportResult,
    import_reconstructions,
    iter_imported,
    validate_import,
)
from codecs_adapter.ladder import Ladder, LadderResult, TextProgress, UnreachedTarget, run_ladders
from codecs_adapter.metrics import compute_metrics, ms_ssim, psnr_rgb, psnr_y, ssim, ssimulacra2
from codecs_adapter.ratecontrol import (
    RatePoint,
    TargetUnreachable,
    bits_per_pixel,
    encode_at,
    encode_to_bpp,
)
from codecs_adapter.records import StimulusRecord

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Codec",
    "CodecError",
    "CommandCodec",
    "CommandCodecConfig",
    "EncodeCache",
    "ImageTooLarge",
    "ImportChanged",
    "ImportInvalid",
    "ImportProblem",
    "ImportReport",
    "ImportResult",
    "ImportedImage",
    "Ladder",
    "LadderResult",
    "RatePoint",
    "StimulusRecord",
    "TargetUnreachable",
    "TextProgress",
    "UnknownCodecError",
    "UnreachedTarget",
    "available_codecs",
    "bits_per_pixel",
    "command_codec_from_mapping",
    "compute_metrics",
    "encode_at",
    "encode_key",
    "encode_to_bpp",
    "get_codec",
    "import_reconstructions",
    "iter_imported",
    "load_command_codecs",
    "load_rgb",
    "ms_ssim",
    "pixels_sha256",
    "png_bytes",
    "psnr_rgb",
    "psnr_y",
    "run_ladders",
    "sha256_bytes",
    "ssim",
    "ssimulacra2",
    "validate_import",
    "write_png",
]
