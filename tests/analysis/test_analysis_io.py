"""Input validation: every kind of bad input stops with its file, line and problem."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import EXIT_INPUT, main
from analysis.io import (
    InputError,
    check_anchor,
    read_conditions,
    read_votes,
    validate_conditions,
    validate_votes,
)
from analysis.types import CONDITION_COLUMNS, VOTE_COLUMNS

# Two codecs at two rates on two images; webp-2 has no stimulus for img2.
CONDITIONS_CSV = """\
condition,codec,image,bpp
jpeg-1,jpeg,img1,0.30
jpeg-2,jpeg,img1,0.90
webp-1,webp,img1,0.25
webp-2,webp,img1,0.80
jpeg-1,jpeg,img2,0.35
jpeg-2,jpeg,img2,1.10
webp-1,webp,img2,0.28
"""

VOTES_HEADER = "rater,image,condition_a,condition_b,choice"
VOTES_CSV = f"""\
{VOTES_HEADER}
r1,img1,jpeg-1,webp-1,a
r1,img2,jpeg-2,webp-1,tie
r2,img1,webp-2,jpeg-2,b
"""


def _write(
    directory: Path, votes: str = VOTES_CSV, conditions: str = CONDITIONS_CSV
) -> tuple[Path, Path]:
    votes_path = directory / "votes.csv"
    conditions_path = directory / "conditions.csv"
    votes_path.write_text(votes, encoding="utf-8")
    conditions_path.write_text(conditions, encoding="utf-8")
    return votes_path, conditions_path


def _run_cli(votes: Path, conditions: Path, out: Path, anchor: str = "jpeg") -> int:
    argv = [
        "fit",
        str(votes),
        "--conditions",
        str(conditions),
        "--anchor",
        anchor,
        "--out",
        str(out),
    ]
    return main(argv)


# (votes.csv text, line, problem) for bad vote files, checked against CONDITIONS_CSV.
BAD_VOTES = {
    "missing-column": (
        "rater,image,condition_a,condition_b\nr1,img1,jpeg-1,webp-1\n",
        1,
        "missing column 'choice'; the header must include "
        "rater, image, condition_a, condition_b, choice",
    ),
    "empty-file": (
        "",
        1,
        "the file is empty; expected a header: rater, image, condition_a, condition_b, choice",
    ),
    "header-only": (f"{VOTES_HEADER}\n", 2, "no data rows after the header"),
    "bad-choice": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,a\nr1,img1,jpeg-1,webp-1,x\n",
        3,
        "choice 'x' is not one of a, b, tie",
    ),
    "upper-case-choice": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,A\n",
        2,
        "choice 'A' is not one of a, b, tie",
    ),
    "same-condition": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,a\nr1,img1,jpeg-2,jpeg-2,b\n",
        3,
        "condition_a and condition_b are both 'jpeg-2'",
    ),
    "unknown-condition": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,avif-1,a\n",
        2,
        "unknown condition 'avif-1' in condition_b (not in {conditions})",
    ),
    "unknown-image": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,a\nr1,img9,jpeg-1,webp-1,a\n",
        3,
        "unknown image 'img9' (not in {conditions})",
    ),
    "condition-not-on-image": (
        f"{VOTES_HEADER}\nr1,img2,webp-2,jpeg-1,a\n",
        2,
        "condition 'webp-2' has no row for image 'img2' in {conditions}",
    ),
    "empty-cell": (f"{VOTES_HEADER}\n,img1,jpeg-1,webp-1,a\n", 2, "empty rater"),
    "too-many-fields": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,a,extra\n",
        2,
        "expected 5 fields as in the header, found 6",
    ),
    "bad-golden-flag": (
        f"{VOTES_HEADER},golden\nr1,img1,jpeg-1,webp-1,a,0\nr1,img1,jpeg-1,webp-1,a,2\n",
        3,
        "golden '2' is not 0 or 1",
    ),
    "line-counts-blank-lines": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,a\n\n\nr1,img1,jpeg-1,webp-1,?\n",
        5,
        "choice '?' is not one of a, b, tie",
    ),
    "earliest-line-wins": (
        f"{VOTES_HEADER}\nr1,img1,jpeg-1,webp-1,a\nr1,img9,jpeg-1,webp-1,a\nr1,img1,x,x,x\n",
        3,
        "unknown image 'img9' (not in {conditions})",
    ),
}

# (conditions.csv text, line, problem) for bad condition files.
BAD_CONDITIONS = {
    "missing-column": (
        "condition,codec,image\njpeg-1,jpeg,img1\n",
        1,
        "missing column 'bpp'; the header must include condition, codec, image, bpp",
    ),
    "empty-file": (
        "",
        1,
        "the file is empty; expected a header: condition, codec, image, bpp",
    ),
    "header-only": ("condition,codec,image,bpp\n", 2, "no data rows after the header"),
    "non-numeric-bpp": (
        "condition,codec,image,bpp\njpeg-1,jpeg,img1,0.3\njpeg-2,jpeg,img1,high\n",
        3,
        "bpp 'high' is not a number",
    ),
    "zero-bpp": (
        "condition,codec,image,bpp\njpeg-1,jpeg,img1,0\n",
        2,
        "bpp must be a positive finite number, got 0",
    ),
    "negative-bpp": (
        "condition,codec,image,bpp\njpeg-1,jpeg,img1,0.3\njpeg-2,jpeg,img1,-1.5\n",
        3,
        "bpp must be a positive finite number, got -1.5",
    ),
    "infinite-bpp": (
        "condition,codec,image,bpp\njpeg-1,jpeg,img1,inf\n",
        2,
        "bpp must be a positive finite number, got inf",
    ),
    "empty-bpp": ("condition,codec,image,bpp\njpeg-1,jpeg,img1,\n", 2, "empty bpp"),
    "duplicate-row": (
        "condition,codec,image,bpp\njpeg-1,jpeg,img1,0.3\njpeg-2,jpeg,img1,0.9\n"
        "jpeg-1,jpeg,img1,0.31\n",
        4,
        "second row for condition 'jpeg-1' and image 'img1' (first on line 2)",
    ),
    "condition-under-two-codecs": (
        "condition,codec,image,bpp\nq1,jpeg,img1,0.3\nq1,webp,img2,0.3\n",
        3,
        "condition 'q1' has codec 'webp' here but 'jpeg' on line 2",
    ),
}


@pytest.mark.parametrize(("votes", "line", "problem"), BAD_VOTES.values(), ids=BAD_VOTES.keys())
def test_the_cli_stops_on_a_bad_vote_file_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], votes: str, line: int, problem: str
) -> None:
    votes_path, conditions_path = _write(tmp_path, votes=votes)
    out = tmp_path / "out"

    assert _run_cli(votes_path, conditions_path, out) == EXIT_INPUT

    expected = f"{votes_path}, line {line}: {problem.format(conditions=conditions_path)}"
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conditions.csv", "votes.csv"]


@pytest.mark.parametrize(
    ("conditions", "line", "problem"), BAD_CONDITIONS.values(), ids=BAD_CONDITIONS.keys()
)
def test_the_cli_stops_on_a_bad_condition_file_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], conditions: str, line: int, problem: str
) -> None:
    votes_path, conditions_path = _write(tmp_path, conditions=conditions)
    out = tmp_path / "out"

    assert _run_cli(votes_path, conditions_path, out) == EXIT_INPUT

    assert capsys.readouterr().err == f"error: {conditions_path}, line {line}: {problem}\n"
    assert not out.exists()


def test_the_cli_stops_when_the_anchor_codec_is_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes_path, conditions_path = _write(tmp_path)
    out = tmp_path / "out"

    assert _run_cli(votes_path, conditions_path, out, anchor="mozjpeg") == EXIT_INPUT

    assert capsys.readouterr().err == (
        f"error: {conditions_path}: anchor codec 'mozjpeg' is not present; "
        "codecs are 'jpeg', 'webp'\n"
    )
    assert not out.exists()


def test_the_cli_stops_when_a_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, conditions_path = _write(tmp_path)
    missing = tmp_path / "nope.csv"

    assert _run_cli(missing, conditions_path, tmp_path / "out") == EXIT_INPUT

    assert capsys.readouterr().err.startswith(f"error: {missing}: cannot read the file")


def test_it_stops_when_every_vote_is_golden(tmp_path: Path) -> None:
    conditions = validate_conditions(read_conditions(_write(tmp_path)[1]))
    votes = pd.DataFrame(
        {
            "rater": ["r1"],
            "image": ["img1"],
            "condition_a": ["original"],
            "condition_b": ["degraded"],
            "choice": ["a"],
            "golden": [1],
        }
    )
    with pytest.raises(InputError) as raised:
        validate_votes(votes, conditions)
    assert str(raised.value) == "votes.csv: every vote is golden; there is nothing to fit"
    assert raised.value.line is None


def test_reading_keeps_the_file_line_of_each_row_and_ignores_unknown_columns(
    tmp_path: Path,
) -> None:
    votes_text = (
        f"{VOTES_HEADER},golden,response_ms,browser\r\n"
        "r1,img1,jpeg-1,webp-1,a,,2300,firefox\r\n"
        "\r\n"
        'r2," img2 ",jpeg-2,webp-1,tie,0,4100,"chromium, 120"\r\n'
        "r3,img1,original,degraded,a,1,900,safari\r\n"
    )
    votes_path, conditions_path = _write(tmp_path, votes=votes_text)
    conditions = validate_conditions(read_conditions(conditions_path))
    votes = validate_votes(read_votes(votes_path), conditions)

    assert votes.index.tolist() == [2, 4, 5]
    assert votes["image"].tolist() == ["img1", "img2", "img1"]
    assert votes["golden"].tolist() == [False, False, True]
    assert votes["browser"].tolist() == ["firefox", "chromium, 120", "safari"]
    assert list(votes.columns[: len(VOTE_COLUMNS)]) == list(VOTE_COLUMNS)


def test_a_byte_order_mark_does_not_hide_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "conditions.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CONDITIONS_CSV.encode("utf-8"))
    conditions = validate_conditions(read_conditions(path))
    assert list(conditions.columns) == list(CONDITION_COLUMNS)
    assert conditions["bpp"].dtype == "float64"


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    conditions = pd.DataFrame(
        {
            "condition": ["jpeg-1", "jpeg-2", "webp-1"],
            "codec": ["jpeg", "jpeg", "webp"],
            "image": ["img1", "img1", "img1"],
            "bpp": [0.3, 0.9, 0.25],
        }
    )
    votes = pd.DataFrame(
        {
            "rater": ["r1", "r1", "r2", "r2"],
            "image": ["img1"] * 4,
            "condition_a": ["jpeg-1", "jpeg-2", "original", "webp-1"],
            "condition_b": ["webp-1", "webp-1", "degraded", "jpeg-1"],
            "choice": ["a", "b", "a", "tie"],
            "golden": [False, False, True, False],
            "flips": [3, None, 1, 5],
        }
    )
    return votes, conditions


def test_in_memory_frames_validate_with_line_numbers_from_the_row_position() -> None:
    votes, conditions = _frames()
    conditions = validate_conditions(conditions)
    checked = validate_votes(votes, conditions)
    assert checked["golden"].tolist() == [False, False, True, False]

    bad = votes.copy()
    bad.loc[3, "choice"] = "left"
    with pytest.raises(InputError) as raised:
        validate_votes(bad, conditions, source="study 7 votes")
    assert str(raised.value) == "study 7 votes, line 5: choice 'left' is not one of a, b, tie"
    assert (raised.value.file, raised.value.line) == ("study 7 votes", 5)


def test_in_memory_condition_tables_report_bad_bpp_by_row_position() -> None:
    _, conditions = _frames()
    conditions.loc[2, "bpp"] = -0.1
    with pytest.raises(
        InputError,
        match=r"^conditions\.csv, line 4: bpp must be a positive finite number, got -0.1$",
    ):
        validate_conditions(conditions)


def test_check_anchor_accepts_a_present_codec() -> None:
    _, conditions = _frames()
    check_anchor(validate_conditions(conditions), "webp")


def test_input_errors_are_value_errors_with_their_parts() -> None:
    error = InputError("votes.csv", 7, "choice 'x' is not one of a, b, tie")
    assert isinstance(error, ValueError)
    assert str(error) == "votes.csv, line 7: choice 'x' is not one of a, b, tie"
    assert (error.file, error.line, error.problem) == (
        "votes.csv",
        7,
        "choice 'x' is not one of a, b, tie",
    )


def test_exclusions_name_raters_and_an_empty_table_excludes_nobody(tmp_path: Path) -> None:
    from analysis.io import read_exclusions

    table = tmp_path / "exclusions.csv"
    table.write_text("rater,reason\nr3,slow\nr1,random\nr3,again\n", encoding="utf-8")
    assert read_exclusions(table) == ["r1", "r3"]
    table.write_text("rater,reason\n", encoding="utf-8")
    assert read_exclusions(table) == []


def test_exclusions_without_a_rater_column_or_with_an_empty_rater_are_named(
    tmp_path: Path,
) -> None:
    from analysis.io import InputError, read_exclusions

    table = tmp_path / "exclusions.csv"
    table.write_text("who,reason\nr3,slow\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: missing column 'rater'"):
        read_exclusions(table)
    table.write_text("rater,reason\nr3,slow\n,none\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: rater is empty"):
        read_exclusions(table)
