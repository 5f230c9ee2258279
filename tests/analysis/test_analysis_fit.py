"""Fitting a simulated study recovers its known Elo scores and BD-rates; outputs are safe."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis.fit
from analysis.fit import (
    OUTPUT_FILES,
    FitResult,
    bd_rate_posterior,
    condition_points,
    write_outputs,
)
from analysis.types import BD_RATE_COLUMNS, ELO_COLUMNS

#: Conditions out of 16 whose 95% interval must cover the truth. At the nominal rate,
#: 13 or more are covered with probability 0.99.
MIN_COVERED = 13
#: Smallest acceptable correlation of posterior medians with the true scores.
MIN_CORRELATION = 0.98
#: Convergence limits asserted on the shared fit.
MAX_R_HAT = 1.01
MIN_ESS_BULK = 400
#: Tolerance of the sum-to-zero anchoring, in Elo points.
ATOL_ANCHORING = 1e-6
#: Exactness of BD-rates on log-linear curves, in percent points.
ATOL_EXACT = 1e-9


@pytest.mark.slow
def test_the_shared_fit_converges(fitted_study: FitResult) -> None:
    diagnostics = fitted_study.diagnostics
    assert diagnostics["r_hat_max"] <= MAX_R_HAT
    assert diagnostics["ess_bulk_min"] >= MIN_ESS_BULK
    assert diagnostics["divergences"] == 0
    assert diagnostics["converged"] is True
    assert diagnostics["convergence_problems"] == []


@pytest.mark.slow
def test_elo_intervals_cover_the_true_scores(fitted_study: FitResult, simulated_study) -> None:
    elo = fitted_study.elo.set_index("condition")
    truth = simulated_study.true_elo.loc[elo.index]
    covered = (elo["elo_lo"] <= truth) & (truth <= elo["elo_hi"])
    assert covered.sum() >= MIN_COVERED, elo.assign(truth=truth)
    assert np.corrcoef(elo["elo"], truth)[0, 1] >= MIN_CORRELATION


@pytest.mark.slow
def test_the_true_bd_rates_fall_inside_the_95_percent_intervals(
    fitted_study: FitResult, simulated_study
) -> None:
    bd = fitted_study.bd_rate.set_index("codec")
    assert sorted(bd.index) == sorted(simulated_study.true_bd_rate)
    for codec, truth in simulated_study.true_bd_rate.items():
        assert bd.loc[codec, "bd_rate_lo"] <= truth <= bd.loc[codec, "bd_rate_hi"], (codec, bd)
    assert (bd["anchor"] == simulated_study.anchor).all()


@pytest.mark.slow
def test_elo_is_anchored_to_the_mean_of_all_conditions(fitted_study: FitResult) -> None:
    draws = fitted_study.idata.posterior["elo"]
    np.testing.assert_allclose(draws.sum("condition").to_numpy(), 0.0, atol=ATOL_ANCHORING)


@pytest.mark.slow
def test_golden_votes_are_left_out_and_counted(fitted_study: FitResult, simulated_study) -> None:
    diagnostics = fitted_study.diagnostics
    assert diagnostics["n_golden_excluded"] == simulated_study.n_golden
    assert diagnostics["n_votes"] == len(simulated_study.votes) - simulated_study.n_golden
    assert diagnostics["n_votes_total"] == len(simulated_study.votes)


@pytest.mark.slow
def test_the_elo_table_has_one_row_per_condition_with_its_mean_bpp(
    fitted_study: FitResult, simulated_study
) -> None:
    elo = fitted_study.elo
    assert tuple(elo.columns) == ELO_COLUMNS
    assert tuple(fitted_study.bd_rate.columns)[: len(BD_RATE_COLUMNS)] == BD_RATE_COLUMNS
    mean_bpp = simulated_study.conditions.groupby("condition")["bpp"].mean()
    np.testing.assert_allclose(elo["bpp"], mean_bpp.loc[elo["condition"]].to_numpy())
    assert (elo["elo_lo"] < elo["elo"]).all() and (elo["elo"] < elo["elo_hi"]).all()


@pytest.mark.slow
def test_the_diagnostics_are_plain_json(fitted_study: FitResult) -> None:
    text = json.dumps(fitted_study.diagnostics, allow_nan=False)
    for key in ("r_hat_max", "ess_bulk_min", "divergences", "seconds", "n_votes", "seed"):
        assert key in json.loads(text)


# --- BD-rate over draws, with hand-made draws ---------------------------------------------


def _points() -> pd.DataFrame:
    conditions = pd.DataFrame(
        {
            "condition": ["a1", "a2", "a3", "x1", "x2", "x3", "y1"],
            "codec": ["anchor", "anchor", "anchor", "x", "x", "x", "y"],
            "image": "img",
            "bpp": [0.5, 1.0, 2.0, 0.25, 0.5, 1.0, 0.7],
        }
    )
    return condition_points(conditions, tuple(conditions["condition"]))


def test_bd_rate_over_draws_counts_unusable_draws_per_codec_and_why() -> None:
    # Elo = 100 ln(bpp / factor): codec x reaches the anchor's Elo with half the bits.
    anchor_elo = 100.0 * np.log([0.5, 1.0, 2.0])
    x_elo = 100.0 * np.log(np.array([0.25, 0.5, 1.0]) / 0.5)
    draws = np.array(
        [
            [*anchor_elo, *x_elo, 0.0],  # usable
            [*anchor_elo, x_elo[1], x_elo[0], x_elo[2], 0.0],  # x not increasing
            [*anchor_elo, *(x_elo + 1000.0), 0.0],  # no overlap
            [*(anchor_elo + 7.0), *(x_elo + 7.0), 0.0],  # usable (shifted together)
        ]
    )
    table, unusable = bd_rate_posterior(draws, _points(), anchor="anchor")

    x = table.set_index("codec").loc["x"]
    assert x["bd_rate"] == pytest.approx(-50.0, abs=ATOL_EXACT)
    assert x["bd_rate_lo"] == pytest.approx(-50.0, abs=ATOL_EXACT)
    assert unusable["x"] == {
        "share": 0.5,
        "n_draws": 4,
        "reasons": {"no_overlap": 1, "test_not_increasing": 1},
    }
    y = table.set_index("codec").loc["y"]
    assert np.isnan(y[["bd_rate", "bd_rate_lo", "bd_rate_hi"]].to_numpy(dtype=float)).all()
    assert unusable["y"]["share"] == 1.0
    assert unusable["y"]["reasons"] == {"too_few_points": 4}
    assert "fewer than two rate points" in unusable["y"]["note"]


# --- writing outputs ---------------------------------------------------------------------


@pytest.mark.slow
def test_outputs_leave_missing_bd_rates_empty_never_nan(
    fitted_study: FitResult, tmp_path: Path
) -> None:
    bd = fitted_study.bd_rate.copy()
    bd.loc[0, ["bd_rate", "bd_rate_lo", "bd_rate_hi"]] = np.nan
    result = dataclasses.replace(fitted_study, bd_rate=bd)
    paths = write_outputs(result, tmp_path / "out")

    assert set(paths) == set(OUTPUT_FILES)
    lines = paths["bd_rate"].read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(",".join(BD_RATE_COLUMNS) + ",")
    codec, anchor = str(bd.loc[0, "codec"]), str(bd.loc[0, "anchor"])
    assert lines[1].startswith(f"{codec},{anchor},,,,")
    assert "nan" not in paths["bd_rate"].read_text(encoding="utf-8").lower()
    assert paths["elo"].read_text(encoding="utf-8").splitlines()[0] == ",".join(ELO_COLUMNS)


@pytest.mark.slow
def test_a_failed_write_leaves_nothing_behind(
    fitted_study: FitResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(analysis.fit, "render_report", broken)
    with pytest.raises(RuntimeError, match="rendering failed"):
        write_outputs(fitted_study, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_writing_into_an_existing_directory_replaces_the_outputs_only(
    fitted_study: FitResult, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "elo.csv").write_text("stale\n", encoding="utf-8")
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")

    write_outputs(fitted_study, out)

    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES.values(), "notes.txt"])
    assert (out / "elo.csv").read_text(encoding="utf-8").startswith("condition,")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
