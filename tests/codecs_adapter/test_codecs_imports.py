"""Imports of external reconstructions: a clean folder imports; every fault is reported.

Folders are built here as authors send them: real JPEG reconstructions written as PNGs,
a manifest, sometimes the bitstreams. Each failure kind has a test that checks its
message, and a folder with several faults reports all of them and imports nothing.
"""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from skimage import data

from codecs_adapter import (
    ImportChanged,
    ImportInvalid,
    get_codec,
    import_reconstructions,
    iter_imported,
    png_bytes,
    validate_import,
    write_png,
)
from codecs_adapter.__main__ import main

#: Small crops: the import logic does not depend on size, decoding does not take long.
SIDE = 40
IMAGES = {
    "astronaut": np.ascontiguousarray(data.astronaut()[100 : 100 + SIDE, 200 : 200 + SIDE]),
    "coffee": np.ascontiguousarray(data.coffee()[100 : 100 + SIDE, 300 : 300 + SIDE]),
}
#: Conditions as a learned codec's authors name them, with the JPEG quality that stands in
#: for their codec here.
CONDITIONS = {"pico_r1": 20, "pico_r2": 60, "hific_r1": 40}
CODEC_OF = {"pico_r1": "pico", "pico_r2": "pico", "hific_r1": "hific"}


def build_folder(
    root: Path,
    *,
    manifest: bool = True,
    bitstreams: bool = False,
    manifest_bytes: bool = True,
) -> dict[tuple[str, str], int]:
    """Write a valid import folder; return the bitstream size of each (image, condition)."""
    jpeg = get_codec("jpeg")
    sizes: dict[tuple[str, str], int] = {}
    rows = [["image", "condition", "codec", "bytes", "library", "version"]]
    for image, rgb in IMAGES.items():
        (root / image).mkdir(parents=True)
        write_png(rgb, root / image / "reference.png")
        for condition, quality in CONDITIONS.items():
            bitstream = jpeg.encode(rgb, quality)
            sizes[(image, condition)] = len(bitstream)
            write_png(jpeg.decode(bitstream), root / image / f"{condition}.png")
            if bitstreams:
                (root / image / f"{condition}.bin").write_bytes(bitstream)
            size = str(len(bitstream)) if manifest_bytes else ""
            rows.append([image, condition, CODEC_OF[condition], size, "authors-cli", "2.1"])
    if manifest:
        with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    return sizes


