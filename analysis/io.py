"""Reading and validating vote and condition tables.

Every problem with the input is raised as an :class:`InputError` that names the file,
the 1-based line (the header is line 1) and the problem, so that a researcher can fix
the file without a traceback. The same validators accept in-memory frames (as built by
the Django app); there the line of a row is its position + 2, as if the frame had been
written to a CSV file with a header.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.types import (
    CHOICES,
    CONDITION_COLUMNS,
    GOLDEN_FALSE,
    GOLDEN_TRUE,
    LINE_INDEX,
    VOTE_COLUMNS,
)

#: Default names used in messages when a frame did not come from a named file.
VOTES_SOURCE = "votes.csv"
CONDITIONS_SOURCE = "conditions.csv"

#: Line of the header row, and of the first data row, in a CSV file.
HEADER_LINE = 1
FIRST_DATA_LINE = 2

#: Encoding of the input files; ``-sig`` tolerates the byte-order mark spreadsheets write.
FILE_ENCODING = "utf-8-sig"

#: How many codec names an error message lists before eliding the rest.
MAX_LISTED_NAMES = 10


class InputError(ValueError):
    """A problem with an input table, located by file and line.

    Parameters
    ----------
    file : str
        Name of the file (or the label of an in-memory table).
    line : int or None
        1-based line of the problem (the header is line 1), or None when the problem
        concerns the whole file.
    problem : str
        What is wrong, in words a researcher can act on.
    """

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.problem}"
        return f"{self.file}, line {self.line}: {self.problem}"

    def __reduce__(self) -> tuple[type[InputError], tuple[str, int | None, str]]:
        return (type(self), (self.file, self.line, self.problem))


# --- reading -------------------------------------------------------------------------------


def read_votes(path: str | Path) -> pd.DataFrame:
    """Read a ``votes.csv`` file as text, checking its structure.

    Parameters
    ----------
    path : str or Path
        The file. Messages name it as given.

    Returns
    -------
    DataFrame
        One column per header field, all as text (cells stripped of surrounding
        whitespace); the index, named ``"line"``, holds each row's line in the file.
        Values are checked by :func:`validate_votes`.

    Raises
    ------
    InputError
        If the file cannot be read, is empty, lacks a required column
        (:data:`analysis.types.VOTE_COLUMNS`), has a row with the wrong number of
        fields, or has no data rows.
    """
    return _read_table(path, VOTE_COLUMNS)


def read_conditions(path: str | Path) -> pd.DataFrame:
    """Read a ``conditions.csv`` file as text, checking its structure.

    Parameters
    ----------
    path : str or Path
        The file. Messages name it as given.

    Returns
    -------
    DataFrame
        As for :func:`read_votes`; values are checked by :func:`validate_conditions`.

    Raises
    ------
    InputError
        If the file cannot be read, is empty, lacks a required column
        (:data:`analysis.types.CONDITION_COLUMNS`), has a row with the wrong number of
        fields, or has no data rows.
    """
    return _read_table(path, CONDITION_COLUMNS)


def read_table(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file as text, checking its header names ``required`` columns.

    Parameters
    ----------
    path : str or Path
        The file. Messages name it as given.
    required : sequence of str
        Columns the header must have.

    Returns
    -------
    DataFrame
        As for :func:`read_votes`.

    Raises
    ------
    InputError
        As for :func:`read_votes`.
    """
    return _read_table(path, required)


