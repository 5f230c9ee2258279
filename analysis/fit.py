"""Fit a study: vote and condition tables in; Elo per condition, BD-rates and diagnostics out."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from xarray import DataTree

from analysis.bdrate import BDRateFailure, bd_rate_draws
from analysis.diagnostics import library_versions, sampling_diagnostics
from analysis.io import (
    CONDITIONS_SOURCE,
    VOTES_SOURCE,
    check_anchor,
    validate_conditions,
    validate_votes,
)
from analysis.model import (
    CONDITION_DIM,
    DEFAULT_CHAINS,
    DEFAULT_DRAWS,
    DEFAULT_TUNE,
    ELO_VAR,
    TIE_CREDIT,
    BTPriors,
    build_bt_model,
    count_pairs,
    fit_model,
)
from analysis.report import DEFAULT_TITLE, render_report
from analysis.types import BD_RATE_COLUMNS, ELO_COLUMNS, PairCounts

#: Probability mass of the reported equal-tailed intervals (Elo and BD-rate).
INTERVAL_PROB: Final = 0.95

#: Output files written by :func:`write_outputs`, by key.
OUTPUT_FILES: Final = {
    "elo": "elo.csv",
    "bd_rate": "bd_rate.csv",
    "diagnostics": "diagnostics.json",
    "report": "report.html",
}

#: Number format of the CSV outputs: six significant digits are well below the
#: posterior uncertainty of any Elo score or BD-rate.
CSV_FLOAT_FORMAT: Final = "%.6g"

#: Sample dimensions of the posterior.
SAMPLE_DIMS: Final = ("chain", "draw")


@dataclass
class FitResult:
    """Everything a study fit produces.

    Attributes
    ----------
    elo : DataFrame
        Columns :data:`analysis.types.ELO_COLUMNS`: per condition its codec, mean bpp over
        images, posterior median Elo and equal-tailed interval bounds. Ordered by codec
        (first appearance in the condition table), then bpp.
    bd_rate : DataFrame
        Columns :data:`analysis.types.BD_RATE_COLUMNS`: per non-anchor codec the posterior
        median BD-rate against the anchor and its interval, in percent; NaN where no
        posterior draw allowed a BD-rate (see ``diagnostics["bd_rate_unusable"]``).
    diagnostics : dict
        JSON-ready record of convergence, data counts, settings and library versions.
    idata : DataTree
        The posterior sample.
    """

    elo: pd.DataFrame
    bd_rate: pd.DataFrame
    diagnostics: dict[str, Any]
    idata: DataTree


def fit_study(
    votes: pd.DataFrame,
    conditions: pd.DataFrame,
    *,
    anchor: str,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = DEFAULT_CHAINS,
    priors: BTPriors | None = None,
    votes_source: str = VOTES_SOURCE,
    conditions_source: str = CONDITIONS_SOURCE,
) -> FitResult:
    """Validate the tables, fit the Bradley-Terry model and compute BD-rates.

    Golden (attention-check) votes are left out of the fit and counted in the
    diagnostics. Elo is relative to the mean of all conditions (sum to zero). BD-rate
    is computed for every posterior draw from each codec's points (mean bpp of a
    condition over images, Elo of the condition) and summarised by its median and
    equal-tailed interval over the draws where it is defined.

    Parameters
    ----------
    votes : DataFrame
        Vote table (format ``votes.csv``).
    conditions : DataFrame
        Condition table (format ``conditions.csv``).
    anchor : str
        Codec that BD-rates are measured against.
    seed : int
        Seed of the sampler; the same seed gives the same result bit for bit.
    draws, tune, chains : int
        Sampler settings (see :func:`analysis.model.fit_model`).
    priors : BTPriors, optional
        Prior scales; ``BTPriors()`` when omitted.
    votes_source, conditions_source : str
        Names of the tables in error messages.

    Returns
    -------
    FitResult

    Raises
    ------
    analysis.io.InputError
        If a table is malformed or the anchor codec has no condition.
    ValueError
        If a sampler setting is out of range.
    """
    started = time.perf_counter()
    priors = BTPriors() if priors is None else priors
    conditions = validate_conditions(conditions, source=conditions_source)
    votes = validate_votes(
        votes, conditions, source=votes_source, conditions_source=conditions_source
    )
    check_anchor(conditions, anchor, source=conditions_source)

    counts = count_pairs(votes, conditions)
    points = condition_points(conditions, counts.conditions)
    model = build_bt_model(counts, priors=priors)
    idata = fit_model(model, random_seed=seed, draws=draws, tune=tune, chains=chains)
    elo_draws = _stacked_draws(idata, counts.conditions)

    elo = elo_summary(elo_draws, points)
    bd_table, unusable = bd_rate_posterior(elo_draws, points, anchor=anchor)

    diagnostics: dict[str, Any] = sampling_diagnostics(idata, [ELO_VAR])
    diagnostics.update(_data_summary(votes, conditions, counts))
    diagnostics.update(
        {
            "anchor": anchor,
            "anchoring": "Elo is relative to the mean of all conditions, which is 0",
            "interval_prob": INTERVAL_PROB,
            "model": "Bradley-Terry on the Elo scale, one score per condition",
            "tie_credit": TIE_CREDIT,
            "priors": asdict(priors),
            "sampler": "nutpie",
            "seed": seed,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "bd_rate_unusable": unusable,
            "sampling_seconds": _sampling_seconds(idata),
            "seconds": round(time.perf_counter() - started, 3),
            "versions": library_versions(),
        }
    )
    return FitResult(elo=elo, bd_rate=bd_table, diagnostics=diagnostics, idata=idata)


def condition_points(conditions: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """Codec and mean bpp over images of each condition.

    Parameters
    ----------
    conditions : DataFrame
        A validated condition table.
    labels : tuple of str
        Conditions in the order wanted (the model's order).

    Returns
    -------
    DataFrame
        Columns ``condition, codec, bpp, n_images``, one row per label in order.

    Raises
    ------
    KeyError
        If a label is not in ``conditions``.
    """
    grouped = conditions.groupby("condition", sort=False).agg(
        codec=("codec", "first"), bpp=("bpp", "mean"), n_images=("image", "nunique")
    )
    return grouped.loc[list(labels)].reset_index()


def elo_summary(
    elo_draws: npt.NDArray[np.float64],
    points: pd.DataFrame,
    *,
    interval: float = INTERVAL_PROB,
) -> pd.DataFrame:
    """Posterior median and equal-tailed interval of each condition's Elo.

    Parameters
    ----------
    elo_draws : ndarray, shape (n_draws, n_conditions)
        Posterior draws, columns in the order of ``points``.
    points : DataFrame
        From :func:`condition_points`.
    interval : float
        Probability mass of the interval.

    Returns
    -------
    DataFrame
        Columns :data:`analysis.types.ELO_COLUMNS`, ordered by codec then bpp.

    Raises
    ------
    ValueError
        If the shapes disagree or ``interval`` is not in (0, 1).
    """
    if elo_draws.ndim != 2 or elo_draws.shape[1] != len(points):
        raise ValueError(f"elo_draws must have shape (n_draws, {len(points)})")
    lo_q, hi_q = _tail_quantiles(interval)
    table = pd.DataFrame(
        {
            "condition": points["condition"].to_numpy(),
            "codec": points["codec"].to_numpy(),
            "bpp": points["bpp"].to_numpy(dtype=np.float64),
            "elo": np.median(elo_draws, axis=0),
            "elo_lo": np.quantile(elo_draws, lo_q, axis=0),
            "elo_hi": np.quantile(elo_draws, hi_q, axis=0),
        }
    )
    codec_order = {codec: i for i, codec in enumerate(pd.unique(points["codec"]))}
    table = table.assign(_order=table["codec"].map(codec_order))
    table = table.sort_values(["_order", "bpp"], kind="stable").drop(columns="_order")
    return table.reset_index(drop=True)[list(ELO_COLUMNS)]


def bd_rate_posterior(
    elo_draws: npt.NDArray[np.float64],
    points: pd.DataFrame,
    *,
    anchor: str,
    interval: float = INTERVAL_PROB,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """BD-rate of every codec against the anchor, over posterior draws.

    A draw is unusable for a codec when, at that draw, Elo does not strictly increase
    with bpp on the anchor's or the codec's curve, or the two Elo ranges do not overlap.
    The summary uses the usable draws only; the share of unusable ones, and why, is
    returned alongside.

    Parameters
    ----------
    elo_draws : ndarray, shape (n_draws, n_conditions)
        Posterior draws, columns in the order of ``points``.
    points : DataFrame
        From :func:`condition_points` (``condition``, ``codec``, ``bpp``).
    anchor : str
        Anchor codec.
    interval : float
        Probability mass of the interval.

    Returns
    -------
    bd_rate : DataFrame
        Columns :data:`analysis.types.BD_RATE_COLUMNS`, one row per non-anchor codec in
        order of appearance; NaN where no draw is usable.
    unusable : dict
        Per codec: ``share`` of unusable draws, ``n_draws``, ``reasons`` (failure code to
        number of draws) and, when no draw is usable, a ``note`` saying why.

    Raises
    ------
    ValueError
        If the anchor is not among the codecs or the shapes disagree.
    """
    if elo_draws.ndim != 2 or elo_draws.shape[1] != len(points):
        raise ValueError(f"elo_draws must have shape (n_draws, {len(points)})")
    codecs = list(pd.unique(points["codec"]))
    if anchor not in codecs:
        raise ValueError(f"anchor codec '{anchor}' is not among the codecs {codecs}")
    lo_q, hi_q = _tail_quantiles(interval)
    columns = {codec: np.flatnonzero(points["codec"].to_numpy() == codec) for codec in codecs}
    bpp = points["bpp"].to_numpy(dtype=np.float64)
    n_draws = elo_draws.shape[0]

    rows: list[dict[str, Any]] = []
    unusable: dict[str, dict[str, Any]] = {}
    for codec in codecs:
        if codec == anchor:
            continue
        draws = bd_rate_draws(
            bpp[columns[anchor]],
            elo_draws[:, columns[anchor]],
            bpp[columns[codec]],
            elo_draws[:, columns[codec]],
        )
        usable = draws.percent[draws.usable]
        reasons = draws.failure_counts()
        record: dict[str, Any] = {
            "share": (n_draws - usable.size) / n_draws,
            "n_draws": n_draws,
            "reasons": {str(reason): count for reason, count in sorted(reasons.items())},
        }
        if usable.size:
            median = float(np.median(usable))
            lo, hi = (float(v) for v in np.quantile(usable, [lo_q, hi_q]))
        else:
            median = lo = hi = float("nan")
            record["note"] = _no_usable_draw_note(reasons)
        unusable[codec] = record
        rows.append(
            {
                "codec": codec,
                "anchor": anchor,
                "bd_rate": median,
                "bd_rate_lo": lo,
                "bd_rate_hi": hi,
            }
        )
    table = pd.DataFrame(rows, columns=list(BD_RATE_COLUMNS))
    table = table.astype({name: "float64" for name in BD_RATE_COLUMNS[2:]})
    return table, unusable


def write_outputs(
    result: FitResult, out_dir: str | Path, *, title: str = DEFAULT_TITLE
) -> dict[str, Path]:
    """Write ``elo.csv``, ``bd_rate.csv``, ``diagnostics.json`` and ``report.html``.

    Everything is rendered into a temporary directory next to ``out_dir`` first, so a
    failure leaves no partial output behind. When ``out_dir`` does not exist the
    temporary directory is renamed to it; otherwise each file replaces its old version.
    Missing parent directories are created.

    Parameters
    ----------
    result : FitResult
        From :func:`fit_study`.
    out_dir : str or Path
        Output directory.
    title : str
        Title of the report.

    Returns
    -------
    dict of str to Path
        Keys ``elo``, ``bd_rate``, ``diagnostics``, ``report``.

    Raises
    ------
    OSError
        If the files cannot be written.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its mode 0o700 would survive the rename; mkdir honours umask.
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        result.elo.to_csv(
            staging / OUTPUT_FILES["elo"],
            index=False,
            float_format=CSV_FLOAT_FORMAT,
            na_rep="",
            lineterminator="\n",
        )
        result.bd_rate.to_csv(
            staging / OUTPUT_FILES["bd_rate"],
            index=False,
            float_format=CSV_FLOAT_FORMAT,
            na_rep="",
            lineterminator="\n",
        )
        (staging / OUTPUT_FILES["diagnostics"]).write_text(
            json.dumps(result.diagnostics, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        (staging / OUTPUT_FILES["report"]).write_text(
            render_report(result, title=title), encoding="utf-8"
        )
        if out.exists():
            for name in OUTPUT_FILES.values():
                os.replace(staging / name, out / name)
        else:
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {key: out / name for key, name in OUTPUT_FILES.items()}


# --- helpers ---------------------------------------------------------------------------------


def _no_usable_draw_note(reasons: Counter[BDRateFailure]) -> str:
    explanations = {
        BDRateFailure.TOO_FEW_POINTS: "a curve has fewer than two rate points",
        BDRateFailure.INVALID_VALUES: "a rate or Elo value is not finite",
        BDRateFailure.ANCHOR_NOT_INCREASING: "the anchor's Elo does not increase with bpp",
        BDRateFailure.TEST_NOT_INCREASING: "this codec's Elo does not increase with bpp",
        BDRateFailure.NO_OVERLAP: "the Elo ranges of the two curves do not overlap",
    }
    parts = [f"{explanations[reason]} ({count} draws)" for reason, count in reasons.most_common()]
    return "no posterior draw allows a BD-rate, because " + "; ".join(parts)


def _stacked_draws(idata: DataTree, labels: tuple[str, ...]) -> npt.NDArray[np.float64]:
    elo = idata.posterior[ELO_VAR].sel({CONDITION_DIM: list(labels)})
    elo = elo.transpose(*SAMPLE_DIMS, CONDITION_DIM)
    return np.asarray(elo.values, dtype=np.float64).reshape(-1, len(labels))


def _data_summary(
    votes: pd.DataFrame, conditions: pd.DataFrame, counts: PairCounts
) -> dict[str, Any]:
    counted = votes.loc[~votes["golden"].to_numpy()]
    voted = np.zeros(len(counts.conditions), dtype=bool)
    voted[counts.a_idx] = True
    voted[counts.b_idx] = True
    n = len(counts.conditions)
    graph = coo_array((np.ones(len(counts.a_idx)), (counts.a_idx, counts.b_idx)), shape=(n, n))
    n_components, _ = connected_components(graph, directed=False)
    return {
        "n_votes": counts.n_votes,
        "n_votes_total": len(votes),
        "n_golden_excluded": int(votes["golden"].sum()),
        "n_ties": counts.n_ties,
        "n_pairs": len(counts.n),
        "n_raters": int(counted["rater"].nunique()),
        "n_images": int(conditions["image"].nunique()),
        "n_conditions": n,
        "n_codecs": int(conditions["codec"].nunique()),
        "conditions_without_votes": [
            label for label, seen in zip(counts.conditions, voted, strict=True) if not seen
        ],
        "comparison_graph_components": int(n_components),
    }


def _sampling_seconds(idata: DataTree) -> float | None:
    value = idata.posterior.attrs.get("sampling_time")
    return round(float(value), 3) if value is not None else None


def _tail_quantiles(interval: float) -> tuple[float, float]:
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    tail = (1.0 - interval) / 2.0
    return tail, 1.0 - tail