def rewrite_manifest(root: Path, edit: object) -> None:
    """Apply ``edit(rows)`` to the manifest's rows (header first)."""
    path = root / "manifest.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert callable(edit)
    edit(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def problems_of(root: Path, **options: int) -> list[str]:
    return [str(problem) for problem in validate_import(root, **options).problems]


# --- a clean import --------------------------------------------------------------------------


def test_a_clean_folder_imports_every_stimulus_with_its_rate(tmp_path: Path) -> None:
    sizes = build_folder(tmp_path)
    report = validate_import(tmp_path)
    assert report.ok, report.describe()
    assert report.images == ["astronaut", "coffee"]
    assert report.conditions == CODEC_OF
    result = import_reconstructions(tmp_path, metrics=False)
    assert len(result.stimuli) == len(IMAGES) * len(CONDITIONS)
    assert set(result.sources) == set(IMAGES)
    for name, rgb in IMAGES.items():
        assert np.array_equal(result.sources[name], rgb)
    for stimulus in result.stimuli:
        n_bytes = sizes[(stimulus.image, stimulus.condition)]
        assert stimulus.n_bytes == n_bytes
        assert stimulus.bpp == pytest.approx(8 * n_bytes / SIDE**2)
        assert stimulus.codec == CODEC_OF[stimulus.condition]
        assert (stimulus.library, stimulus.version) == ("authors-cli", "2.1")
        assert stimulus.target_bpp is None and stimulus.within_tolerance
        decoded = np.asarray(Image.open(io.BytesIO(stimulus.png)))
        expected = np.asarray(Image.open(tmp_path / stimulus.image / f"{stimulus.condition}.png"))
        assert np.array_equal(decoded, expected)
    # Rate index within each codec, fewest bits first (pico_r1 is quality 20, r2 60).
    index = {s.condition: s.rate_index for s in result.stimuli}
    assert index == {"pico_r1": 0, "pico_r2": 1, "hific_r1": 0}


def test_imported_stimuli_lose_the_authors_metadata(tmp_path: Path) -> None:
    build_folder(tmp_path)
    path = tmp_path / "astronaut" / "pico_r1.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "PICO decoder 1.0")
    with Image.open(path) as image:
        image.save(path, pnginfo=info)
    stimulus = next(
        s
        for s in import_reconstructions(tmp_path, metrics=False).stimuli
        if (s.image, s.condition) == ("astronaut", "pico_r1")
    )
    assert b"PICO" not in stimulus.png and b"tEXt" not in stimulus.png
    assert stimulus.png == png_bytes(np.asarray(Image.open(path).convert("RGB")))


def test_metrics_are_computed_against_the_reference(tmp_path: Path) -> None:
    build_folder(tmp_path)
    result = import_reconstructions(tmp_path)
    for stimulus in result.stimuli:
        assert {"psnr_rgb", "psnr_y", "ssim", "ssimulacra2"} <= set(stimulus.metrics)
    by_condition = {(s.image, s.condition): s.metrics["psnr_rgb"] for s in result.stimuli}
    assert by_condition[("coffee", "pico_r2")] > by_condition[("coffee", "pico_r1")]


def test_sizes_come_from_bitstream_files_when_the_manifest_has_none(tmp_path: Path) -> None:
    sizes = build_folder(tmp_path, bitstreams=True, manifest_bytes=False)
    result = import_reconstructions(tmp_path, metrics=False)
    for stimulus in result.stimuli:
        assert stimulus.n_bytes == sizes[(stimulus.image, stimulus.condition)]
        assert stimulus.bitstream_sha256 is not None


def test_without_a_manifest_codecs_are_named_by_condition_less_rate_suffix(tmp_path: Path) -> None:
    build_folder(tmp_path, manifest=False, bitstreams=True)
    report = validate_import(tmp_path)
    assert report.ok, report.describe()
    assert report.conditions == {"hific_r1": "hific", "pico_r1": "pico", "pico_r2": "pico"}
    stimulus = import_reconstructions(tmp_path, metrics=False).stimuli[0]
    assert (stimulus.library, stimulus.version) == ("unknown", "unknown")


def test_files_outside_the_layout_are_listed_as_ignored(tmp_path: Path) -> None:
    build_folder(tmp_path)
    (tmp_path / "README.txt").write_text("results of run 7")
    (tmp_path / "astronaut" / "notes.txt").write_text("looks fine")
    (tmp_path / "astronaut" / ".DS_Store").write_bytes(b"\0")
    report = validate_import(tmp_path)
    assert report.ok
    assert report.ignored == ["README.txt", "astronaut/notes.txt"]


def test_iter_imported_yields_one_image_at_a_time(tmp_path: Path) -> None:
    build_folder(tmp_path)
    report = validate_import(tmp_path)
    batches = list(iter_imported(report, metrics=False))
    assert [batch.name for batch in batches] == ["astronaut", "coffee"]
    assert all(len(batch.stimuli) == len(CONDITIONS) for batch in batches)
    assert all(s.image == batch.name for batch in batches for s in batch.stimuli)


# --- every failure, with its message ---------------------------------------------------------


def test_a_file_that_does_not_decode_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path)
    path = tmp_path / "coffee" / "pico_r2.png"
    path.write_bytes(path.read_bytes()[:60])  # truncated
    (problem,) = problems_of(tmp_path)
    assert problem.startswith("coffee/pico_r2.png: does not decode:")


def test_a_reconstruction_that_is_not_a_png_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path)
    jpeg = get_codec("jpeg")
    (tmp_path / "coffee" / "pico_r2.png").write_bytes(jpeg.encode(IMAGES["coffee"], 90))
    assert problems_of(tmp_path) == ["coffee/pico_r2.png: is not a PNG file (its content is JPEG)"]


def test_a_reconstruction_of_another_size_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path)
    write_png(IMAGES["coffee"][:, :-2], tmp_path / "coffee" / "hific_r1.png")
    assert problems_of(tmp_path) == [
        f"coffee/hific_r1.png: size {SIDE - 2}x{SIDE} differs from the reference's {SIDE}x{SIDE}"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "bytes must be positive, got 0"),
        ("-5", "bytes must be positive, got -5"),
        ("12.5", "bytes must be a whole number, got '12.5'"),
    ],
)
def test_sizes_that_are_not_positive_whole_numbers_are_reported(
    tmp_path: Path, value: str, message: str
) -> None:
    build_folder(tmp_path)
    rewrite_manifest(tmp_path, lambda rows: rows[2].__setitem__(3, value))
    problems = problems_of(tmp_path)
    assert f"manifest.csv line 3: {message}" in problems
    # Its row is refused, so the reconstruction has no row either.
    assert f"{rows_image_condition(tmp_path, 3)}: has no row in manifest.csv" in problems


