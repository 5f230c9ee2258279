"""The command line: `python -m codecs_adapter ladder|import|codecs`."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from codecs_adapter import CommandCodecConfig, write_png
from codecs_adapter.__main__ import main

type Quantiser = Callable[..., CommandCodecConfig]

SIDE = 48
SOURCES = {
    "astronaut": np.ascontiguousarray(data.astronaut()[150 : 150 + SIDE, 180 : 180 + SIDE]),
    "chelsea": np.ascontiguousarray(data.chelsea()[80 : 80 + SIDE, 160 : 160 + SIDE]),
}
#: Columns the issue requires of the ladder manifest.
REQUIRED_COLUMNS = {"image", "codec", "target_bpp", "bpp", "setting", "bytes", "path"}


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    for name, rgb in SOURCES.items():
        write_png(rgb, folder / f"{name}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def toml_of(config: CommandCodecConfig) -> str:
    def strings(values: tuple[str, ...]) -> str:
        return "[" + ", ".join(f"'{value}'" for value in values) + "]"

    return (
        f"[codec.{config.name}]\n"
        f"library = '{config.library}'\nversion = '{config.version}'\n"
        f"encode = {strings(config.encode)}\ndecode = {strings(config.decode)}\n"
        f"setting_name = '{config.setting_name}'\n"
        f"setting_min = {config.setting_min}\nsetting_max = {config.setting_max}\n"
        "higher_setting_more_bits = false\nsetting_scale = 'log'\n"
        f"input_format = '{config.input_format}'\n"
        f"decoded_extension = '{config.decoded_extension}'\nextension = '{config.extension}'\n"
    )


def test_ladder_writes_stimuli_and_a_manifest_row_for_each(
    sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    arguments = ["ladder", str(sources), "--codec", "jpeg", "--codec", "webp"]
    arguments += ["--bpp", "2", "3", "--out", str(out), "--workers", "1", "--no-metrics"]
    assert main(arguments) == 0
    rows = read_csv(out / "manifest.csv")
    assert set(rows[0]) >= REQUIRED_COLUMNS
    assert len(rows) == 2 * 2 * 2
    for row in rows:
        path = out / row["path"]
        assert path == out / row["image"] / f"{row['condition']}.png"
        shown = np.asarray(Image.open(path))
        assert shown.shape == (SIDE, SIDE, 3)
        assert float(row["bpp"]) == pytest.approx(int(row["bytes"]) * 8 / SIDE**2)
        assert row["within_tolerance"] in ("true", "false")
    for name, rgb in SOURCES.items():
        assert np.array_equal(np.asarray(Image.open(out / name / "reference.png")), rgb)
    assert read_csv(out / "unreachable.csv") == []
    assert "wrote 8 stimuli" in capsys.readouterr().out
    # The output is an importable folder, and a second run comes from the cache.
    assert main(["import", str(out)]) == 0
    assert main(arguments) == 0
    assert "(0 encodes," in capsys.readouterr().out


def test_ladder_lists_unreachable_targets_and_does_not_write_them(
    sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    arguments = ["ladder", str(sources), "--codec", "jpeg", "--bpp", "0.01", "3", "--out"]
    assert main([*arguments, str(out), "--workers", "1"]) == 1
    rows = read_csv(out / "manifest.csv")
    assert {row["target_bpp"] for row in rows} == {"3.0"}
    assert {"psnr_rgb", "ssim", "ssimulacra2"} <= set(rows[0])  # metrics by default
    unreached = read_csv(out / "unreachable.csv")
    assert [(row["image"], row["condition"]) for row in unreached] == [
        ("astronaut", "jpeg-r1"),
        ("chelsea", "jpeg-r1"),
    ]
    assert not (out / "astronaut" / "jpeg-r1.png").exists()
    output = capsys.readouterr().out
    assert "unreached, not written: astronaut: jpeg: target 0.01 bpp is unreachable" in output
    assert "2 targets unreached" in output


def test_strict_ladders_refuse_targets_the_settings_cannot_hit(
    sources: Path, tmp_path: Path, quantiser_config: Quantiser
) -> None:
    # The quantiser's whole steps 1 and 2 give about 21.9 and 17.2 bpp on the astronaut
    # crop; nothing lands within 3% of 19.5.
    config_file = tmp_path / "codecs.toml"
    config_file.write_text(toml_of(quantiser_config()), encoding="utf-8")
    arguments = ["ladder", str(sources), "--codec", "quant", "--codec-config", str(config_file)]
    arguments += ["--bpp", "19.5", "--workers", "1", "--no-metrics", "--out"]
    lenient, strict = tmp_path / "lenient", tmp_path / "strict"
    assert main([*arguments, str(lenient)]) == 0
    rows = read_csv(lenient / "manifest.csv")
    assert "false" in {row["within_tolerance"] for row in rows}
    assert {row["library"] for row in rows} == {"quantiser.py"}
    # A lenient run into the same folder first: the strict run must remove its misses.
    assert main([*arguments, str(strict)]) == 0
    assert main([*arguments, str(strict), "--strict"]) == 1
    missed = [row for row in rows if row["within_tolerance"] == "false"]
    written = {(row["image"], row["condition"]) for row in read_csv(strict / "manifest.csv")}
    assert not written & {(row["image"], row["condition"]) for row in missed}
    reasons = [row["reason"] for row in read_csv(strict / "unreachable.csv")]
    assert any("misses the target 19.5 by more than the tolerance" in r for r in reasons)
    for row in missed:
        assert not (strict / row["image"] / f"{row['condition']}.png").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--codec", "vvc", "--bpp", "1"], "unknown or unavailable codecs ['vvc']"),
        (["--codec", "jpeg", "--bpp", "2", "1"], "targets must increase"),
    ],
)
def test_ladder_usage_errors_exit_with_status_2(
    sources: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    assert main(["ladder", str(sources), *arguments, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_ladder_refuses_a_folder_without_images(tmp_path: Path) -> None:
    assert main(["ladder", str(tmp_path), "--codec", "jpeg", "--bpp", "1", "--out", "x"]) == 2


def test_the_module_runs_as_a_program_and_lists_the_codecs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "codecs_adapter", "codecs"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = completed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["jpeg", "webp", "avif", "jxl", "heif", "jp2"]
    assert "quality 1-100 (continuous; higher = more bits)" in lines[0]
    assert "distance 0.1-25 (continuous; higher = fewer bits)" in lines[3]
    assert io.StringIO(completed.stderr).read() == ""
