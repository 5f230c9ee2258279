"""The three models recover known truth from simulated studies (fast Laplace fits), the
rater table finds the raters that answer at random, and BD-rate intervals are calibrated
over a reduced set of simulated studies (the full run is bench/calibration.py).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from analysis.calibration import calibrate, calibration_summary
from analysis.fit import OUTPUT_FILES, FitResult, fit_study, write_outputs
from analysis.io import validate_conditions, validate_votes
from analysis.laplace import fit_laplace
from analysis.model import count_votes, resolve_options
from analysis.raters import rater_table
from analysis.simulate import SimulationDesign, simulate_study
from analysis.types import (
    CURVE_COLUMNS,
    METRIC_COLUMNS,
    RATER_COLUMNS,
    SAVINGS_COLUMNS,
)

#: A small PICO-like study: 6 codecs x 4 rates x 8 images.
SMALL = SimulationDesign(n_rates=4, n_images=8, n_votes=4000, n_raters=40)
#: Reduced calibration: studies, and the least coverage accepted over their 5 x N
#: intervals. At the nominal 95%, 30 intervals fall below 24 covered with probability
#: under 0.2%.
CALIBRATION_STUDIES = 6
MIN_CALIBRATION_COVERED = 24
SEED = 41


@pytest.fixture(scope="module")
def small_study():
    return simulate_study(SMALL, seed=SEED)


def _data(study):
    conditions = validate_conditions(study.conditions)
    votes = validate_votes(study.votes, conditions)
    return votes, count_votes(votes, conditions)


def test_bt_rater_finds_the_random_raters_and_the_lapse() -> None:
    design = SimulationDesign(
        n_rates=4, n_images=8, n_votes=4000, n_raters=40, rater_mix=(0.75, 0.1, 0.15)
    )
    small_study = simulate_study(design, seed=SEED)
    votes, data = _data(small_study)
    options = resolve_options(data, model="bt-rater")
    fit = fit_laplace(data, options=options, random_seed=1)
    assert fit.converged
    table = rater_table(votes, data, idata=fit.idata, options=options).set_index("rater")
    assert list(table.columns) == list(RATER_COLUMNS)[1:]
    truth = small_study.true_lapse.loc[table.index]
    random_raters = truth.index[truth == 1.0]
    assert len(random_raters) >= 1
    assert (table.loc[random_raters, "p_random"] > 0.5).all()
    assert (table.loc[random_raters, "exclude"] == 1).all()
    assert table.loc[random_raters, "reason"].str.contains("answers at random").all()
    good = truth.index[truth < 0.2]
    assert (table.loc[good, "p_random"] < 0.5).mean() > 0.95
    # Estimated random-answer probabilities follow the true ones.
    assert np.corrcoef(table["lapse"], truth)[0, 1] > 0.8


def test_davidson_ties_recover_the_tie_parameter() -> None:
    # Attentive raters only: the simulator's random answers are never ties, which would
    # dilute the tie rate for a model without lapses.
    design = SimulationDesign(
        n_rates=4,
        n_images=8,
        n_votes=4000,
        n_raters=40,
        tie_nu=0.5,
        rater_mix=(1.0, 0.0, 0.0),
        good_lapse=(1.0, 1e9),
    )
    study = simulate_study(design, seed=SEED)
    _, data = _data(study)
    assert data.n_ties > 0
    fit = fit_laplace(data, options=resolve_options(data, model="bt"), random_seed=1)
    log_nu = fit.idata.posterior["tie_log_nu"].to_numpy().ravel()
    lo, hi = np.quantile(log_nu, [0.005, 0.995])
    assert lo <= math.log(0.5) <= hi


def test_bt_image_recovers_the_per_image_scale(small_study) -> None:
    _, data = _data(small_study)
    fit = fit_laplace(data, options=resolve_options(data, model="bt-image"), random_seed=1)
    estimated = fit.idata.posterior["image_log_scale"].mean(("chain", "draw")).to_numpy()
    truth = np.log(small_study.image_scale.loc[list(data.images)].to_numpy())
    assert np.corrcoef(estimated, truth)[0, 1] > 0.7


def test_position_bias_is_estimated(small_study) -> None:
    _, data = _data(small_study)
    fit = fit_laplace(data, options=resolve_options(data, model="bt-rater"), random_seed=2)
    bias = fit.idata.posterior["position_bias"].to_numpy().ravel()
    lo, hi = np.quantile(bias, [0.005, 0.995])
    assert lo <= small_study.design.position_bias <= hi


def test_laplace_draws_are_reproducible(small_study) -> None:
    _, data = _data(small_study)
    options = resolve_options(data, model="bt")
    first = fit_laplace(data, options=options, random_seed=7, draws=50)
    again = fit_laplace(data, options=options, random_seed=7, draws=50)
    assert np.array_equal(first.idata.posterior["elo"], again.idata.posterior["elo"])


@pytest.mark.slow
def test_reduced_calibration_of_bd_rate_intervals() -> None:
    # The plain model and the Laplace approximation keep this within seconds; the full
    # calibration of the default model with NUTS is bench/calibration.py.
    records = calibrate(
        range(100, 100 + CALIBRATION_STUDIES),
        design=SMALL,
        fit_options={"model": "bt", "fast": True},
    )
    summary = calibration_summary(records)
    assert summary["n_intervals"] == 5 * CALIBRATION_STUDIES
    assert records["covered"].sum() >= MIN_CALIBRATION_COVERED, records
    assert abs(summary["bias"]) < summary["width"] / 4


@pytest.mark.slow
def test_fast_and_full_fits_agree_on_the_shared_study(
    fitted_study: FitResult, simulated_study
) -> None:
    fast = fit_study(
        simulated_study.votes, simulated_study.conditions, anchor="jpeg", seed=3, fast=True
    )
    assert fast.diagnostics["sampler"] == "laplace"
    full = fitted_study.bd_rate.set_index("codec")
    approx = fast.bd_rate.set_index("codec")
    for column in ("bd_rate", "bd_rate_lo", "bd_rate_hi"):
        np.testing.assert_allclose(approx[column], full[column], atol=2.5)


@pytest.mark.slow
def test_every_output_file_is_written_with_its_documented_columns(
    fitted_study: FitResult, tmp_path
) -> None:
    paths = write_outputs(fitted_study, tmp_path / "out")
    assert list(paths) == list(OUTPUT_FILES)
    for key, columns in (
        ("curves", CURVE_COLUMNS),
        ("savings", SAVINGS_COLUMNS),
        ("raters", RATER_COLUMNS),
        ("metrics", METRIC_COLUMNS),
    ):
        text = paths[key].read_text(encoding="utf-8")
        assert text.splitlines()[0] == ",".join(columns)
        assert "nan" not in text.lower()
    matrix = pd.read_csv(paths["bd_rate_matrix"])
    n_codecs = fitted_study.elo["codec"].nunique()
    assert len(matrix) == n_codecs * (n_codecs - 1)
    posterior = xr.open_datatree(paths["posterior"], engine="h5netcdf")
    np.testing.assert_array_equal(
        posterior["posterior"]["elo"].to_numpy(), fitted_study.idata.posterior["elo"].to_numpy()
    )
    savings = pd.read_csv(paths["savings"])
    assert set(savings["codec"]) == set(fitted_study.bd_rate["codec"])


def test_objective_metrics_are_ranked_against_human_elo(small_study) -> None:
    conditions = small_study.conditions.copy()
    rng = np.random.default_rng(0)
    true = small_study.true_elo
    conditions["good_metric"] = conditions["condition"].map(true) + rng.normal(
        0, 5, len(conditions)
    )
    conditions["bad_metric"] = rng.normal(0, 1, len(conditions))
    result = fit_study(
        small_study.votes, conditions, anchor=small_study.anchor, seed=1, model="bt", fast=True
    )
    spearman = result.metrics.set_index("metric")["spearman"].astype("float64")
    assert spearman.loc["good_metric"] > 0.95
    assert abs(spearman.loc["bad_metric"]) < 0.5
    assert "Objective metrics beside human Elo" in _report(result)


def _report(result: FitResult) -> str:
    from analysis.report import render_report

    return render_report(result, title="t")
