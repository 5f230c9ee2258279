"""Fit a study: vote and condition tables in; Elo per condition, BD-rates and diagnostics out."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from scipy.stats import kendalltau, spearmanr
from xarray import DataTree

from analysis.bdrate import BDRateFailure, bd_rate_draws, rate_ratio_draws
from analysis.diagnostics import ConvergenceThresholds, library_versions, sampling_diagnostics
from analysis.io import (
    CONDITIONS_SOURCE,
    VOTES_SOURCE,
    InputError,
    check_anchor,
    validate_conditions,
    validate_votes,
)
from analysis.model import (
    CONDITION_DIM,
    DAMPED_ELO_VAR,
    DEFAULT_CHAINS,
    DEFAULT_DRAWS,
    DEFAULT_MODEL,
    DEFAULT_TIES,
    DEFAULT_TUNE,
    ELO_VAR,
    IMAGE_SCALE_VAR,
    TIE_CREDIT,
    BTPriors,
    ModelName,
    ModelOptions,
    TieModel,
    build_model,
    count_votes,
    fit_model,
    resolve_options,
)
from analysis.raters import rater_table
from analysis.report import DEFAULT_TITLE, render_report
from analysis.types import (
    BD_RATE_COLUMNS,
    BD_RATE_EXTRA_COLUMNS,
    BD_RATE_MATRIX_COLUMNS,
    CONDITION_COLUMNS,
    CURVE_COLUMNS,
    ELO_COLUMNS,
    METRIC_COLUMNS,
    SAVINGS_COLUMNS,
    VoteData,
)

#: Probability mass of the reported equal-tailed intervals (Elo and BD-rate).
INTERVAL_PROB: Final = 0.95

#: Output files written by :func:`write_outputs`, by key. The first four are the
#: contract of the first version; the others were added by issue 4.
OUTPUT_FILES: Final = {
    "elo": "elo.csv",
    "bd_rate": "bd_rate.csv",
    "diagnostics": "diagnostics.json",
    "report": "report.html",
    "curves": "curves.csv",
    "savings": "savings.csv",
    "bd_rate_matrix": "bd_rate_matrix.csv",
    "raters": "raters.csv",
    "metrics": "metrics.csv",
    "posterior": "posterior.nc",
}

#: Points of the savings curve: anchor rates evenly spaced in log over the anchor's range.
SAVINGS_POINTS: Final = 25

#: Engine of the NetCDF posterior (HDF5-based NetCDF-4, readable by xarray and ArviZ).
NETCDF_ENGINE: Final = "h5netcdf"

#: Number format of the CSV outputs: six significant digits are well below the
#: posterior uncertainty of any Elo score or BD-rate.
CSV_FLOAT_FORMAT: Final = "%.6g"

#: Sample dimensions of the posterior.
SAMPLE_DIMS: Final = ("chain", "draw")

#: Longest vector parameter summarised in ``diagnostics["parameters"]``.
MAX_SUMMARISED_LENGTH: Final = 10


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
        Columns :data:`analysis.types.BD_RATE_COLUMNS` then
        :data:`analysis.types.BD_RATE_EXTRA_COLUMNS`: per non-anchor codec the posterior
        median BD-rate against the anchor and its interval, in percent; NaN where no
        posterior draw allowed a BD-rate (see ``diagnostics["bd_rate_unusable"]``).
    diagnostics : dict
        JSON-ready record of convergence, data counts, settings and library versions.
    idata : DataTree
        The posterior sample (or draws from the Laplace approximation).
    curves : DataFrame
        Columns :data:`analysis.types.CURVE_COLUMNS`.
    savings : DataFrame
        Columns :data:`analysis.types.SAVINGS_COLUMNS`.
    bd_rate_matrix : DataFrame
        Columns :data:`analysis.types.BD_RATE_MATRIX_COLUMNS`, every ordered codec pair.
    raters : DataFrame
        Columns :data:`analysis.types.RATER_COLUMNS`.
    metrics : DataFrame
        Columns :data:`analysis.types.METRIC_COLUMNS`.
    condition_metrics : DataFrame
        Per condition its Elo and the mean of each objective metric over images.
    """

    elo: pd.DataFrame
    bd_rate: pd.DataFrame
    diagnostics: dict[str, Any]
    idata: DataTree
    curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CURVE_COLUMNS))
    savings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SAVINGS_COLUMNS))
    bd_rate_matrix: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=BD_RATE_MATRIX_COLUMNS)
    )
    raters: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=METRIC_COLUMNS))
    condition_metrics: pd.DataFrame = field(default_factory=pd.DataFrame)


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
    model: ModelName | str = DEFAULT_MODEL,
    ties: TieModel | str = DEFAULT_TIES,
    position_bias: bool | None = None,
    fast: bool = False,
    exclude_raters: Sequence[str] = (),
    votes_source: str = VOTES_SOURCE,
    conditions_source: str = CONDITIONS_SOURCE,
) -> FitResult:
    """Validate the tables, fit a Bradley-Terry model and compute BD-rates and curves.

    Golden (attention-check) votes are left out of the comparisons and counted in the
    diagnostics; under ``bt-rater`` they inform each rater's reliability. Elo is
    relative to the mean of all conditions (sum to zero). BD-rate is computed for every
    posterior draw from each codec's points (mean bpp of a condition over images, Elo
    of the condition) and summarised by its median and equal-tailed interval over the
    draws where it is defined.

    Parameters
    ----------
    votes : DataFrame
        Vote table (format ``votes.csv``).
    conditions : DataFrame
        Condition table (format ``conditions.csv``).
    anchor : str
        Codec that BD-rates are measured against.
    seed : int
        Seed of the sampler (or of the Laplace draws); the same seed gives the same
        result bit for bit.
    draws, tune, chains : int
        Sampler settings (see :func:`analysis.model.fit_model`); with ``fast``, the
        Laplace approximation gives ``draws * chains`` draws.
    priors : BTPriors, optional
        Prior scales; ``BTPriors()`` when omitted.
    model : ModelName or str
        ``bt``, ``bt-rater`` (default) or ``bt-image``.
    ties : TieModel or str
        ``davidson`` (default) or ``half``.
    position_bias : bool or None
        Include the left/right term; None decides from the data (see
        :func:`analysis.model.resolve_options`).
    fast : bool
        MAP plus Laplace approximation instead of NUTS (seconds instead of a minute on
        a 75,000-vote study; no sampler diagnostics).
    exclude_raters : sequence of str
        Raters whose votes are left out (a researcher's exclusions); recorded in the
        diagnostics.
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
        If a sampler setting or model name is out of range, or the data cannot identify
        the model (``bt-image`` with one image).
    analysis.laplace.LaplaceError
        With ``fast``, if the posterior is not locally Gaussian at its mode.
    """
    started = time.perf_counter()
    priors = BTPriors() if priors is None else priors
    conditions = validate_conditions(conditions, source=conditions_source)
    votes = validate_votes(
        votes, conditions, source=votes_source, conditions_source=conditions_source
    )
    check_anchor(conditions, anchor, source=conditions_source)
    excluded = sorted(set(exclude_raters))
    n_before = len(votes)
    votes = votes.loc[~votes["rater"].isin(excluded)]
    if votes.empty:
        raise InputError(votes_source, None, "no votes left after the excluded raters")

    data = count_votes(votes, conditions)
    options = resolve_options(data, model=model, ties=ties, position_bias=position_bias)
    points = condition_points(conditions, data.conditions)
    if fast:
        # Imported here: the Laplace path compiles with PyTensor's C backend only.
        from analysis.laplace import fit_laplace

        laplace = fit_laplace(
            data, options=options, priors=priors, draws=draws * chains, random_seed=seed
        )
        idata = laplace.idata
        diagnostics: dict[str, Any] = _laplace_diagnostics(laplace.converged)
    else:
        pm_model = build_model(data, options=options, priors=priors)
        idata = fit_model(pm_model, random_seed=seed, draws=draws, tune=tune, chains=chains)
        diagnostics = sampling_diagnostics(idata, _checked_variables(idata))
    elo_draws = _stacked_draws(idata, data.conditions)

    elo = elo_summary(elo_draws, points)
    bd_table, unusable = bd_rate_posterior(elo_draws, points, anchor=anchor)
    matrix = bd_rate_matrix(elo_draws, points)
    savings = savings_posterior(elo_draws, points, anchor=anchor)
    curves = curve_table(elo_draws, points, conditions, idata=idata, data=data)
    raters = rater_table(votes, data, idata=idata, options=options)
    per_condition, metric_table = metric_correlations(conditions, elo)

    diagnostics.update(_data_summary(votes, conditions, data))
    diagnostics.update(
        {
            "anchor": anchor,
            "anchoring": "Elo is relative to the mean of all conditions, which is 0",
            "interval_prob": INTERVAL_PROB,
            "model": _model_description(options),
            "model_name": str(options.model),
            "ties": str(options.ties),
            "davidson_ties": options.davidson,
            "position_bias": options.position_bias,
            "tie_credit": TIE_CREDIT,
            "priors": asdict(priors),
            "sampler": "laplace" if fast else "nutpie",
            "seed": seed,
            "excluded_raters": excluded,
            "n_votes_of_excluded_raters": n_before - len(votes),
            "draws": draws,
            "tune": 0 if fast else tune,
            "chains": chains,
            "bd_rate_unusable": unusable,
            "parameters": _parameter_summary(idata),
            "raters_excluded_suggested": int(raters["exclude"].sum()),
            "sampling_seconds": None if fast else _sampling_seconds(idata),
            "seconds": round(time.perf_counter() - started, 3),
            "versions": library_versions(),
        }
    )
    return FitResult(
        elo=elo,
        bd_rate=bd_table,
        diagnostics=diagnostics,
        idata=idata,
        curves=curves,
        savings=savings,
        bd_rate_matrix=matrix,
        raters=raters,
        metrics=metric_table,
        condition_metrics=per_condition,
    )


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
        overlap = _overlap_draws(
            elo_draws[draws.usable][:, columns[anchor]], elo_draws[draws.usable][:, columns[codec]]
        )
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
                "overlap": float(np.median(overlap)) if overlap.size else float("nan"),
                "unusable_share": record["share"],
            }
        )
    columns_out = [*BD_RATE_COLUMNS, *BD_RATE_EXTRA_COLUMNS]
    table = pd.DataFrame(rows, columns=columns_out)
    table = table.astype({name: "float64" for name in columns_out[2:]})
    return table, unusable


