"""BD-rate with other interpolations, overlap, savings curves, and the bdrate command."""

from __future__ import annotations

import math
from pathlib import Path

import bjontegaard
import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import PchipInterpolator

from analysis.bdrate import Interpolation, bd_rate, overlap_fraction, rate_ratio_draws
from analysis.cli import EXIT_INPUT, EXIT_OK, INTERP_CHOICES, MODEL_CHOICES, TIE_CHOICES, main
from analysis.fit import bd_rate_matrix, condition_points, savings_posterior
from analysis.model import DEFAULT_MODEL, DEFAULT_TIES, ModelName, TieModel
from analysis.types import BDRATE_COMMAND_COLUMNS

#: Agreement required with the ``bjontegaard`` package, percent points.
ATOL_REFERENCE = 1e-6
ATOL_EXACT = 1e-9

JPEG = ([0.25, 0.5, 1.0, 2.0], [27.1, 30.4, 33.9, 37.8])
WEBP = ([0.2, 0.42, 0.85, 1.7], [27.8, 31.0, 34.3, 37.9])
AV1 = ([0.1, 0.2, 0.35, 0.6, 1.0, 1.6], [26.0, 28.9, 31.2, 33.6, 36.1, 38.4])
HIGH = ([0.3, 0.6, 1.2, 2.4], [31.0, 34.2, 37.5, 40.9])
THREE = ([0.3, 0.8, 1.5], [28.0, 32.0, 36.0])


@pytest.mark.parametrize("method", ["pchip", "akima", "cubic"])
@pytest.mark.parametrize("test", [WEBP, AV1, HIGH], ids=["webp", "av1", "partial"])
def test_every_interpolation_matches_the_bjontegaard_package(method: str, test: tuple) -> None:
    expected = bjontegaard.bd_rate(
        *JPEG, *test, method=method, min_overlap=0, require_matching_points=False
    )
    got = bd_rate(*JPEG, *test, interp=method)
    assert got == pytest.approx(expected, abs=ATOL_REFERENCE)


def test_akima_on_three_points_matches_the_package_too() -> None:
    expected = bjontegaard.bd_rate(
        *JPEG, *THREE, method="akima", min_overlap=0, require_matching_points=False
    )
    assert bd_rate(*JPEG, *THREE, interp="akima") == pytest.approx(expected, abs=ATOL_REFERENCE)


def test_overlap_is_intersection_over_union() -> None:
    assert overlap_fraction([0, 10], [5, 15]) == pytest.approx(5 / 15)
    assert overlap_fraction([0, 10], [0, 10]) == 1.0
    assert overlap_fraction([0, 10], [11, 15]) == 0.0


def test_cli_choices_match_the_library() -> None:
    assert tuple(ModelName) == MODEL_CHOICES
    assert tuple(TieModel) == TIE_CHOICES
    assert tuple(Interpolation) == INTERP_CHOICES
    assert DEFAULT_MODEL == "bt-rater" and DEFAULT_TIES == "davidson"


def test_the_rate_ratio_at_equal_quality_matches_scipy_interpolation() -> None:
    rate_a, q_a = np.array(JPEG[0]), np.array(JPEG[1])
    rate_t, q_t = np.array(AV1[0]), np.array(AV1[1])
    at = np.array([0.3, 0.7, 1.5, 5.0])
    ratio, quality = rate_ratio_draws(rate_a, q_a[None, :], rate_t, q_t[None, :], at)
    expected_q = PchipInterpolator(np.log(rate_a), q_a)(np.log(at[:3]))
    expected_ln = PchipInterpolator(q_t, np.log(rate_t))(expected_q)
    np.testing.assert_allclose(quality[0, :3], expected_q, rtol=1e-12)
    np.testing.assert_allclose(ratio[0, :3], np.exp(expected_ln) / at[:3], rtol=1e-12)
    assert math.isnan(ratio[0, 3])  # 5 bpp is beyond the anchor's curve
    linear, _ = rate_ratio_draws(rate_a, q_a[None, :], rate_t, q_t[None, :], at, linear=True)
    q_lin = np.interp(np.log(0.7), np.log(rate_a), q_a)
    assert linear[0, 1] == pytest.approx(np.exp(np.interp(q_lin, q_t, np.log(rate_t))) / 0.7)


def test_savings_and_the_matrix_on_exactly_parallel_curves() -> None:
    # Elo = 300 ln(bpp / factor): x needs 0.6 times the anchor's bits everywhere.
    bpp_a, bpp_x = np.array([0.5, 1.0, 2.0]), np.array([0.3, 0.6, 1.2])
    elo = np.concatenate([300 * np.log(bpp_a), 300 * np.log(bpp_x / 0.6)])
    conditions = pd.DataFrame(
        {
            "condition": ["a1", "a2", "a3", "x1", "x2", "x3"],
            "codec": ["a"] * 3 + ["x"] * 3,
            "image": "img",
            "bpp": np.concatenate([bpp_a, bpp_x]),
        }
    )
    points = condition_points(conditions, tuple(conditions["condition"]))
    draws = np.tile(elo, (3, 1))
    savings = savings_posterior(draws, points, anchor="a", anchor_bpp=[0.6, 1.0, 1.9])
    np.testing.assert_allclose(savings["rate_ratio"], 0.6, atol=ATOL_EXACT)
    assert (savings["usable_share"] == 1.0).all()
    matrix = bd_rate_matrix(draws, points).set_index(["codec", "anchor"])
    assert matrix.loc[("x", "a"), "bd_rate"] == pytest.approx(-40.0, abs=ATOL_EXACT)
    assert matrix.loc[("a", "x"), "bd_rate"] == pytest.approx(100 / 0.6 - 100, abs=ATOL_EXACT)


def _curves(tmp_path: Path, extra: str = "") -> Path:
    lines = ["codec,bpp,quality"]
    for codec, (rates, quality) in {"jpeg": JPEG, "webp": WEBP, "av1": AV1}.items():
        lines += [f"{codec},{r},{q}" for r, q in zip(rates, quality, strict=True)]
    path = tmp_path / "curves.csv"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["pchip", "akima", "cubic"])
def test_the_bdrate_command_agrees_with_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str
) -> None:
    path = _curves(tmp_path, "far,10,50\nfar,20,60\n")
    assert main(["bdrate", str(path), "--anchor", "jpeg", "--interp", method]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(BDRATE_COMMAND_COLUMNS)
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    for codec, curve in (("webp", WEBP), ("av1", AV1)):
        expected = bjontegaard.bd_rate(
            *JPEG, *curve, method=method, min_overlap=0, require_matching_points=False
        )
        assert float(rows[codec][2]) == pytest.approx(expected, abs=ATOL_REFERENCE)
    assert rows["far"][2] == ""  # never NaN
    assert rows["far"][4] == "the quality ranges of the two curves do not overlap"


def test_the_bdrate_command_writes_a_file_and_stops_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bd.csv"
    assert main(["bdrate", str(_curves(tmp_path)), "--anchor", "jpeg", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("codec,anchor,bd_rate")
    bad = _curves(tmp_path, "webp,-1,30\n")
    assert main(["bdrate", str(bad), "--anchor", "jpeg"]) == EXIT_INPUT
    assert "line 16: bpp must be a positive number" in capsys.readouterr().err
    assert main(["bdrate", str(_curves(tmp_path)), "--anchor", "hevc"]) == EXIT_INPUT
