"""The adaptive staircase of the compression-artifact test.

Levels run from 0 (the most severe artifacts, lowest bitrate) upwards to ever
subtler ones. A transformed 2-down/1-up rule (Levitt 1971): after two correct
answers in a row the next item is one level subtler, after a wrong answer one
level more severe. It converges on the level answered correctly 70.7% of the
time. The test ends after ``max_items`` items, or earlier once at least
``min_items`` were shown and ``reversals_to_stop`` reversals happened; the
threshold is the mean level at the last ``reversals_averaged`` reversals
(fewer if there were fewer; the last level shown if there was none).

Plain functions of plain data: the state is replayed from the answers, so the
database only stores what was shown and answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Where the staircase of a 2-down/1-up rule converges (Levitt 1971).
TARGET_PROPORTION = 2**-0.5


@dataclass(frozen=True)
class StaircaseRules:
    n_levels: int
    start_level: int = 2
    min_items: int = 12
    max_items: int = 30
    reversals_to_stop: int = 6
    reversals_averaged: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.start_level < self.n_levels:
            raise ValueError(f"start_level {self.start_level} outside 0..{self.n_levels - 1}")
        if not 0 < self.min_items <= self.max_items:
            raise ValueError("need 0 < min_items <= max_items")


@dataclass(frozen=True)
class StaircaseState:
    next_level: int | None  # None: the test is over
    reversals: tuple[int, ...]  # levels at which the direction changed
    items: int

    @property
    def finished(self) -> bool:
        return self.next_level is None


def replay(rules: StaircaseRules, answers: Sequence[tuple[int, bool]]) -> StaircaseState:
    """The staircase after these (level shown, answered correctly) items.

    Raises
    ------
    ValueError
        If a level shown is not the one the rule asked for.
    """
    level = rules.start_level
    streak = 0
    direction = 0  # +1 going subtler, -1 going more severe
    reversals: list[int] = []
    for index, (shown, correct) in enumerate(answers):
        if shown != level:
            raise ValueError(f"item {index} was shown at level {shown}, the rule asked for {level}")
        step = 0
        if correct:
            streak += 1
            if streak == 2:
                step, streak = +1, 0
        else:
            step, streak = -1, 0
        if step:
            if direction and step != direction:
                reversals.append(level)
            direction = step
            level = min(max(level + step, 0), rules.n_levels - 1)
    items = len(answers)
    done = items >= rules.max_items or (
        items >= rules.min_items and len(reversals) >= rules.reversals_to_stop
    )
    return StaircaseState(
        next_level=None if done else level, reversals=tuple(reversals), items=items
    )


def threshold(rules: StaircaseRules, answers: Sequence[tuple[int, bool]]) -> float:
    """The estimated threshold level (see the module docstring).

    Raises
    ------
    ValueError
        If no item was answered.
    """
    if not answers:
        raise ValueError("no items answered")
    state = replay(rules, answers)
    if state.reversals:
        last = state.reversals[-rules.reversals_averaged :]
        return sum(last) / len(last)
    return float(answers[-1][0])
