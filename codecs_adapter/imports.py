"""Imports of precomputed reconstructions: how PICO, HiFiC, MRIC or JPEG AI results arrive.

Learned codecs are rarely run here; their authors send reconstructions. The layout is the
one used in the field::

    FOLDER/
      manifest.csv              image,condition,codec,bytes[,library,version]
      kodim01/
        reference.png           the original
        pico_r3.png             the reconstruction of condition "pico_r3"
        pico_r3.bin             its bitstream (optional; any extension but .png)
        hific_r1.png
        ...
      kodim02/
        ...

- One folder per source image, named after it; ``reference.png`` is the original.
- One PNG per condition, named ``<condition>.png``; every condition must exist for every
  image.
- The rate of each reconstruction comes from the manifest's ``bytes`` column, or from the
  bitstream file beside it (``<condition>.<ext>``, any extension but ``.png``), whose
  size is taken; when both are there they must agree.
- ``manifest.csv`` is optional when every reconstruction has its bitstream file. It names
  the codec of each condition; without it the codec is the condition name less a rate
  suffix (``pico_r3`` and ``pico-r3`` are codec ``pico``). Optional columns ``library``
  and ``version`` are recorded with each stimulus (``"unknown"`` otherwise). Other
  columns are ignored.
- Hidden files (``.DS_Store``) are skipped; other files that are not part of the layout
  are listed in the report as ignored.

:func:`validate_import` checks everything before anything is used and collects *every*
problem, each with the file it concerns: a file that does not decode or is not a PNG, a
reconstruction whose size differs from its reference's, a size that is not positive, a
condition missing for an image (each missing pair is listed), a name or link that leads
outside the folder, an image over the pixel limit (checked from the header, before
decoding), an inconsistent manifest. :func:`import_reconstructions` imports only a clean
folder, so a bad folder imports nothing.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, UnidentifiedImageError

from codecs_adapter.images import (
    DEFAULT_MAX_PIXELS,
    RGB8,
    ImageTooLarge,
    load_rgb,
    open_image,
    png_bytes,
    sha256_bytes,
)
from codecs_adapter.metrics import compute_metrics
from codecs_adapter.ratecontrol import bits_per_pixel
from codecs_adapter.records import UNKNOWN, StimulusRecord

#: File name of the original in each image folder.
REFERENCE_NAME: Final = "reference.png"
#: File name of the manifest at the top of the folder.
MANIFEST_NAME: Final = "manifest.csv"
#: Extension of reconstruction files.
RECONSTRUCTION_SUFFIX: Final = ".png"
#: Columns the manifest must have, and those it may have.
MANIFEST_COLUMNS: Final = ("image", "condition", "codec", "bytes")
MANIFEST_OPTIONAL_COLUMNS: Final = ("library", "version")
#: Image and condition names: letters, digits, '.', '_', '-', not starting with '.'.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
#: Rate suffix stripped from a condition name to name its codec when there is no manifest.
RATE_SUFFIX: Final = re.compile(r"[_-]r\d+$")


class ImportInvalid(ValueError):
    """A folder failed validation; :attr:`report` lists every problem.

    Parameters
    ----------
    report : ImportReport
        The validation report.
    """

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__(report.describe())


class ImportChanged(RuntimeError):
    """A file changed between validation and import (its SHA-256 differs)."""


@dataclass(frozen=True)
class ImportProblem:
    """One reason a folder cannot be imported.

    Attributes
    ----------
    path : str
        The file or folder concerned, relative to the imported folder (``"."`` for the
        folder itself).
    message : str
        What is wrong.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class _Reconstruction:
    """A validated reconstruction: where it is and what it cost."""

    image: str
    condition: str
    codec: str
    library: str
    version: str
    path: Path
    file_sha256: str
    n_bytes: int
    bitstream_sha256: str | None


@dataclass(frozen=True)
class _Reference:
    """A validated original."""

    path: Path
    file_sha256: str
    width: int
    height: int