def rows_image_condition(root: Path, line: int) -> str:
    with (root / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        row = list(csv.reader(handle))[line - 1]
    return f"{row[0]}/{row[1]}.png"


def test_an_empty_bitstream_file_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path, bitstreams=True, manifest_bytes=False)
    (tmp_path / "astronaut" / "pico_r1.bin").write_bytes(b"")
    assert problems_of(tmp_path) == [
        "astronaut/pico_r1.png: bitstream pico_r1.bin is empty (0 bytes)"
    ]


def test_a_manifest_size_that_disagrees_with_the_bitstream_is_reported(tmp_path: Path) -> None:
    sizes = build_folder(tmp_path, bitstreams=True)
    rewrite_manifest(tmp_path, lambda rows: rows[1].__setitem__(3, "999"))
    actual = sizes[("astronaut", "pico_r1")]
    assert problems_of(tmp_path) == [
        f"astronaut/pico_r1.png: manifest.csv says 999 bytes but bitstream pico_r1.bin has {actual}"
    ]


def test_a_reconstruction_without_any_size_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path, manifest_bytes=False)
    problems = problems_of(tmp_path)
    assert len(problems) == len(IMAGES) * len(CONDITIONS)
    assert (
        "astronaut/hific_r1.png: no size: no bytes in manifest.csv and no bitstream file beside it"
        in problems
    )


def test_two_bitstreams_for_one_reconstruction_are_reported(tmp_path: Path) -> None:
    build_folder(tmp_path, bitstreams=True, manifest_bytes=False)
    (tmp_path / "coffee" / "pico_r1.bits").write_bytes(b"\1\2")
    assert problems_of(tmp_path) == [
        "coffee/pico_r1.png: several bitstream files, cannot tell which counts: "
        "pico_r1.bin, pico_r1.bits"
    ]


def test_missing_conditions_are_listed_exactly(tmp_path: Path) -> None:
    build_folder(tmp_path)
    (tmp_path / "coffee" / "pico_r2.png").unlink()
    (tmp_path / "astronaut" / "hific_r1.png").unlink()
    report = validate_import(tmp_path)
    assert report.missing == [("astronaut", "hific_r1"), ("coffee", "pico_r2")]
    problems = [str(problem) for problem in report.problems]
    assert (
        "astronaut/: missing reconstruction: condition 'hific_r1' has no file "
        "astronaut/hific_r1.png" in problems
    )
    assert (
        "coffee/: missing reconstruction: condition 'pico_r2' has no file coffee/pico_r2.png"
        in problems
    )
    # The manifest still names them.
    assert "manifest.csv line 3: names coffee/pico_r2.png, which does not exist" not in problems
    assert any("names coffee/pico_r2.png, which does not exist" in p for p in problems)


def test_a_missing_reference_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path)
    (tmp_path / "coffee" / "reference.png").unlink()
    assert "coffee: missing reference.png" in problems_of(tmp_path)


@pytest.mark.parametrize("name", ["../outside", "a/b", "..", "/etc/passwd"])
def test_manifest_names_that_escape_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    build_folder(tmp_path)
    rewrite_manifest(tmp_path, lambda rows: rows[1].__setitem__(0, name))
    assert f"manifest.csv line 2: image {name!r} escapes the folder" in problems_of(tmp_path)


def test_symbolic_links_out_of_the_folder_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "import"
    build_folder(folder)
    outside = tmp_path / "secret.png"
    write_png(IMAGES["coffee"], outside)
    (folder / "coffee" / "pico_r2.png").unlink()
    os.symlink(outside, folder / "coffee" / "pico_r2.png")
    os.symlink(tmp_path, folder / "elsewhere")
    problems = problems_of(folder)
    assert (
        f"coffee/pico_r2.png: symbolic link escapes the folder (points to {outside.resolve()})"
        in problems
    )
    assert (
        f"elsewhere: symbolic link escapes the folder (points to {tmp_path.resolve()})" in problems
    )


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path: Path) -> None:
    build_folder(tmp_path)
    problems = problems_of(tmp_path, max_pixels=SIDE * SIDE - 1)
    assert len(problems) == len(IMAGES) * (1 + len(CONDITIONS))
    assert any(
        p.startswith("astronaut/reference.png: exceeds the pixel limit:")
        and f"{SIDE}x{SIDE} = {SIDE * SIDE:,} pixels exceeds the limit of {SIDE * SIDE - 1:,}" in p
        for p in problems
    )


