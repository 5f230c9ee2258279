"""The simulated observer that every simulation and rehearsal shares."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.simulate import observe

N = 200_000


@pytest.mark.parametrize(("difference", "lapse"), [(0.0, 0.0), (200.0, 0.0), (-150.0, 0.3)])
def test_answers_follow_the_elo_formula_mixed_with_random_answers(
    difference: float, lapse: float
) -> None:
    answers = observe(np.full(N, difference), lapse, rng=np.random.default_rng(1))
    # Elo's definition, written out: P(a beats b) = 1 / (1 + 10^(-d/400)).
    attentive = 1.0 / (1.0 + 10.0 ** (-difference / 400.0))
    expected = lapse / 2 + (1 - lapse) * attentive
    share = np.mean(answers == "a")
    assert share == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / N))
    assert set(np.unique(answers)) <= {"a", "b"}


def test_davidson_ties_take_their_share() -> None:
    nu = 0.5
    answers = observe(np.zeros(N), 0.0, tie_nu=nu, rng=np.random.default_rng(2))
    # Davidson at equal quality: P(tie) = nu / (2 + nu).
    expected = nu / (2 + nu)
    assert np.mean(answers == "tie") == pytest.approx(expected, abs=0.005)
    assert np.mean(answers == "a") == pytest.approx((1 - expected) / 2, abs=0.005)


def test_certain_differences_stay_finite_and_random_answers_still_err() -> None:
    answers = observe(np.full(N, 1e9), 0.2, rng=np.random.default_rng(3))
    # Only the random answers (20%, half of them "b") go against a certain difference.
    assert np.mean(answers == "b") == pytest.approx(0.1, abs=0.005)
