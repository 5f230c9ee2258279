"""The count-form likelihoods equal per-vote likelihoods written out independently.

Each model aggregates votes into counts (per ordered pair, per image and pair, per rater
and pair); these tests evaluate the model's ``votes`` potential at random parameter
values and compare it with a per-vote sum computed here from the definitions in
docs/analysis.md, without the package's helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pymc.pytensorf import compile as pymc_compile
from scipy.special import logsumexp

from analysis.io import validate_conditions, validate_votes
from analysis.model import (
    ModelName,
    TieModel,
    build_model,
    count_votes,
    rater_cells,
    resolve_options,
    swapped_share,
)
from analysis.simulate import SimulationDesign, simulate_study
from analysis.types import OUTCOME_A, OUTCOME_B, OUTCOME_TIE


def compile_graph(inputs, output):
    """A function of the model's free variables (some may not enter the potential)."""
    return pymc_compile(inputs, output, on_unused_input="ignore")


#: Agreement of a potential with the per-vote sum (log density units).
ATOL_LOGLIK = 1e-8
SLOPE = math.log(10.0) / 400.0
#: A small study with ties, golden trials, several raters and images.
SMALL = SimulationDesign(n_votes=600, n_raters=12, n_rates=3, n_images=4, tie_nu=0.4)


@pytest.fixture(scope="module")
def small():
    study = simulate_study(SMALL, seed=5)
    conditions = validate_conditions(study.conditions)
    votes = validate_votes(study.votes, conditions)
    return votes, conditions, count_votes(votes, conditions)


def _per_vote(data, x: np.ndarray, log_nu: float, davidson: bool) -> np.ndarray:
    """ln P of each vote's outcome given its logit x, from the definitions."""
    outcome = data.outcome
    if davidson:
        total = np.exp(x / 2) + np.exp(-x / 2) + np.exp(log_nu)
        p = np.select(
            [outcome == OUTCOME_A, outcome == OUTCOME_B],
            [np.exp(x / 2) / total, np.exp(-x / 2) / total],
            np.exp(log_nu) / total,
        )
        return np.log(p)
    p_a = 1.0 / (1.0 + np.exp(-x))
    tie = outcome == OUTCOME_TIE
    return np.where(
        tie,
        0.5 * np.log(p_a) + 0.5 * np.log(1 - p_a),
        np.where(outcome == OUTCOME_A, np.log(p_a), np.log(1 - p_a)),
    )


@pytest.mark.parametrize("ties", ["davidson", "half"])
def test_bt_counts_give_the_per_vote_log_likelihood(small, ties: str) -> None:
    _, _, data = small
    options = resolve_options(data, model="bt", ties=ties, position_bias=True)
    model = build_model(data, options=options)
    rng = np.random.default_rng(1)
    elo = rng.normal(0, 200, len(data.conditions))
    elo -= elo.mean()
    bias, log_nu = 15.0, math.log(0.4)
    inputs = {"elo": elo, "position_bias": bias, "tie_log_nu": log_nu}
    names = [rv.name for rv in model.free_RVs]
    potential = compile_graph(model.free_RVs, model.potentials[0])(*[inputs[n] for n in names])
    x = SLOPE * (elo[data.a_idx] - elo[data.b_idx] + bias)
    expected = _per_vote(data, x, log_nu, options.davidson).sum()
    assert float(potential) == pytest.approx(expected, abs=ATOL_LOGLIK)


def test_bt_image_counts_give_the_per_vote_log_likelihood(small) -> None:
    _, _, data = small
    options = resolve_options(data, model="bt-image", position_bias=True)
    model = build_model(data, options=options)
    rng = np.random.default_rng(2)
    elo = rng.normal(0, 200, len(data.conditions))
    elo -= elo.mean()
    log_scale = rng.normal(0, 0.3, len(data.images))
    log_scale -= log_scale.mean()
    inputs = {
        "elo": elo,
        "position_bias": -10.0,
        "tie_log_nu": -1.0,
        "image_scale_sigma": 0.3,
        "image_log_scale": log_scale,
    }
    names = [rv.name for rv in model.free_RVs]
    potential = compile_graph(model.free_RVs, model.potentials[0])(*[inputs[n] for n in names])
    k = np.exp(log_scale)[data.image_idx]
    x = SLOPE * (k * (elo[data.a_idx] - elo[data.b_idx]) - 10.0)
    expected = _per_vote(data, x, -1.0, options.davidson).sum()
    assert float(potential) == pytest.approx(expected, abs=ATOL_LOGLIK)


