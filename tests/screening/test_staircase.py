"""The 2-down/1-up staircase: its rule, its stopping, and what it recovers."""

from __future__ import annotations

import numpy as np
import pytest

from screening.staircase import TARGET_PROPORTION, StaircaseRules, replay, threshold

RULES = StaircaseRules(n_levels=10, start_level=2, min_items=12, max_items=30)
# Simulated observers: over a population, the estimate's bias and mean
# absolute error (in levels) stay within these.
MAX_BIAS_LEVELS = 0.25
MAX_MEAN_ABS_ERROR_LEVELS = 1.0


def test_two_right_step_up_and_one_wrong_steps_down() -> None:
    answers: list[tuple[int, bool]] = []
    expected_next = [2, 2, 3, 3, 4, 3, 3]
    outcomes = [True, True, True, True, False, True, True]
    for outcome, level in zip(outcomes, expected_next, strict=True):
        state = replay(RULES, answers)
        assert state.next_level == level
        answers.append((level, outcome))
    assert replay(RULES, answers).next_level == 4
    assert replay(RULES, answers).reversals == (4, 3)


def test_a_level_other_than_the_rule_asked_for_is_refused() -> None:
    with pytest.raises(ValueError, match="rule asked for 2"):
        replay(RULES, [(5, True)])


def test_it_stops_at_the_maximum_number_of_items() -> None:
    answers: list[tuple[int, bool]] = []
    for _ in range(RULES.max_items):
        level = replay(RULES, answers).next_level
        assert level is not None
        answers.append((level, True))  # never wrong: no reversal, climbs to the top
    assert replay(RULES, answers).finished
    assert threshold(RULES, answers) == RULES.n_levels - 1


def test_it_stops_after_enough_reversals_once_the_minimum_is_shown() -> None:
    answers: list[tuple[int, bool]] = []
    pattern = [True, True, False]  # up, down, up, down, ...: a reversal almost every step
    while not (state := replay(RULES, answers)).finished:
        assert state.next_level is not None
        answers.append((state.next_level, pattern[len(answers) % 3]))
    assert len(answers) == RULES.min_items
    assert len(replay(RULES, answers).reversals) >= RULES.reversals_to_stop


def test_the_threshold_is_the_mean_of_the_last_four_reversals() -> None:
    answers = [(2, True), (2, True), (3, False), (2, True), (2, True), (3, True), (3, True)]
    answers += [(4, False), (3, True), (3, True)]
    state = replay(RULES, answers)
    assert state.reversals == (3, 2, 4, 3)
    assert threshold(RULES, answers) == pytest.approx((3 + 2 + 4 + 3) / 4)


def test_simulated_observers_thresholds_are_recovered() -> None:
    """Observers with a known psychometric function: the staircase finds its 70.7% point."""
    rng = np.random.default_rng(2026)
    slope, lapse = 0.7, 0.02
    errors = []
    for _ in range(300):
        midpoint = rng.uniform(2.0, 7.5)

        def p_correct(level: int, midpoint: float = midpoint) -> float:
            detect = 1 / (1 + np.exp((level - midpoint) / slope))
            return 0.5 + (0.5 - lapse) * detect

        # Level where p_correct = 2^-1/2, from the function's inverse.
        detect = (TARGET_PROPORTION - 0.5) / (0.5 - lapse)
        truth = midpoint + slope * np.log(1 / detect - 1)
        answers: list[tuple[int, bool]] = []
        while (level := replay(RULES, answers).next_level) is not None:
            answers.append((level, bool(rng.random() < p_correct(level))))
        errors.append(threshold(RULES, answers) - truth)
    errors_array = np.array(errors)
    assert abs(errors_array.mean()) <= MAX_BIAS_LEVELS
    assert np.abs(errors_array).mean() <= MAX_MEAN_ABS_ERROR_LEVELS
