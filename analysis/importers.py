"""Importers of pairwise answers collected elsewhere, into the ``votes.csv`` format.

- Google's elo_rater_model CSV (used for CLIC 2024 and the jpegli study):
  ``methodA,methodB,answerValue,answerer,isGolden`` and optionally
  ``modelProbability``. As ``elo_main.cc`` reads it: ``answerValue`` ``B``, ``1`` or
  ``true`` means B won, ``draw`` a tie, anything else A won; a golden row
  (``isGolden`` 1/true) was answered correctly when ``modelProbability`` is 1/true.
- The mucped23 folder of the jpegli study (``answers.csv`` and ``elo.csv``): careful,
  its ``answerValue`` names the distortion that LOST (see shared/data SOURCE.md: the
  authors' own notebook counts ``B`` as a win for methodA). The answers carry no rater
  ids, so they form one pool (rater ``pool``); ``elo.csv`` gives each method's mean bpp
  over the 49 images, which is all that is published, so every image gets that mean.

The imported answers have no left/right position: A and B are labels (mucped23 lists
each pair in one fixed order), so ``position_bias="auto"`` leaves the term out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from analysis.io import InputError, read_table
from analysis.types import CHOICE_A, CHOICE_B, CHOICE_TIE

#: Required columns of an elo_rater_model CSV.
ELO_RATER_COLUMNS: Final = ("methodA", "methodB", "answerValue", "answerer", "isGolden")
#: ``answerValue`` spellings meaning "B won" and "draw", as ``elo_main.cc`` reads them.
ELO_RATER_B_WINS: Final = ("1", "true", "B")
ELO_RATER_DRAW: Final = "draw"
#: Spellings of a true flag in ``isGolden`` and ``modelProbability``.
ELO_RATER_TRUE: Final = ("1", "true")
#: The image of imported answers without one.
UNKNOWN_IMAGE: Final = "unknown"
#: Golden conditions of imported golden rows.
IMPORTED_GOLDEN: Final = ("golden-reference", "golden-degraded")

#: Files of the mucped23 folder and their columns.
MUCPED23_ANSWERS: Final = "answers.csv"
MUCPED23_ELO: Final = "elo.csv"
MUCPED23_ANSWER_COLUMNS: Final = ("methodA", "methodB", "originalName", "answerValue")
MUCPED23_ELO_COLUMNS: Final = ("method", "elo", "p99Low", "p99Hi", "bpp", "label")
#: Rater id of the mucped23 answers (the file has none: one pool).
MUCPED23_RATER: Final = "pool"
#: Codec of each mucped23 ``label``: jpegli 4:4:4 and 4:2:0 are separate curves.
MUCPED23_CODECS: Final = {
    "jpegli": "jpegli",
    "jpegli-420": "jpegli-420",
    "libjpeg-turbo": "libjpeg-turbo",
    "mozjpeg": "mozjpeg",
}
#: Centre of Google's published Elo scale (elo_rater_model's kInitialElo): its scores
#: have mean 2000, Codec Arena's mean 0.
GOOGLE_ELO_CENTRE: Final = 2000.0


def read_elo_rater_csv(path: str | Path) -> pd.DataFrame:
    """Read answers in the CSV format of Google's elo_rater_model.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    DataFrame
        In the votes.csv format: ``rater, image, condition_a, condition_b, choice,
        golden, golden_correct``. Golden rows become ``golden-reference`` against
        ``golden-degraded`` with ``golden_correct`` from ``modelProbability`` (empty
        when the file lacks it). The image is ``unknown``: the format has none.

    Raises
    ------
    InputError
        If the file cannot be read or lacks a column.
    """
    table = read_table(path, ELO_RATER_COLUMNS)
    answer = table["answerValue"]
    choice = np.where(
        answer.isin(ELO_RATER_B_WINS),
        CHOICE_B,
        np.where(answer == ELO_RATER_DRAW, CHOICE_TIE, CHOICE_A),
    )
    golden = table["isGolden"].str.lower().isin(ELO_RATER_TRUE).to_numpy()
    if "modelProbability" in table.columns:
        correct = table["modelProbability"].str.lower().isin(ELO_RATER_TRUE).to_numpy()
        golden_correct = np.where(golden, np.where(correct, "1", "0"), "")
    else:
        golden_correct = np.full(len(table), "")
    votes = pd.DataFrame(
        {
            "rater": table["answerer"].to_numpy(),
            "image": table["originalName"].to_numpy()
            if "originalName" in table.columns
            else UNKNOWN_IMAGE,
            "condition_a": np.where(golden, IMPORTED_GOLDEN[0], table["methodA"].to_numpy()),
            "condition_b": np.where(golden, IMPORTED_GOLDEN[1], table["methodB"].to_numpy()),
            "choice": choice,
            "golden": golden.astype(int),
            "golden_correct": golden_correct,
        }
    )
    return votes.reset_index(drop=True)


def read_mucped23(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the mucped23 answers and methods as a vote and a condition table.

    Parameters
    ----------
    folder : str or Path
        The folder with ``answers.csv`` and ``elo.csv``.

    Returns
    -------
    votes : DataFrame
        votes.csv format, one row per answer, rater ``pool``, the winner chosen (the
        file's ``answerValue`` names the loser).
    conditions : DataFrame
        conditions.csv format: one row per method and image, codec from ``label``,
        ``bpp`` the method's published mean over images.

    Raises
    ------
    InputError
        If a file cannot be read, lacks a column, ``answerValue`` is not A or B, or an
        answer names a method that ``elo.csv`` does not list.
    """
    base = Path(folder)
    answers = read_table(base / MUCPED23_ANSWERS, MUCPED23_ANSWER_COLUMNS)
    methods = read_elo_table(base / MUCPED23_ELO)
    source = str(base / MUCPED23_ANSWERS)
    bad = ~answers["answerValue"].isin(["A", "B"]).to_numpy()
    if bad.any():
        line = int(answers.index[np.flatnonzero(bad)[0]])
        raise InputError(source, line, "answerValue must be A or B")
    known = set(methods["method"])
    for column in ("methodA", "methodB"):
        unknown = ~answers[column].isin(known).to_numpy()
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise InputError(
                source,
                int(answers.index[i]),
                f"method '{answers[column].iloc[i]}' is not in {MUCPED23_ELO}",
            )
    # answerValue names the distortion judged further from the original: A lost means
    # B was chosen.
    choice = np.where(answers["answerValue"] == "A", CHOICE_B, CHOICE_A)
    votes = pd.DataFrame(
        {
            "rater": MUCPED23_RATER,
            "image": answers["originalName"].to_numpy(),
            "condition_a": answers["methodA"].to_numpy(),
            "condition_b": answers["methodB"].to_numpy(),
            "choice": choice,
            "golden": 0,
        }
    )
    images = list(pd.unique(answers["originalName"]))
    rows = [
        (str(row.method), MUCPED23_CODECS.get(str(row.label), str(row.label)), image, row.bpp)
        for row in methods.itertuples(index=False)
        for image in images
    ]
    conditions = pd.DataFrame(rows, columns=["condition", "codec", "image", "bpp"])
    return votes, conditions


def read_elo_table(path: str | Path) -> pd.DataFrame:
    """Read a published elo.csv of mucped23 (``method,elo,p99Low,p99Hi,bpp,label``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    DataFrame
        ``method`` and ``label`` as text, the numbers as floats.

    Raises
    ------
    InputError
        If the file cannot be read, lacks a column or holds a non-number.
    """
    table = read_table(path, MUCPED23_ELO_COLUMNS)
    out = table[list(MUCPED23_ELO_COLUMNS)].copy()
    for column in ("elo", "p99Low", "p99Hi", "bpp"):
        values = pd.to_numeric(out[column], errors="coerce")
        if values.isna().any():
            line = int(out.index[np.flatnonzero(values.isna().to_numpy())[0]])
            raise InputError(str(path), line, f"{column} is not a number")
        out[column] = values.astype("float64")
    return out.reset_index(drop=True)