def decompression_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image but whose data is a few bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    build_folder(tmp_path)
    (tmp_path / "coffee" / "pico_r1.png").write_bytes(decompression_bomb(100_000, 100_000))
    (problem,) = problems_of(tmp_path)
    assert problem.startswith("coffee/pico_r1.png: exceeds the pixel limit:")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("image,condition,bytes", "lacks columns ['codec']"),
        ("picture,condition,codec,size", "lacks columns ['image', 'bytes']"),
    ],
)
def test_a_manifest_without_its_columns_is_reported(
    tmp_path: Path, header: str, message: str
) -> None:
    build_folder(tmp_path)
    rewrite_manifest(tmp_path, lambda rows: rows.__setitem__(0, header.split(",")))
    assert any(p.startswith(f"manifest.csv: {message}") for p in problems_of(tmp_path))


def test_duplicate_and_conflicting_manifest_rows_are_reported(tmp_path: Path) -> None:
    build_folder(tmp_path)

    def edit(rows: list[list[str]]) -> None:
        rows.append(list(rows[1]))  # astronaut,pico_r1 again
        rows[4][2] = "other"  # coffee,pico_r1 claims another codec

    rewrite_manifest(tmp_path, edit)
    problems = problems_of(tmp_path)
    assert "manifest.csv line 8: duplicate row for astronaut/pico_r1 (first on line 2)" in problems
    assert (
        "manifest.csv line 5: condition 'pico_r1' has codec 'other' here but 'pico' on line 2"
        in problems
    )


def test_a_reconstruction_missing_from_the_manifest_is_reported(tmp_path: Path) -> None:
    build_folder(tmp_path)
    rewrite_manifest(tmp_path, lambda rows: rows.pop(3))
    assert problems_of(tmp_path) == ["astronaut/hific_r1.png: has no row in manifest.csv"]


def test_an_empty_or_absent_folder_is_reported(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [".: no image folders"]
    assert problems_of(tmp_path / "nope") == [".: not a folder"]


# --- atomicity -------------------------------------------------------------------------------


def test_a_folder_with_several_faults_reports_all_and_imports_nothing(tmp_path: Path) -> None:
    build_folder(tmp_path)
    (tmp_path / "coffee" / "pico_r2.png").unlink()
    (tmp_path / "astronaut" / "pico_r1.png").write_bytes(b"garbage")
    write_png(IMAGES["coffee"][:-1], tmp_path / "coffee" / "hific_r1.png")
    with pytest.raises(ImportInvalid) as caught:
        import_reconstructions(tmp_path, metrics=False)
    report = caught.value.report
    assert not report.ok
    paths = {problem.path for problem in report.problems}
    assert {"coffee/", "astronaut/pico_r1.png", "coffee/hific_r1.png"} <= paths
    message = str(caught.value)
    assert "problems" in message and "coffee/hific_r1.png: size" in message
    with pytest.raises(ImportInvalid):
        next(iter_imported(report))


def test_a_file_changed_after_validation_stops_the_import(tmp_path: Path) -> None:
    build_folder(tmp_path)
    report = validate_import(tmp_path)
    write_png(IMAGES["astronaut"][::-1], tmp_path / "astronaut" / "pico_r2.png")
    with pytest.raises(ImportChanged, match="pico_r2.png changed after validation"):
        list(iter_imported(report, metrics=False))


# --- command line ----------------------------------------------------------------------------


def test_the_import_command_prints_the_report_and_exits_non_zero_on_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_folder(tmp_path)
    assert main(["import", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 images, 3 conditions, no problems" in out
    assert "condition pico_r2: codec pico" in out
    (tmp_path / "coffee" / "pico_r2.png").unlink()
    assert main(["import", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "problem: coffee/: missing reconstruction: condition 'pico_r2'" in out