@dataclass
class ImportReport:
    """Result of :func:`validate_import`.

    Attributes
    ----------
    folder : pathlib.Path
        The folder validated.
    problems : list of ImportProblem
        Every problem found, sorted by path; empty if the folder can be imported.
    images : list of str
        Source images found (folders with a reference).
    conditions : dict of str to str
        Every condition found, with its codec.
    missing : list of tuple of (str, str)
        ``(image, condition)`` pairs without a reconstruction (also in ``problems``).
    ignored : list of str
        Files outside the layout, skipped.
    """

    folder: Path
    problems: list[ImportProblem] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    conditions: dict[str, str] = field(default_factory=dict)
    missing: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    _references: dict[str, _Reference] = field(default_factory=dict, repr=False)
    _reconstructions: list[_Reconstruction] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True if there is no problem."""
        return not self.problems

    def add(self, path: str, message: str) -> None:
        """Record a problem."""
        self.problems.append(ImportProblem(path, message))

    def describe(self) -> str:
        """The report as text: a summary line, then one line per problem and ignored file.

        Returns
        -------
        str
        """
        lines = [
            f"{self.folder}: {len(self.images)} images, {len(self.conditions)} conditions, "
            + (f"{len(self.problems)} problems" if self.problems else "no problems")
        ]
        lines += [f"  problem: {problem}" for problem in self.problems]
        lines += [f"  ignored: {name}" for name in self.ignored]
        return "\n".join(lines)


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def _escapes(root: Path, path: Path) -> Path | None:
    """Where a symbolic link leads if that is outside the root, else None."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    return None if target.is_relative_to(root) else target


def _valid_name(name: str) -> bool:
    return NAME_PATTERN.fullmatch(name) is not None


def _name_problem(name: str, what: str) -> str | None:
    """Why a name from the manifest cannot name a file inside the folder, if it cannot."""
    if "/" in name or "\\" in name or name in {".", ".."} or name.startswith(".."):
        return f"{what} {name!r} escapes the folder"
    if not _valid_name(name):
        return f"{what} {name!r} is not a valid name (letters, digits, '.', '_', '-')"
    return None


@dataclass
class _ImageFolder:
    """What one image folder holds, before validation of the contents."""

    name: str
    path: Path
    reference: Path | None = None
    reconstructions: dict[str, Path] = field(default_factory=dict)
    others: dict[str, list[Path]] = field(default_factory=dict)


def _entries(root: Path, folder: Path, report: ImportReport) -> Iterator[tuple[Path, str]]:
    """The folder's entries in name order, with their paths relative to ``root``: hidden
    ones left out, links that escape ``root`` reported as problems and left out."""
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        relative = _relative(root, entry)
        escape = _escapes(root, entry)
        if escape is not None:
            report.add(relative, f"symbolic link escapes the folder (points to {escape})")
            continue
        yield entry, relative


def _scan_image_folder(root: Path, folder: Path, report: ImportReport) -> _ImageFolder:
    found = _ImageFolder(folder.name, folder)
    for entry, relative in _entries(root, folder, report):
        if entry.is_dir():
            report.ignored.append(relative + "/")
        elif entry.name == REFERENCE_NAME:
            found.reference = entry
        elif entry.suffix == RECONSTRUCTION_SUFFIX:
            if _valid_name(entry.stem):
                found.reconstructions[entry.stem] = entry
            else:
                report.add(relative, f"condition name {entry.stem!r} is not a valid name")
        else:
            found.others.setdefault(entry.stem, []).append(entry)
    if found.reference is None:
        report.add(_relative(root, folder), f"missing {REFERENCE_NAME}")
    return found


@dataclass(frozen=True)
class _ManifestRow:
    codec: str
    n_bytes: int | None
    library: str
    version: str
    line: int


