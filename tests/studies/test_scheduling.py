"""Balanced random pairs: same image, no repeats for a rater, conditions equally often."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from studies.scheduling import (
    IssuedCounts,
    PairKey,
    choose_balanced_pair,
    choose_crop,
    choose_pair_on_image,
    pair_key,
)

IMAGES = [1, 2, 3]
CONDITIONS = [10, 11, 12, 13, 14, 15]


def _simulate(
    n_raters: int, trials_each: int, seed: int = 0
) -> tuple[dict[PairKey, int], list[list[PairKey]], Counter[str]]:
    rng = random.Random(seed)
    issued: dict[PairKey, int] = {}
    per_rater: list[list[PairKey]] = []
    sides: Counter[str] = Counter()
    for _ in range(n_raters):
        seen: set[PairKey] = set()
        mine: list[PairKey] = []
        for _ in range(trials_each):
            choice = choose_balanced_pair(
                image_ids=IMAGES,
                condition_ids=CONDITIONS,
                issued=IssuedCounts(pairs=dict(issued)),
                seen_by_rater=seen,
                rng=rng,
            )
            assert choice is not None
            key = pair_key(choice.image_id, choice.left_condition_id, choice.right_condition_id)
            sides["low-left" if choice.left_condition_id == key[1] else "low-right"] += 1
            issued[key] = issued.get(key, 0) + 1
            seen.add(key)
            mine.append(key)
        per_rater.append(mine)
    return issued, per_rater, sides


def test_a_rater_never_sees_the_same_pair_twice() -> None:
    _, per_rater, _ = _simulate(n_raters=5, trials_each=40)
    for pairs in per_rater:
        assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize("seed", range(5))
def test_images_and_conditions_are_used_equally_often(seed: int) -> None:
    issued, _, _ = _simulate(n_raters=10, trials_each=27, seed=seed)  # 90 trials per image
    per_image = IssuedCounts(pairs=issued).per_image()
    assert set(per_image.values()) == {90}
    appearances = IssuedCounts(pairs=issued).appearances()
    for image in IMAGES:
        counts = [appearances[(image, c)] for c in CONDITIONS]
        # 90 trials x 2 slots / 6 conditions = 30 each. A rater's earlier pairs
        # can block the ideal pair, so the greedy rule guarantees a spread of 2.
        assert sum(counts) == 180
        assert max(counts) - min(counts) <= 2, counts


def test_sides_are_randomised() -> None:
    _, _, sides = _simulate(n_raters=10, trials_each=30, seed=3)
    total = sides["low-left"] + sides["low-right"]
    # Binomial(300, 0.5): 3.5 standard deviations either side.
    assert abs(sides["low-left"] - total / 2) < 3.5 * (total * 0.25) ** 0.5


def test_a_rater_who_has_seen_every_pair_gets_none() -> None:
    every = {pair_key(i, a, b) for i in IMAGES for a, b in itertools.combinations(CONDITIONS, 2)}
    choice = choose_balanced_pair(
        image_ids=IMAGES,
        condition_ids=CONDITIONS,
        issued=IssuedCounts(pairs={}),
        seen_by_rater=every,
        rng=random.Random(1),
    )
    assert choice is None


def test_the_same_seed_gives_the_same_schedule() -> None:
    first, _, _ = _simulate(n_raters=3, trials_each=10, seed=42)
    second, _, _ = _simulate(n_raters=3, trials_each=10, seed=42)
    assert first == second


def test_crops_stay_inside_the_image_and_keep_small_images_whole() -> None:
    rng = random.Random(0)
    for _ in range(200):
        x, y, w, h = choose_crop(width=700, height=500, crop_size=384, rng=rng)
        assert (w, h) == (384, 384)
        assert 0 <= x <= 700 - 384 and 0 <= y <= 500 - 384
    assert choose_crop(width=300, height=200, crop_size=384, rng=rng) == (0, 0, 300, 200)


def _lightest_pairs_by_brute_force(
    image_id: int,
    conditions: list[int],
    issued: dict[PairKey, int],
    seen: set[PairKey],
) -> list[tuple[int, int]]:
    """The rule of docs/rating.md written out pair by pair: the unseen pairs of the
    image with the lowest (more frequent condition's count, both counts, pair count)."""
    appearances: Counter[int] = Counter()
    for (image, low, high), n in issued.items():
        if image == image_id:
            appearances[low] += n
            appearances[high] += n
    loads = {
        (a, b): (
            max(appearances[a], appearances[b]),
            appearances[a] + appearances[b],
            issued.get((image_id, a, b), 0),
        )
        for a, b in itertools.combinations(sorted(conditions), 2)
        if (image_id, a, b) not in seen
    }
    lightest = min(loads.values())
    return [pair for pair, load in loads.items() if load == lightest]


@pytest.mark.parametrize("seed", range(30))
def test_the_chosen_pair_is_one_the_rule_allows_and_draws_as_a_list_would(seed: int) -> None:
    data = random.Random(seed)
    conditions = data.sample(range(100, 160), data.randrange(3, 25))
    images = [1, 2]
    all_pairs = [
        pair_key(i, a, b) for i in images for a, b in itertools.combinations(conditions, 2)
    ]
    issued = {key: data.randrange(0, 4) for key in data.sample(all_pairs, len(all_pairs) // 2)}
    seen = set(data.sample(all_pairs, len(all_pairs) // 3))
    if all(key in seen for key in all_pairs if key[0] == 1):
        seen.discard(next(key for key in all_pairs if key[0] == 1))
    allowed = _lightest_pairs_by_brute_force(1, conditions, issued, seen)
    for draw in range(5):
        rng = random.Random(draw)
        choice = choose_pair_on_image(
            image_id=1,
            condition_ids=conditions,
            issued=IssuedCounts(pairs=issued),
            seen_by_rater=seen,
            rng=rng,
        )
        pair = tuple(sorted((choice.left_condition_id, choice.right_condition_id)))
        # The same draw as random.choice over the allowed pairs in combinations order.
        assert pair == random.Random(draw).choice(allowed)