def _read_table(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    source = str(path)
    lines: list[int] = []
    rows: list[list[str]] = []
    try:
        with Path(path).open(encoding=FILE_ENCODING, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InputError(
                    source, HEADER_LINE, f"the file is empty; expected a header: {_join(required)}"
                )
            header = [name.strip() for name in header]
            _check_header(header, required, source)
            end_of_previous = reader.line_num
            for record in reader:
                start = end_of_previous + 1
                end_of_previous = reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line
                if len(record) != len(header):
                    raise InputError(
                        source,
                        start,
                        f"expected {len(header)} fields as in the header, found {len(record)}",
                    )
                rows.append([cell.strip() for cell in record])
                lines.append(start)
    except OSError as error:
        raise InputError(source, None, f"cannot read the file: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(source, None, "the file is not UTF-8 text") from None
    except csv.Error as error:
        raise InputError(source, None, f"not a valid CSV file: {error}") from None
    if not rows:
        raise InputError(source, FIRST_DATA_LINE, "no data rows after the header")
    frame = pd.DataFrame(rows, columns=header, dtype="str")
    frame.index = pd.Index(lines, name=LINE_INDEX)
    return frame


def _check_header(header: Sequence[str], required: Sequence[str], source: str) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(source, HEADER_LINE, f"column '{name}' appears twice in the header")
        seen.add(name)
    missing = [name for name in required if name not in seen]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise InputError(
            source,
            HEADER_LINE,
            f"missing column{plural} {_join(missing, quote=True)}; "
            f"the header must include {_join(required)}",
        )


# --- validating ------------------------------------------------------------------------------


def validate_conditions(
    conditions: pd.DataFrame, *, source: str = CONDITIONS_SOURCE
) -> pd.DataFrame:
    """Check a condition table and return it with normalised types.

    Parameters
    ----------
    conditions : DataFrame
        Columns ``condition, codec, image, bpp`` (:data:`analysis.types.CONDITION_COLUMNS`),
        one row per condition and source image; other columns are kept unchecked.
    source : str
        Name used in error messages.

    Returns
    -------
    DataFrame
        A copy with ``condition``, ``codec`` and ``image`` as stripped text and ``bpp`` as
        float; the index is kept.

    Raises
    ------
    InputError
        At the first offending line: a missing column, no rows, an empty cell, a bpp that
        is not a positive finite number, a second row for the same condition and image,
        or a condition listed under two codecs.
    """
    lines = _line_numbers(conditions)
    _check_columns(conditions, CONDITION_COLUMNS, source)
    if conditions.empty:
        raise InputError(source, FIRST_DATA_LINE, "no data rows after the header")
    table = conditions.copy()
    for column in ("condition", "codec", "image"):
        table[column] = _text(table[column])
    raw_bpp = _text(table["bpp"])
    bpp = pd.to_numeric(raw_bpp, errors="coerce").astype("float64")

    keys = table["condition"] + "\x00" + table["image"]
    duplicate = keys.duplicated().to_numpy()
    first_line_of_key = (
        pd.Series(lines, index=table.index).groupby(keys.to_numpy()).transform("min")
    )
    codec_of_first = table.groupby("condition")["codec"].transform("first")
    line_of_codec = (
        pd.Series(lines, index=table.index).groupby(table["condition"].to_numpy()).transform("min")
    )
    other_codec = (table["codec"] != codec_of_first).to_numpy()

    checks: list[_Check] = [
        *_empty_cell_checks(table, ("condition", "codec", "image")),
        _Check(
            raw_bpp.eq("").to_numpy(),
            lambda i: "empty bpp",
        ),
        _Check(
            bpp.isna().to_numpy() & raw_bpp.ne("").to_numpy(),
            lambda i: f"bpp '{raw_bpp.iloc[i]}' is not a number",
        ),
        _Check(
            bpp.notna().to_numpy() & ~(np.isfinite(bpp.to_numpy()) & (bpp.to_numpy() > 0)),
            lambda i: f"bpp must be a positive finite number, got {raw_bpp.iloc[i]}",
        ),
        _Check(
            duplicate,
            lambda i: (
                f"second row for condition '{table['condition'].iloc[i]}' and image "
                f"'{table['image'].iloc[i]}' (first on line {first_line_of_key.iloc[i]})"
            ),
        ),
        _Check(
            other_codec,
            lambda i: (
                f"condition '{table['condition'].iloc[i]}' has codec "
                f"'{table['codec'].iloc[i]}' here but '{codec_of_first.iloc[i]}' on line "
                f"{line_of_codec.iloc[i]}"
            ),
        ),
    ]
    _raise_first(checks, lines, source)
    table["bpp"] = bpp
    return table


def validate_votes(
    votes: pd.DataFrame,
    conditions: pd.DataFrame,
    *,
    source: str = VOTES_SOURCE,
    conditions_source: str = CONDITIONS_SOURCE,
) -> pd.DataFrame:
    """Check a vote table against a condition table and return it with normalised types.

    Golden (attention-check) rows may compare stimuli that are not study conditions
    (an original against a degraded copy), so only their ``choice``, non-empty cells
    and distinct conditions are checked.

    Parameters
    ----------
    votes : DataFrame
        Columns :data:`analysis.types.VOTE_COLUMNS`; optional ``golden`` (0/1, empty = 0)
        and any other columns, which are kept unchecked.
    conditions : DataFrame
        A table already checked by :func:`validate_conditions`.
    source : str
        Name of the vote table in error messages.
    conditions_source : str
        Name of the condition table in error messages.

    Returns
    -------
    DataFrame
        A copy with the required columns as stripped text and a boolean ``golden``
        column (all False when the input had none); the index is kept.

    Raises
    ------
    InputError
        At the first offending line: a missing column, no rows, an empty cell, a choice
        not in :data:`analysis.types.CHOICES`, the same condition on both sides, a golden
        flag other than 0/1, or (for non-golden rows) a condition or image that the
        condition table does not list, or a condition without a row for that image. Also
        raised, without a line, when every vote is golden.
    """
    lines = _line_numbers(votes)
    _check_columns(votes, VOTE_COLUMNS, source)
    if votes.empty:
        raise InputError(source, FIRST_DATA_LINE, "no data rows after the header")
    table = votes.copy()
    for column in VOTE_COLUMNS:
        table[column] = _text(table[column])
    golden, golden_raw = _golden_flags(table)
    table["golden"] = golden

    known_conditions = set(conditions["condition"])
    known_images = set(conditions["image"])
    known_pairs = set(zip(conditions["condition"], conditions["image"], strict=True))
    counted = ~golden
    image = table["image"]

    def unknown(column: str) -> npt.NDArray[np.bool_]:
        return counted & ~table[column].isin(known_conditions).to_numpy()

    def unlisted(column: str) -> npt.NDArray[np.bool_]:
        pairs = zip(table[column], image, strict=True)
        listed = np.fromiter((pair in known_pairs for pair in pairs), dtype=bool, count=len(table))
        return counted & ~listed

    def condition_checks(column: str) -> list[_Check]:
        return [
            _Check(
                unknown(column),
                lambda i: (
                    f"unknown condition '{table[column].iloc[i]}' in {column} "
                    f"(not in {conditions_source})"
                ),
            ),
            _Check(
                unlisted(column),
                lambda i: (
                    f"condition '{table[column].iloc[i]}' has no row for image "
                    f"'{image.iloc[i]}' in {conditions_source}"
                ),
            ),
        ]

    checks: list[_Check] = [
        *_empty_cell_checks(table, VOTE_COLUMNS),
        _Check(
            ~table["choice"].isin(CHOICES).to_numpy() & table["choice"].ne("").to_numpy(),
            lambda i: f"choice '{table['choice'].iloc[i]}' is not one of {_join(CHOICES)}",
        ),
        _Check(
            (table["condition_a"] == table["condition_b"]).to_numpy()
            & table["condition_a"].ne("").to_numpy(),
            lambda i: f"condition_a and condition_b are both '{table['condition_a'].iloc[i]}'",
        ),
        _Check(
            golden_raw.isna().to_numpy(),
            lambda i: f"golden '{_text(votes['golden']).iloc[i]}' is not 0 or 1",
        ),
        _Check(
            _bad_flags(table, "golden_correct"),
            lambda i: f"golden_correct '{_text(votes['golden_correct']).iloc[i]}' is not 0 or 1",
        ),
        _Check(
            counted & ~image.isin(known_images).to_numpy() & image.ne("").to_numpy(),
            lambda i: f"unknown image '{image.iloc[i]}' (not in {conditions_source})",
        ),
        *condition_checks("condition_a"),
        *condition_checks("condition_b"),
    ]
    _raise_first(checks, lines, source)
    if not counted.any():
        raise InputError(source, None, "every vote is golden; there is nothing to fit")
    return table


def check_anchor(conditions: pd.DataFrame, anchor: str, *, source: str = CONDITIONS_SOURCE) -> None:
    """Check that the anchor codec has conditions in the condition table.

    Parameters
    ----------
    conditions : DataFrame
        A validated condition table.
    anchor : str
        The codec against which BD-rates are computed.
    source : str
        Name of the condition table in error messages.

    Raises
    ------
    InputError
        If no row has ``codec == anchor`` (the message lists the codecs present).
    """
    codecs = sorted(set(conditions["codec"]))
    if anchor not in codecs:
        raise InputError(
            source,
            None,
            f"anchor codec '{anchor}' is not present; codecs are {_join(codecs, quote=True)}",
        )


# --- helpers ---------------------------------------------------------------------------------


class _Check:
    """Rows failing one check, and how to describe the failure of row ``i``."""

    def __init__(self, failing: npt.NDArray[np.bool_], describe: Callable[[int], str]) -> None:
        self.failing = np.asarray(failing, dtype=bool)
        self.describe = describe


def _raise_first(checks: Sequence[_Check], lines: npt.NDArray[np.int64], source: str) -> None:
    """Raise for the earliest line failing any check, with the first check it fails."""
    first_row: int | None = None
    first_check: _Check | None = None
    for check in checks:
        rows = np.flatnonzero(check.failing)
        if rows.size and (first_row is None or lines[rows[0]] < lines[first_row]):
            first_row, first_check = int(rows[0]), check
    if first_row is not None and first_check is not None:
        raise InputError(source, int(lines[first_row]), first_check.describe(first_row))


def _empty_cell_checks(table: pd.DataFrame, columns: Sequence[str]) -> list[_Check]:
    def describe(column: str) -> Callable[[int], str]:
        return lambda i: f"empty {column}"

    return [_Check(table[column].eq("").to_numpy(), describe(column)) for column in columns]


def _golden_flags(table: pd.DataFrame) -> tuple[npt.NDArray[np.bool_], pd.Series]:
    """Golden flags and their parsed form (NaN where the value is not a valid flag)."""
    if "golden" not in table.columns:
        flags = pd.Series(0.0, index=table.index)
        return np.zeros(len(table), dtype=bool), flags
    raw = table["golden"]
    if pd.api.types.is_bool_dtype(raw):
        parsed = raw.astype("float64")
    else:
        text = _text(raw).str.lower()
        mapping = {
            "": 0.0,
            GOLDEN_FALSE: 0.0,
            GOLDEN_TRUE: 1.0,
            "0.0": 0.0,
            "1.0": 1.0,
            "false": 0.0,
            "true": 1.0,
        }
        parsed = text.map(mapping).astype("float64")
    return (parsed == 1.0).to_numpy(), parsed


def _bad_flags(table: pd.DataFrame, column: str) -> npt.NDArray[np.bool_]:
    """Rows whose optional 0/1 ``column`` holds something else (empty is allowed)."""
    if column not in table.columns:
        return np.zeros(len(table), dtype=bool)
    text = _text(table[column]).str.lower()
    allowed = {"", GOLDEN_FALSE, GOLDEN_TRUE, "0.0", "1.0", "false", "true"}
    return ~text.isin(allowed).to_numpy()


def _check_columns(frame: pd.DataFrame, required: Sequence[str], source: str) -> None:
    missing = [name for name in required if name not in frame.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise InputError(
            source,
            HEADER_LINE,
            f"missing column{plural} {_join(missing, quote=True)}; "
            f"the header must include {_join(required)}",
        )


def _line_numbers(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """File lines of the rows: the ``line`` index if present, else position + 2."""
    if frame.index.name == LINE_INDEX:
        return frame.index.to_numpy(dtype=np.int64)
    return np.arange(len(frame), dtype=np.int64) + FIRST_DATA_LINE


def _text(column: pd.Series) -> pd.Series:
    """A column as stripped text, with missing values as empty strings."""
    return column.astype("str").str.strip().fillna("")


def _join(names: Sequence[str], *, quote: bool = False) -> str:
    shown = [f"'{name}'" if quote else name for name in names[:MAX_LISTED_NAMES]]
    if len(names) > MAX_LISTED_NAMES:
        shown.append(f"and {len(names) - MAX_LISTED_NAMES} more")
    return ", ".join(shown)


#: Column of an exclusions table (a bundle's exclusions.csv has more, ignored).
EXCLUSION_COLUMNS = ("rater",)


def read_exclusions(path: str | Path) -> list[str]:
    """The raters an exclusions table names (an empty table excludes nobody).

    Raises
    ------
    InputError
        The file cannot be read, lacks a ``rater`` column, or has an empty rater.
    """
    try:
        frame = _read_table(path, EXCLUSION_COLUMNS)
    except InputError as error:
        if error.line == FIRST_DATA_LINE:  # only a header: nobody is excluded
            return []
        raise
    for line, rater in zip(frame.index, frame["rater"], strict=True):
        if not rater:
            raise InputError(str(path), int(line), "rater is empty")
    return sorted(set(frame["rater"]))