def bd_rate_matrix(
    elo_draws: npt.NDArray[np.float64], points: pd.DataFrame, *, interval: float = INTERVAL_PROB
) -> pd.DataFrame:
    """BD-rates of every codec against every other codec, over posterior draws.

    Parameters
    ----------
    elo_draws : ndarray, shape (n_draws, n_conditions)
    points : DataFrame
        From :func:`condition_points`.
    interval : float
        Probability mass of the intervals.

    Returns
    -------
    DataFrame
        Columns :data:`analysis.types.BD_RATE_MATRIX_COLUMNS`; one row per ordered pair
        (codec, anchor) of distinct codecs, anchors in order of appearance.

    Raises
    ------
    ValueError
        If the shapes disagree.
    """
    tables = [
        bd_rate_posterior(elo_draws, points, anchor=anchor, interval=interval)[0]
        for anchor in pd.unique(points["codec"])
    ]
    tables = [table for table in tables if not table.empty]
    if not tables:
        return pd.DataFrame(columns=list(BD_RATE_MATRIX_COLUMNS))
    return pd.concat(tables, ignore_index=True)[list(BD_RATE_MATRIX_COLUMNS)]


def savings_posterior(
    elo_draws: npt.NDArray[np.float64],
    points: pd.DataFrame,
    *,
    anchor: str,
    anchor_bpp: npt.ArrayLike | None = None,
    linear: bool = False,
    interval: float = INTERVAL_PROB,
) -> pd.DataFrame:
    """The savings curve: each codec's rate over the anchor's at equal Elo.

    For every anchor rate R and draw: the anchor's Elo at R, then the codec's rate at
    that Elo, both read off curves of ln(bpp) against Elo (PCHIP, or straight lines).
    A ratio of 0.72 means 28% fewer bits than the anchor at the anchor's quality at R.

    Parameters
    ----------
    elo_draws : ndarray, shape (n_draws, n_conditions)
    points : DataFrame
        From :func:`condition_points`.
    anchor : str
        Anchor codec.
    anchor_bpp : array_like, optional
        Anchor rates; by default :data:`SAVINGS_POINTS` rates evenly spaced in log over
        the anchor's range.
    linear : bool
        Straight-line interpolation (as Google's jpegli report).
    interval : float
        Probability mass of the band.

    Returns
    -------
    DataFrame
        Columns :data:`analysis.types.SAVINGS_COLUMNS`, per codec and anchor rate;
        ``elo`` is the anchor's posterior median Elo there. Ratios are NaN where no draw
        allows one (``usable_share`` 0).

    Raises
    ------
    ValueError
        If the anchor is not among the codecs or the shapes disagree.
    """
    codecs = list(pd.unique(points["codec"]))
    if anchor not in codecs:
        raise ValueError(f"anchor codec '{anchor}' is not among the codecs {codecs}")
    lo_q, hi_q = _tail_quantiles(interval)
    bpp = points["bpp"].to_numpy(dtype=np.float64)
    is_anchor = points["codec"].to_numpy() == anchor
    if anchor_bpp is None:
        grid = np.geomspace(bpp[is_anchor].min(), bpp[is_anchor].max(), SAVINGS_POINTS)
    else:
        grid = np.asarray(anchor_bpp, dtype=np.float64).ravel()
    rows: list[dict[str, Any]] = []
    for codec in codecs:
        if codec == anchor:
            continue
        is_codec = points["codec"].to_numpy() == codec
        ratio, quality = rate_ratio_draws(
            bpp[is_anchor],
            elo_draws[:, is_anchor],
            bpp[is_codec],
            elo_draws[:, is_codec],
            grid,
            linear=linear,
        )
        for j, rate in enumerate(grid):
            usable = ratio[:, j][np.isfinite(ratio[:, j])]
            elo_there = quality[:, j][np.isfinite(quality[:, j])]
            rows.append(
                {
                    "codec": codec,
                    "anchor": anchor,
                    "anchor_bpp": rate,
                    "elo": float(np.median(elo_there)) if elo_there.size else float("nan"),
                    "rate_ratio": float(np.median(usable)) if usable.size else float("nan"),
                    "rate_ratio_lo": float(np.quantile(usable, lo_q)) if usable.size else np.nan,
                    "rate_ratio_hi": float(np.quantile(usable, hi_q)) if usable.size else np.nan,
                    "usable_share": usable.size / ratio.shape[0],
                }
            )
    return pd.DataFrame(rows, columns=list(SAVINGS_COLUMNS))


