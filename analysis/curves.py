"""Plain rate/quality curves (``codec,bpp,quality``) and their BD-rates.

What ``python -m analysis bdrate`` reads and computes: the classic Bjøntegaard delta
for any quality measure where higher is better (PSNR, SSIM in dB, Elo, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.bdrate import BDRateError, BDRateFailure, Interpolation, bd_rate, overlap_fraction
from analysis.io import InputError, read_table
from analysis.types import BDRATE_COMMAND_COLUMNS, CURVE_INPUT_COLUMNS

#: Messages for a pair of curves without a BD-rate.
FAILURE_NOTES = {
    BDRateFailure.TOO_FEW_POINTS: "a curve has too few points for this interpolation",
    BDRateFailure.INVALID_VALUES: "a rate is not positive or a quality is not finite",
    BDRateFailure.ANCHOR_NOT_INCREASING: "the anchor's quality does not increase with rate",
    BDRateFailure.TEST_NOT_INCREASING: "this codec's quality does not increase with rate",
    BDRateFailure.NO_OVERLAP: "the quality ranges of the two curves do not overlap",
}


def read_curves(path: str | Path) -> pd.DataFrame:
    """Read and check a curve file: columns ``codec, bpp, quality``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    DataFrame
        ``codec`` as text, ``bpp`` and ``quality`` as floats, index = file line.

    Raises
    ------
    InputError
        If the file cannot be read, lacks a column, or a bpp is not a positive number or
        a quality not a finite number (with its line).
    """
    return validate_curves(read_table(path, CURVE_INPUT_COLUMNS), source=str(path))


def validate_curves(table: pd.DataFrame, *, source: str = "curves.csv") -> pd.DataFrame:
    """Check an in-memory curve table (see :func:`read_curves`).

    Parameters
    ----------
    table : DataFrame
    source : str
        Name in messages.

    Returns
    -------
    DataFrame

    Raises
    ------
    InputError
        At the first bad line.
    """
    missing = [name for name in CURVE_INPUT_COLUMNS if name not in table.columns]
    if missing:
        raise InputError(source, 1, f"missing column(s) {', '.join(missing)}")
    lines = table.index.to_numpy() if table.index.name == "line" else np.arange(len(table)) + 2
    out = pd.DataFrame(
        {
            "codec": table["codec"].astype("str").str.strip(),
            "bpp": pd.to_numeric(table["bpp"], errors="coerce"),
            "quality": pd.to_numeric(table["quality"], errors="coerce"),
        },
        index=table.index,
    )
    for i in range(len(out)):
        if not out["codec"].iloc[i]:
            raise InputError(source, int(lines[i]), "empty codec")
        bpp, quality = out["bpp"].iloc[i], out["quality"].iloc[i]
        if not (np.isfinite(bpp) and bpp > 0):
            raise InputError(
                source, int(lines[i]), f"bpp must be a positive number, got {table['bpp'].iloc[i]}"
            )
        if not np.isfinite(quality):
            raise InputError(
                source, int(lines[i]), f"quality must be a number, got {table['quality'].iloc[i]}"
            )
    return out


def bd_rate_table(
    curves: pd.DataFrame,
    *,
    anchor: str,
    interp: Interpolation | str = Interpolation.PCHIP,
    source: str = "curves.csv",
) -> pd.DataFrame:
    """BD-rate of every codec of a curve table against the anchor.

    Parameters
    ----------
    curves : DataFrame
        From :func:`read_curves`.
    anchor : str
        Anchor codec.
    interp : Interpolation or str
        ``pchip``, ``akima`` or ``cubic``.
    source : str
        Name in messages.

    Returns
    -------
    DataFrame
        Columns :data:`analysis.types.BDRATE_COMMAND_COLUMNS`, one row per other codec in
        order of appearance: BD-rate in percent (empty where none exists, with a
        ``note`` saying why) and the overlap of the quality ranges.

    Raises
    ------
    InputError
        If the anchor codec is absent.
    """
    codecs = list(pd.unique(curves["codec"]))
    if anchor not in codecs:
        raise InputError(
            source, None, f"anchor codec '{anchor}' is not present; codecs are {', '.join(codecs)}"
        )
    base = curves[curves["codec"] == anchor]
    rows = []
    for codec in codecs:
        if codec == anchor:
            continue
        test = curves[curves["codec"] == codec]
        overlap = overlap_fraction(base["quality"], test["quality"])
        try:
            value = bd_rate(
                base["bpp"], base["quality"], test["bpp"], test["quality"], interp=interp
            )
            note = ""
        except BDRateError as error:
            value, note = float("nan"), FAILURE_NOTES[error.reason]
        rows.append(
            {"codec": codec, "anchor": anchor, "bd_rate": value, "overlap": overlap, "note": note}
        )
    return pd.DataFrame(rows, columns=list(BDRATE_COMMAND_COLUMNS))