def test_bt_rater_marginalises_each_raters_type_over_their_own_votes(small) -> None:
    _, _, data = small
    options = resolve_options(data, model="bt-rater", position_bias=True)
    assert options.davidson  # the small study has ties: a random answer is 1/3 each
    model = build_model(data, options=options)
    rng = np.random.default_rng(3)
    elo = rng.normal(0, 200, len(data.conditions))
    elo -= elo.mean()
    q, share, bias, log_nu = 0.12, np.array([0.7, 0.2, 0.1]), 5.0, math.log(0.4)
    inputs = {
        "lapse": q,
        "elo_damped": elo * (1 - q),
        "position_bias": bias,
        "tie_log_nu": log_nu,
        "rater_type_share": share,
    }
    names = [rv.name for rv in model.free_RVs]
    potential = compile_graph(model.free_RVs, model.potentials[0])(*[inputs[n] for n in names])

    x = SLOPE * (elo[data.a_idx] - elo[data.b_idx] + bias)
    model_p = np.exp(_per_vote(data, x, log_nu, davidson=True))
    c = 1.0 / 3.0
    expected = 0.0
    for r in range(len(data.raters)):
        mine = data.rater_idx == r
        by_type = []
        for q_type, weight in zip((q, (1 + q) / 2, 1.0), share, strict=True):
            votes = np.log(q_type * c + (1 - q_type) * model_p[mine]).sum()
            golden = data.golden_correct[r] * np.log(1 - q_type * (1 - c)) + data.golden_wrong[
                r
            ] * np.log(q_type * (1 - c))
            by_type.append(np.log(weight) + votes + golden)
        expected += logsumexp(by_type)
    assert float(potential) == pytest.approx(expected, abs=1e-7)


def test_rater_cells_count_every_vote_once(small) -> None:
    _, _, data = small
    for davidson in (True, False):
        cells = rater_cells(data, davidson=davidson)
        assert cells.n.sum() == pytest.approx(data.n_votes)
        assert np.all(np.diff(cells.rater) >= 0)  # sorted by rater


def test_golden_answers_are_right_when_they_pick_the_reference(small) -> None:
    votes, _, data = small
    golden = votes[votes["golden"]]
    picked = np.where(golden["choice"] == "a", golden["condition_a"], golden["condition_b"])
    assert data.golden_correct.sum() == int((picked == "golden-reference").sum())
    assert data.golden_correct.sum() + data.golden_wrong.sum() == len(golden)


def test_an_explicit_golden_correct_column_wins_over_condition_names() -> None:
    conditions = validate_conditions(
        pd.DataFrame({"condition": ["x1", "x2"], "codec": "x", "image": "i", "bpp": [0.5, 1.0]})
    )
    votes = validate_votes(
        pd.DataFrame(
            {
                "rater": ["r1", "r1", "r2"],
                "image": "i",
                "condition_a": ["x1", "a-stimulus", "a-stimulus"],
                "condition_b": ["x2", "b-stimulus", "b-stimulus"],
                "choice": ["a", "b", "a"],
                "golden": [0, 1, 1],
                "golden_correct": ["", "0", "1"],
            }
        ),
        conditions,
    )
    data = count_votes(votes, conditions)
    assert data.raters == ("r1", "r2")
    assert data.golden_wrong.tolist() == [1, 0]
    assert data.golden_correct.tolist() == [0, 1]


def test_position_bias_is_included_only_when_sides_were_randomised(small) -> None:
    _, _, data = small
    assert swapped_share(data) > 0.9
    assert resolve_options(data).position_bias
    sorted_pairs = dataclass_replace_sorted(data)
    assert swapped_share(sorted_pairs) == 0.0
    assert not resolve_options(sorted_pairs).position_bias
    assert resolve_options(sorted_pairs, position_bias=True).position_bias
    assert resolve_options(data, ties=TieModel.HALF).davidson is False
    assert resolve_options(data, model="bt-image").model is ModelName.BT_IMAGE


def dataclass_replace_sorted(data):
    """The same votes with every pair listed in one order (as mucped23 does)."""
    import dataclasses

    low = np.minimum(data.a_idx, data.b_idx)
    high = np.maximum(data.a_idx, data.b_idx)
    return dataclasses.replace(data, a_idx=low, b_idx=high)