def curve_table(
    elo_draws: npt.NDArray[np.float64],
    points: pd.DataFrame,
    conditions: pd.DataFrame,
    *,
    idata: DataTree | None = None,
    data: VoteData | None = None,
    interval: float = INTERVAL_PROB,
) -> pd.DataFrame:
    """Elo against bpp per codec: over mean bpp, and per image where the model allows.

    The rows with an empty ``image`` are the curve of :func:`elo_summary`. With
    ``bt-image`` (the posterior has per-image scales), every image gets its own curve:
    the condition's bpp on that image and the Elo scaled by the image's scale; other
    models pool Elo over images and give no per-image curve.

    Parameters
    ----------
    elo_draws : ndarray, shape (n_draws, n_conditions)
    points : DataFrame
        From :func:`condition_points`.
    conditions : DataFrame
        The validated condition table (per-image bpp).
    idata : DataTree, optional
        The posterior, for per-image scales.
    data : VoteData, optional
        The counted votes (image labels of the scales).
    interval : float
        Probability mass of the bands.

    Returns
    -------
    DataFrame
        Columns :data:`analysis.types.CURVE_COLUMNS`.
    """
    lo_q, hi_q = _tail_quantiles(interval)
    pooled = elo_summary(elo_draws, points, interval=interval).assign(image="")
    tables = [pooled]
    if idata is not None and data is not None and IMAGE_SCALE_VAR in idata.posterior:
        scale = np.exp(
            np.asarray(idata.posterior[IMAGE_SCALE_VAR].values, dtype=np.float64).reshape(
                -1, len(data.images)
            )
        )
        bpp_of = conditions.set_index(["condition", "image"])["bpp"]
        labels = points["condition"].to_numpy()
        for i, image in enumerate(data.images):
            scaled = elo_draws * scale[:, i : i + 1]
            keys = list(zip(labels, [image] * len(labels), strict=True))
            present = np.array([key in bpp_of.index for key in keys])
            if not present.any():
                continue
            tables.append(
                pd.DataFrame(
                    {
                        "codec": points["codec"].to_numpy()[present],
                        "condition": labels[present],
                        "image": image,
                        "bpp": [
                            bpp_of.loc[key] for key, ok in zip(keys, present, strict=True) if ok
                        ],
                        "elo": np.median(scaled[:, present], axis=0),
                        "elo_lo": np.quantile(scaled[:, present], lo_q, axis=0),
                        "elo_hi": np.quantile(scaled[:, present], hi_q, axis=0),
                    }
                )
            )
    return pd.concat(tables, ignore_index=True)[list(CURVE_COLUMNS)]