def _read_manifest(
    root: Path, path: Path, report: ImportReport
) -> dict[tuple[str, str], _ManifestRow] | None:
    """Parse the manifest; every bad row is a problem. None if it cannot be read at all."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        report.add(MANIFEST_NAME, f"cannot be read: {exc}")
        return None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [name.strip() for name in reader.fieldnames or []]
    lacking = [name for name in MANIFEST_COLUMNS if name not in columns]
    if lacking:
        report.add(MANIFEST_NAME, f"lacks columns {lacking} (has {columns})")
        return None
    rows: dict[tuple[str, str], _ManifestRow] = {}
    for line, raw in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in raw.items()}
        where = f"{MANIFEST_NAME} line {line}"
        image, condition, codec = row["image"], row["condition"], row["codec"]
        problems = [
            message
            for message in (
                _name_problem(image, "image"),
                _name_problem(condition, "condition"),
                None if codec else "codec is empty",
            )
            if message
        ]
        n_bytes: int | None = None
        if row["bytes"]:
            try:
                n_bytes = int(row["bytes"])
            except ValueError:
                problems.append(f"bytes must be a whole number, got {row['bytes']!r}")
            else:
                if n_bytes <= 0:
                    problems.append(f"bytes must be positive, got {n_bytes}")
        for message in problems:
            report.add(where, message)
        if problems:
            continue
        if (image, condition) in rows:
            first = rows[(image, condition)].line
            report.add(where, f"duplicate row for {image}/{condition} (first on line {first})")
            continue
        rows[(image, condition)] = _ManifestRow(
            codec=codec,
            n_bytes=n_bytes,
            library=row.get("library") or UNKNOWN,
            version=row.get("version") or UNKNOWN,
            line=line,
        )
    return rows


def _check_png(
    root: Path, path: Path, report: ImportReport, max_pixels: int
) -> tuple[int, int, str] | None:
    """Check that a file is a PNG within the pixel limit that decodes to RGB.

    Returns its (width, height, SHA-256 of the file), or None after recording problems.
    """
    relative = _relative(root, path)
    try:
        with open_image(path, max_pixels=max_pixels) as image:
            image_format, size = image.format, image.size
    except ImageTooLarge as exc:
        report.add(relative, f"exceeds the pixel limit: {exc}")
        return None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        report.add(relative, f"does not decode: {exc}")
        return None
    if image_format != "PNG":
        report.add(relative, f"is not a PNG file (its content is {image_format})")
        return None
    try:
        data = path.read_bytes()
        load_rgb(path, max_pixels=max_pixels)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        report.add(relative, f"does not decode: {exc}")
        return None
    return size[0], size[1], sha256_bytes(data)


def _codec_without_manifest(condition: str) -> str:
    return RATE_SUFFIX.sub("", condition) or condition


def validate_import(
    folder: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImportReport:
    """Check a folder of reconstructions and report every problem (see the module doc).

    Every reference and reconstruction is decoded (after a header check against
    ``max_pixels``), so a clean report means the import will read every file.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to import.
    max_pixels : int, optional
        Largest image accepted, in pixels.

    Returns
    -------
    ImportReport
        ``report.ok`` is True if the folder can be imported.
    """
    root = Path(folder).resolve()
    report = ImportReport(folder=root)
    if not root.is_dir():
        report.add(".", "not a folder")
        return report

    image_folders: dict[str, _ImageFolder] = {}
    manifest: dict[tuple[str, str], _ManifestRow] | None = None
    for entry, relative in _entries(root, root, report):
        if entry.is_dir():
            if _valid_name(entry.name):
                image_folders[entry.name] = _scan_image_folder(root, entry, report)
            else:
                report.add(relative, f"image folder name {entry.name!r} is not a valid name")
        elif entry.name == MANIFEST_NAME:
            manifest = _read_manifest(root, entry, report)
        else:
            report.ignored.append(relative)
    if not image_folders:
        report.add(".", "no image folders")

    _check_manifest_against_files(
        report, image_folders, manifest, manifest_present=(root / MANIFEST_NAME).exists()
    )
    _validate_images(root, report, image_folders, manifest, max_pixels)
    report.problems.sort(key=lambda problem: (problem.path, problem.message))
    return report


def _check_manifest_against_files(
    report: ImportReport,
    image_folders: dict[str, _ImageFolder],
    manifest: dict[tuple[str, str], _ManifestRow] | None,
    *,
    manifest_present: bool,
) -> None:
    """Rows without files, files without rows, and codecs that disagree between rows."""
    if manifest is None:
        return
    codecs: dict[str, tuple[str, int]] = {}
    for (image, condition), row in sorted(manifest.items(), key=lambda item: item[1].line):
        where = f"{MANIFEST_NAME} line {row.line}"
        folder = image_folders.get(image)
        if folder is None or condition not in folder.reconstructions:
            report.add(
                where, f"names {image}/{condition}{RECONSTRUCTION_SUFFIX}, which does not exist"
            )
        known = codecs.setdefault(condition, (row.codec, row.line))
        if known[0] != row.codec:
            report.add(
                where,
                f"condition {condition!r} has codec {row.codec!r} here but {known[0]!r} "
                f"on line {known[1]}",
            )
    for image, folder in image_folders.items():
        for condition, path in folder.reconstructions.items():
            if (image, condition) not in manifest and manifest_present:
                report.add(f"{image}/{path.name}", f"has no row in {MANIFEST_NAME}")


def _size_of(
    report: ImportReport,
    relative: str,
    bitstreams: list[Path],
    row: _ManifestRow | None,
    *,
    row_reported_missing: bool,
) -> tuple[int, str | None] | None:
    """Bytes of a reconstruction's bitstream, and its SHA-256 if the file is there.

    ``row_reported_missing``: the manifest lacks this reconstruction's row, a problem
    reported already, so a missing size is not reported again.
    """
    if len(bitstreams) > 1:
        names = ", ".join(path.name for path in bitstreams)
        report.add(relative, f"several bitstream files, cannot tell which counts: {names}")
        return None
    manifest_bytes = row.n_bytes if row else None
    if bitstreams:
        data = bitstreams[0].read_bytes()
        if not data:
            report.add(relative, f"bitstream {bitstreams[0].name} is empty (0 bytes)")
            return None
        if manifest_bytes is not None and manifest_bytes != len(data):
            report.add(
                relative,
                f"{MANIFEST_NAME} says {manifest_bytes} bytes but bitstream "
                f"{bitstreams[0].name} has {len(data)}",
            )
            return None
        return len(data), sha256_bytes(data)
    if manifest_bytes is None:
        if row_reported_missing:
            return None
        report.add(
            relative,
            f"no size: no bytes in {MANIFEST_NAME} and no bitstream file beside it",
        )
        return None
    return manifest_bytes, None


def _validate_images(
    root: Path,
    report: ImportReport,
    image_folders: dict[str, _ImageFolder],
    manifest: dict[tuple[str, str], _ManifestRow] | None,
    max_pixels: int,
) -> None:
    """Decode every file, compare sizes, take rates, and list missing conditions."""
    all_conditions = sorted(
        {c for folder in image_folders.values() for c in folder.reconstructions}
    )
    for condition in all_conditions:
        row = next((row for (_, name), row in (manifest or {}).items() if name == condition), None)
        report.conditions[condition] = row.codec if row else _codec_without_manifest(condition)

    for image, folder in sorted(image_folders.items()):
        for stem, paths in folder.others.items():
            if stem not in folder.reconstructions:
                report.ignored.extend(_relative(root, path) for path in paths)
        reference = None
        if folder.reference is not None:
            checked_reference = _check_png(root, folder.reference, report, max_pixels)
            if checked_reference is not None:
                width, height, file_sha256 = checked_reference
                reference = _Reference(folder.reference, file_sha256, width, height)
                report.images.append(image)
                report._references[image] = reference
        for condition in all_conditions:
            if condition not in folder.reconstructions:
                report.missing.append((image, condition))
                report.add(
                    f"{image}/",
                    f"missing reconstruction: condition {condition!r} has no file "
                    f"{image}/{condition}{RECONSTRUCTION_SUFFIX}",
                )
                continue
            path = folder.reconstructions[condition]
            relative = _relative(root, path)
            checked = _check_png(root, path, report, max_pixels)
            row = manifest.get((image, condition)) if manifest else None
            size = _size_of(
                report,
                relative,
                folder.others.get(condition, []),
                row,
                row_reported_missing=manifest is not None and row is None,
            )
            if checked is None or size is None or reference is None:
                continue
            width, height, file_sha256 = checked
            if (width, height) != (reference.width, reference.height):
                report.add(
                    relative,
                    f"size {width}x{height} differs from the reference's "
                    f"{reference.width}x{reference.height}",
                )
                continue
            report._reconstructions.append(
                _Reconstruction(
                    image=image,
                    condition=condition,
                    codec=report.conditions[condition],
                    library=row.library if row else UNKNOWN,
                    version=row.version if row else UNKNOWN,
                    path=path,
                    file_sha256=file_sha256,
                    n_bytes=size[0],
                    bitstream_sha256=size[1],
                )
            )


@dataclass(frozen=True)
class ImportedImage:
    """One source image of an import with its stimuli.

    Attributes
    ----------
    name : str
        The image's name (its folder).
    reference : numpy.ndarray
        The original, uint8 ``(height, width, 3)``.
    stimuli : tuple of StimulusRecord
        Its reconstructions, one per condition, sorted by codec and rate index.
    """

    name: str
    reference: RGB8 = field(repr=False)
    stimuli: tuple[StimulusRecord, ...]


def _read_validated(path: Path, expected_sha256: str, max_pixels: int) -> RGB8:
    """Decode a file that validation saw; ImportChanged if it has changed since."""
    if sha256_bytes(path.read_bytes()) != expected_sha256:
        raise ImportChanged(f"{path} changed after validation; validate the folder again")
    return load_rgb(path, max_pixels=max_pixels)


def _rate_indices(report: ImportReport) -> dict[str, int]:
    """Rate index of each condition: its rank within its codec by mean bpp, fewest first."""
    totals: dict[str, list[float]] = {}
    for item in report._reconstructions:
        reference = report._references[item.image]
        bpp = bits_per_pixel(item.n_bytes, reference.width, reference.height)
        totals.setdefault(item.condition, []).append(bpp)
    by_codec: dict[str, list[tuple[float, str]]] = {}
    for condition, rates in totals.items():
        by_codec.setdefault(report.conditions[condition], []).append(
            (float(np.mean(rates)), condition)
        )
    return {
        condition: index
        for ranked in by_codec.values()
        for index, (_, condition) in enumerate(sorted(ranked))
    }


def iter_imported(
    report: ImportReport, *, metrics: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[ImportedImage]:
    """Read a validated folder one source image at a time (memory: one image's stimuli).

    Parameters
    ----------
    report : ImportReport
        A report from :func:`validate_import` without problems.
    metrics : bool, optional
        Compute :func:`~codecs_adapter.metrics.compute_metrics` for every stimulus.
    max_pixels : int, optional
        Pixel limit, as given to :func:`validate_import`.

    Yields
    ------
    ImportedImage
        In image-name order.

    Raises
    ------
    ImportInvalid
        If the report has problems (nothing is yielded).
    ImportChanged
        If a file changed since validation.
    """
    if not report.ok:
        raise ImportInvalid(report)
    indices = _rate_indices(report)
    for image in report.images:
        source = report._references[image]
        reference = _read_validated(source.path, source.file_sha256, max_pixels)
        height, width, _ = reference.shape
        stimuli = []
        for item in report._reconstructions:
            if item.image != image:
                continue
            decoded = _read_validated(item.path, item.file_sha256, max_pixels)
            png = png_bytes(decoded)
            stimuli.append(
                StimulusRecord(
                    image=image,
                    condition=item.condition,
                    codec=item.codec,
                    rate_index=indices[item.condition],
                    target_bpp=None,
                    bpp=bits_per_pixel(item.n_bytes, width, height),
                    n_bytes=item.n_bytes,
                    width=width,
                    height=height,
                    library=item.library,
                    version=item.version,
                    setting_name=None,
                    setting=None,
                    settings={},
                    encodes=0,
                    within_tolerance=True,
                    png=png,
                    sha256=sha256_bytes(png),
                    bitstream_sha256=item.bitstream_sha256,
                    metrics=compute_metrics(reference, decoded) if metrics else {},
                )
            )
        stimuli.sort(key=lambda stimulus: (stimulus.codec, stimulus.rate_index))
        yield ImportedImage(name=image, reference=reference, stimuli=tuple(stimuli))


@dataclass(frozen=True)
class ImportResult:
    """A whole import in memory.

    Attributes
    ----------
    report : ImportReport
        The (clean) validation report.
    sources : dict of str to numpy.ndarray
        The originals by image name.
    stimuli : tuple of StimulusRecord
        Every stimulus, sorted by codec, rate index, image.
    """

    report: ImportReport
    sources: dict[str, RGB8] = field(repr=False)
    stimuli: tuple[StimulusRecord, ...]


def import_reconstructions(
    folder: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    metrics: bool = True,
) -> ImportResult:
    """Validate a folder and, only if it is clean, read all of it.

    Holds every stimulus PNG in memory; for large imports use :func:`validate_import`
    and :func:`iter_imported` to store one image at a time.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to import.
    max_pixels : int, optional
        Largest image accepted, in pixels.
    metrics : bool, optional
        Compute objective metrics for every stimulus.

    Returns
    -------
    ImportResult

    Raises
    ------
    ImportInvalid
        If validation found any problem; its ``report`` lists them all and nothing has
        been read.
    ImportChanged
        If a file changed between validation and reading.
    """
    report = validate_import(folder, max_pixels=max_pixels)
    sources: dict[str, RGB8] = {}
    stimuli: list[StimulusRecord] = []
    for imported in iter_imported(report, metrics=metrics, max_pixels=max_pixels):
        sources[imported.name] = imported.reference
        stimuli.extend(imported.stimuli)
    stimuli.sort(key=lambda stimulus: (stimulus.codec, stimulus.rate_index, stimulus.image))
    return ImportResult(report=report, sources=sources, stimuli=tuple(stimuli))
