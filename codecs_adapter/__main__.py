"""Command line of codecs_adapter: rate ladders, imports, the codecs available here.

    python -m codecs_adapter ladder IMAGES_DIR --codec jpeg --codec avif \\
        --bpp 0.1 0.2 0.4 --out DIR
    python -m codecs_adapter import DIR
    python -m codecs_adapter codecs

See docs/codecs.md. Exit status: 0 on success; 1 when a ladder left targets unreached
(or, with ``--strict``, missed the tolerance) or an import folder has problems; 2 on
usage errors.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np

from codecs_adapter.codecs import BUILTIN_CODECS, Codec, CodecError, available_codecs
from codecs_adapter.external import load_command_codecs
from codecs_adapter.images import DEFAULT_MAX_PIXELS, load_rgb, write_file_atomically, write_png
from codecs_adapter.imports import (
    MANIFEST_NAME,
    NAME_PATTERN,
    REFERENCE_NAME,
    validate_import,
)
from codecs_adapter.ladder import Ladder, LadderResult, TextProgress, run_ladders
from codecs_adapter.metrics import METRIC_NAMES
from codecs_adapter.ratecontrol import DEFAULT_MAX_ENCODES, DEFAULT_REL_TOL

#: Extensions of the source images a ladder reads from IMAGES_DIR.
SOURCE_EXTENSIONS: Final = (
    ".png",
    ".jpg",
    ".jpeg",
    ".ppm",
    ".pnm",
    ".tif",
    ".tiff",
    ".webp",
    ".bmp",
)

#: Name of the list of unreached targets written beside the manifest.
UNREACHED_NAME: Final = "unreachable.csv"

#: Cache folder inside the output folder, unless --cache says otherwise (hidden, so that
#: importing the output folder skips it).
DEFAULT_CACHE_NAME: Final = ".cache"

#: Columns of the ladder manifest (then one per metric).
LADDER_COLUMNS: Final = (
    "image",
    "condition",
    "codec",
    "rate_index",
    "target_bpp",
    "bpp",
    "within_tolerance",
    "setting_name",
    "setting",
    "bytes",
    "encodes",
    "library",
    "version",
    "path",
    "sha256",
)

EXIT_OK: Final = 0
EXIT_INCOMPLETE: Final = 1
EXIT_USAGE: Final = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m codecs_adapter", description="Codecs, rate ladders and imports."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ladder = commands.add_parser(
        "ladder", help="encode every image with every codec at every target bitrate"
    )
    ladder.add_argument("images", type=Path, help="folder of source images (one file each)")
    ladder.add_argument(
        "--codec",
        action="append",
        required=True,
        dest="codecs",
        help="codec name (repeat for several); see `python -m codecs_adapter codecs`",
    )
    ladder.add_argument(
        "--bpp", type=float, nargs="+", required=True, help="target bits per pixel, increasing"
    )
    ladder.add_argument("--out", type=Path, required=True, help="output folder")
    ladder.add_argument(
        "--codec-config", type=Path, help="TOML file of external codecs ([codec.NAME] tables)"
    )
    ladder.add_argument(
        "--cache", type=Path, help=f"cache folder (default: OUT/{DEFAULT_CACHE_NAME})"
    )
    ladder.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    ladder.add_argument("--rel-tol", type=float, default=DEFAULT_REL_TOL, help="rate tolerance")
    ladder.add_argument(
        "--max-encodes", type=int, default=DEFAULT_MAX_ENCODES, help="most encodes per target"
    )
    ladder.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    ladder.add_argument("--no-metrics", action="store_true", help="skip objective metrics")
    ladder.add_argument(
        "--strict",
        action="store_true",
        help="treat targets missed by more than the tolerance as unreached (not written)",
    )

    imports = commands.add_parser("import", help="validate a folder of external reconstructions")
    imports.add_argument("folder", type=Path)
    imports.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)

    commands.add_parser("codecs", help="list the codecs available here")
    return parser


class _UsageError(Exception):
    """A problem with the command's arguments or inputs (exit status 2)."""