def metric_correlations(
    conditions: pd.DataFrame, elo: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Objective metrics of the condition table beside human Elo, and their rank agreement.

    Every numeric column of the condition table beyond ``condition, codec, image, bpp``
    is taken as an objective metric (PSNR, SSIM, Butteraugli, ...), averaged over each
    condition's images.

    Parameters
    ----------
    conditions : DataFrame
        The validated condition table.
    elo : DataFrame
        From :func:`elo_summary`.

    Returns
    -------
    per_condition : DataFrame
        ``condition, codec, bpp, elo`` and one column per metric.
    correlations : DataFrame
        Columns :data:`analysis.types.METRIC_COLUMNS`: Spearman's and Kendall's rank
        correlation of each metric with the posterior median Elo over the conditions
        (negative for a metric where lower is better).
    """
    extra = [name for name in conditions.columns if name not in CONDITION_COLUMNS]
    metrics: list[str] = []
    numeric: dict[str, pd.Series] = {}
    for name in extra:
        values = pd.to_numeric(conditions[name], errors="coerce")
        if values.notna().any():
            metrics.append(str(name))
            numeric[str(name)] = values
    table = elo[["condition", "codec", "bpp", "elo"]].copy()
    rows = []
    for name in metrics:
        means = numeric[name].groupby(conditions["condition"].to_numpy()).mean()
        table[name] = means.reindex(table["condition"]).to_numpy()
        both = table[["elo", name]].dropna()
        rows.append(
            {
                "metric": name,
                "n_conditions": len(both),
                "spearman": float(spearmanr(both["elo"], both[name]).statistic)
                if len(both) > 2
                else float("nan"),
                "kendall": float(kendalltau(both["elo"], both[name]).statistic)
                if len(both) > 2
                else float("nan"),
            }
        )
    return table, pd.DataFrame(rows, columns=list(METRIC_COLUMNS))


def write_outputs(
    result: FitResult, out_dir: str | Path, *, title: str = DEFAULT_TITLE
) -> dict[str, Path]:
    """Write the output files of :data:`OUTPUT_FILES` (formats in docs/formats.md).

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
        The keys of :data:`OUTPUT_FILES`, in its order (``elo``, ``bd_rate``,
        ``diagnostics``, ``report`` first).

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
    tables = {
        "elo": result.elo,
        "bd_rate": result.bd_rate,
        "curves": result.curves,
        "savings": result.savings,
        "bd_rate_matrix": result.bd_rate_matrix,
        "raters": result.raters,
        "metrics": result.metrics,
    }
    try:
        for key, table in tables.items():
            table.to_csv(
                staging / OUTPUT_FILES[key],
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
        write_posterior(result.idata, staging / OUTPUT_FILES["posterior"])
        if out.exists():
            for name in OUTPUT_FILES.values():
                os.replace(staging / name, out / name)
        else:
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {key: out / name for key, name in OUTPUT_FILES.items()}


def write_posterior(idata: DataTree, path: str | Path) -> None:
    """Write the posterior (and sampler statistics) as NetCDF-4.

    Attributes that NetCDF cannot hold (nested structures) are written as text.

    Parameters
    ----------
    idata : DataTree
        A fit's ``idata``.
    path : str or Path
        The file.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    groups = {
        name: idata[name].to_dataset() for name in ("posterior", "sample_stats") if name in idata
    }
    cleaned = {}
    for name, dataset in groups.items():
        dataset = dataset.copy()
        dataset.attrs = {key: _netcdf_attr(value) for key, value in dataset.attrs.items()}
        for var in dataset.variables.values():
            var.attrs = {key: _netcdf_attr(value) for key, value in var.attrs.items()}
        cleaned[name] = dataset
    DataTree.from_dict(cleaned).to_netcdf(path, engine=NETCDF_ENGINE)


def _netcdf_attr(value: Any) -> Any:
    if isinstance(value, str | int | float | np.integer | np.floating):
        return value
    if isinstance(value, bool | np.bool_):
        return int(value)
    return str(value)


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


def _data_summary(votes: pd.DataFrame, conditions: pd.DataFrame, data: VoteData) -> dict[str, Any]:
    counted = votes.loc[~votes["golden"].to_numpy()]
    voted = np.zeros(len(data.conditions), dtype=bool)
    voted[data.a_idx] = True
    voted[data.b_idx] = True
    n = len(data.conditions)
    graph = coo_array((np.ones(data.n_votes), (data.a_idx, data.b_idx)), shape=(n, n))
    n_components, _ = connected_components(graph, directed=False)
    pairs = np.unique(data.a_idx.astype(np.int64) * n + data.b_idx)
    return {
        "n_votes": data.n_votes,
        "n_votes_total": len(votes),
        "n_golden_excluded": int(votes["golden"].sum()),
        "n_golden_wrong": int(data.golden_wrong.sum()),
        "n_ties": data.n_ties,
        "n_pairs": int(pairs.size),
        "n_raters": int(counted["rater"].nunique()),
        "n_images": int(conditions["image"].nunique()),
        "n_conditions": n,
        "n_codecs": int(conditions["codec"].nunique()),
        "conditions_without_votes": [
            label for label, seen in zip(data.conditions, voted, strict=True) if not seen
        ],
        "comparison_graph_components": int(n_components),
    }


def _overlap_draws(
    anchor: npt.NDArray[np.float64], test: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per draw, the intersection over the union of the two Elo ranges."""
    if anchor.shape[0] == 0:
        return np.empty(0)
    lo = np.maximum(anchor.min(axis=1), test.min(axis=1))
    hi = np.minimum(anchor.max(axis=1), test.max(axis=1))
    union = np.maximum(anchor.max(axis=1), test.max(axis=1)) - np.minimum(
        anchor.min(axis=1), test.min(axis=1)
    )
    return np.clip(hi - lo, 0.0, None) / union


def _checked_variables(idata: DataTree) -> list[str]:
    """Posterior variables whose convergence is checked: every reported one.

    ``elo_damped``, the scores times (1 - lapse) that ``bt-rater`` samples, is left
    out: it is a reparametrisation of ``elo`` (checked), whose slowest direction, the
    common scale it shares with the lapse, cancels in ``elo``.
    """
    return [str(name) for name in idata.posterior.data_vars if name != DAMPED_ELO_VAR]


def _laplace_diagnostics(converged: bool) -> dict[str, Any]:
    problems = [] if converged else ["the optimiser did not reach the posterior mode"]
    return {
        "converged": converged,
        "convergence_problems": problems,
        "r_hat_max": None,
        "ess_bulk_min": None,
        "ess_tail_min": None,
        "divergences": 0,
        "thresholds": asdict(ConvergenceThresholds()),
    }


def _model_description(options: ModelOptions) -> str:
    base = {
        ModelName.BT: "Bradley-Terry on the Elo scale, one score per condition",
        ModelName.BT_RATER: (
            "Bradley-Terry on the Elo scale with rater lapses (attentive, half-attentive "
            "and random raters)"
        ),
        ModelName.BT_IMAGE: (
            "Bradley-Terry on the Elo scale with a per-image scale of the Elo differences"
        ),
    }[options.model]
    ties = "Davidson ties" if options.davidson else "ties as half wins"
    side = "left/right bias" if options.position_bias else "no left/right term"
    return f"{base}; {ties}; {side}"


def _parameter_summary(idata: DataTree) -> dict[str, Any]:
    """Posterior median and 95% interval of the scalar and short vector parameters."""
    summary: dict[str, Any] = {}
    lo_q, hi_q = _tail_quantiles(INTERVAL_PROB)
    for name, values in idata.posterior.data_vars.items():
        if name in (ELO_VAR, IMAGE_SCALE_VAR):
            continue
        array = np.asarray(values.values, dtype=np.float64)
        flat = array.reshape(array.shape[0] * array.shape[1], -1)
        if flat.shape[1] > MAX_SUMMARISED_LENGTH:
            continue
        entry = {
            "median": np.median(flat, axis=0).tolist(),
            "lo": np.quantile(flat, lo_q, axis=0).tolist(),
            "hi": np.quantile(flat, hi_q, axis=0).tolist(),
        }
        if flat.shape[1] == 1:
            entry = {key: value[0] for key, value in entry.items()}
        summary[str(name)] = entry
    return summary


def _sampling_seconds(idata: DataTree) -> float | None:
    value = idata.posterior.attrs.get("sampling_time")
    return round(float(value), 3) if value is not None else None


def _tail_quantiles(interval: float) -> tuple[float, float]:
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    tail = (1.0 - interval) / 2.0
    return tail, 1.0 - tail