def _source_images(folder: Path, max_pixels: int) -> dict[str, np.ndarray]:
    """Read every image file of a folder, named by its stem."""
    if not folder.is_dir():
        raise _UsageError(f"{folder} is not a folder")
    images: dict[str, np.ndarray] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in SOURCE_EXTENSIONS:
            continue
        if NAME_PATTERN.fullmatch(path.stem) is None:
            raise _UsageError(f"{path.name}: image names must be letters, digits, '.', '_', '-'")
        if path.stem in images:
            raise _UsageError(f"two source files are named {path.stem!r}")
        try:
            images[path.stem] = load_rgb(path, max_pixels=max_pixels)
        except (OSError, ValueError) as exc:
            raise _UsageError(str(exc)) from exc
    if not images:
        raise _UsageError(f"no images ({', '.join(SOURCE_EXTENSIONS)}) in {folder}")
    return images


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _write_ladder_outputs(
    out: Path, images: dict[str, np.ndarray], result: LadderResult, *, strict: bool
) -> tuple[int, list[list[str]]]:
    """Write the stimuli, references, manifest and unreached list; return rows written."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rgb in images.items():
        (out / name).mkdir(exist_ok=True)
        write_png(rgb, out / name / REFERENCE_NAME)
    metric_names = [name for name in METRIC_NAMES if any(name in s.metrics for s in result.stimuli)]
    unreached_rows = [
        [
            u.image,
            u.codec,
            u.condition,
            repr(u.target_bpp),
            repr(u.min_bpp),
            repr(u.max_bpp),
            u.message,
        ]
        for u in result.unreached
    ]
    written = 0
    with (out / MANIFEST_NAME).open("w", newline="", encoding="utf-8") as manifest:
        writer = csv.writer(manifest)
        writer.writerow([*LADDER_COLUMNS, *metric_names])
        for stimulus in result.stimuli:
            relative = f"{stimulus.image}/{stimulus.condition}.png"
            if strict and not stimulus.within_tolerance:
                (out / relative).unlink(missing_ok=True)  # from an earlier, lenient run
                unreached_rows.append(
                    [
                        stimulus.image,
                        stimulus.codec,
                        stimulus.condition,
                        repr(stimulus.target_bpp),
                        "",
                        "",
                        f"{stimulus.image}: {stimulus.codec}: closest rate {stimulus.bpp:.4g} bpp "
                        f"misses the target {stimulus.target_bpp:.4g} by more than the tolerance",
                    ]
                )
                continue
            write_file_atomically(stimulus.png, out / relative)
            writer.writerow(
                [
                    stimulus.image,
                    stimulus.condition,
                    stimulus.codec,
                    str(stimulus.rate_index),
                    _format(stimulus.target_bpp),
                    repr(stimulus.bpp),
                    "true" if stimulus.within_tolerance else "false",
                    stimulus.setting_name or "",
                    _format(stimulus.setting),
                    str(stimulus.n_bytes),
                    str(stimulus.encodes),
                    stimulus.library,
                    stimulus.version,
                    relative,
                    stimulus.sha256,
                    *[_format(stimulus.metrics.get(name)) for name in metric_names],
                ]
            )
            written += 1
    with (out / UNREACHED_NAME).open("w", newline="", encoding="utf-8") as unreached:
        writer = csv.writer(unreached)
        writer.writerow(
            ["image", "codec", "condition", "target_bpp", "min_bpp", "max_bpp", "reason"]
        )
        writer.writerows(unreached_rows)
    return written, unreached_rows


def _ladder(args: argparse.Namespace) -> int:
    extra: dict[str, Codec] = {}
    try:
        if args.codec_config is not None:
            extra.update(load_command_codecs(args.codec_config))
        ladders = [Ladder(codec, tuple(args.bpp)) for codec in args.codecs]
        unknown = [
            name for name in args.codecs if name not in extra and name not in available_codecs()
        ]
    except (OSError, ValueError) as exc:
        raise _UsageError(str(exc)) from exc
    if unknown:
        raise _UsageError(
            f"unknown or unavailable codecs {unknown}; available: "
            f"{', '.join([*available_codecs(), *extra])}"
        )
    images = _source_images(args.images, args.max_pixels)
    cache = args.cache if args.cache is not None else args.out / DEFAULT_CACHE_NAME
    jobs = len(images) * len(ladders) * len(args.bpp)
    print(
        f"{len(images)} images x {len(ladders)} codecs x {len(args.bpp)} targets = {jobs} stimuli"
    )
    try:
        result = run_ladders(
            images,
            ladders,
            codecs=extra,
            cache=cache,
            workers=args.workers,
            progress=TextProgress("stimuli"),
            rel_tol=args.rel_tol,
            max_encodes=args.max_encodes,
            metrics=not args.no_metrics,
        )
    except CodecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    written, unreached = _write_ladder_outputs(args.out, images, result, strict=args.strict)
    print(
        f"wrote {written} stimuli and {args.out / MANIFEST_NAME} in {result.seconds:.1f} s "
        f"({result.encoder_calls} encodes, {result.cache_hits} from the cache)"
    )
    if not args.strict:
        for stimulus in result.missed:
            print(
                f"  outside tolerance: {stimulus.image} {stimulus.condition}: "
                f"{stimulus.bpp:.4g} bpp for target {stimulus.target_bpp:.4g} "
                "(the closest this codec's setting allows)"
            )
    for row in unreached:
        print(f"  unreached, not written: {row[-1]}")
    if unreached:
        print(f"{len(unreached)} targets unreached; listed in {args.out / UNREACHED_NAME}")
        return EXIT_INCOMPLETE
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    report = validate_import(args.folder, max_pixels=args.max_pixels)
    print(report.describe())
    if not report.ok:
        return EXIT_INCOMPLETE
    for condition, codec in sorted(report.conditions.items()):
        print(f"  condition {condition}: codec {codec}")
    return EXIT_OK


def _codecs() -> int:
    available = set(available_codecs())
    for codec_type in BUILTIN_CODECS:
        if codec_type.name not in available:
            print(f"{codec_type.name:6s} (not available here)")
            continue
        codec = codec_type()
        low, high = codec.setting_min, codec.setting_max
        direction = "more bits" if codec.higher_setting_more_bits else "fewer bits"
        kind = "whole" if codec.setting_is_integer else "continuous"
        print(
            f"{codec.name:6s} {codec.library} {codec.version}: {codec.setting_name} "
            f"{low:g}-{high:g} ({kind}; higher = {direction})"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "ladder":
            return _ladder(args)
        if args.command == "import":
            return _import(args)
        return _codecs()
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
