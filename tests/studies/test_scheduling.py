"""Balanced random pairs: same image, no repeats for a rater, conditions equally often."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

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


def _random_case(seed: int, history: str) -> tuple[list[int], dict[PairKey, int], set[PairKey]]:
    """Conditions, the trials issued on images 1 and 2, and a third of the pairs seen
    (at least one pair of image 1 unseen).

    ``history``: "random" counts on half of 3 to 24 conditions' pairs (small ties);
    "matchings" 1 to 10 rounds in which every one of 40 to 80 conditions is shown once
    (large ties of pairs never issued); "every-pair" every pair issued once, then such
    rounds (large ties of pairs issued before).
    """
    data = random.Random(seed)
    small = history == "random"
    n_conditions = data.randrange(3, 25) if small else 2 * data.randrange(20, 40)
    conditions = data.sample(range(100, 400), n_conditions)
    all_pairs = [
        pair_key(i, a, b) for i in (1, 2) for a, b in itertools.combinations(conditions, 2)
    ]
    if small:
        issued = {key: data.randrange(0, 4) for key in data.sample(all_pairs, len(all_pairs) // 2)}
    else:
        issued = {key: int(history == "every-pair") for key in all_pairs}
        for image in (1, 2):
            for _ in range(data.randrange(1, 11)):
                for low, high in _matching(conditions, data):
                    issued[image, low, high] += 1
    seen = set(data.sample(all_pairs, len(all_pairs) // 3))
    if all(key in seen for key in all_pairs if key[0] == 1):
        seen.discard(next(key for key in all_pairs if key[0] == 1))
    return conditions, issued, seen


def _matching(conditions: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """A random perfect matching: every condition in exactly one pair."""
    order = rng.sample(conditions, len(conditions))
    return [(min(a, b), max(a, b)) for a, b in zip(order[::2], order[1::2], strict=True)]


@pytest.mark.parametrize("history", ["random", "matchings", "every-pair"])
@pytest.mark.parametrize("seed", range(12))
def test_the_chosen_pair_is_one_the_rule_allows(seed: int, history: str) -> None:
    conditions, issued, seen = _random_case(seed, history)
    allowed = _lightest_pairs_by_brute_force(1, conditions, issued, seen)
    for draw in range(5):
        choice = choose_pair_on_image(
            image_id=1,
            condition_ids=conditions,
            issued=IssuedCounts(pairs=issued),
            seen_by_rater=seen,
            rng=random.Random(draw),
        )
        assert choice.image_id == 1
        assert tuple(sorted((choice.left_condition_id, choice.right_condition_id))) in allowed


def _draw_counts(
    conditions: list[int], issued: dict[PairKey, int], seen: set[PairKey], draws: int
) -> Counter[tuple[int, int]]:
    chosen: Counter[tuple[int, int]] = Counter()
    rng = random.Random(7)
    counts = IssuedCounts(pairs=issued)
    for _ in range(draws):
        choice = choose_pair_on_image(
            image_id=1, condition_ids=conditions, issued=counts, seen_by_rater=seen, rng=rng
        )
        low, high = sorted((choice.left_condition_id, choice.right_condition_id))
        chosen[low, high] += 1
    return chosen


@pytest.mark.parametrize("every_pair_issued", [False, True], ids=["drawn", "all-counted"])
def test_ties_are_drawn_uniformly(every_pair_issued: bool) -> None:
    """16 conditions all shown equally often, a matching of 8 pairs issued once more
    than the rest: the 112 other pairs are the tie, each drawn as often as any other.
    Without earlier trials the tie's pairs were never issued (found by drawing);
    with every pair issued once before, none was (all the image's counts are read)."""
    conditions = list(range(20, 36))
    base = 1 if every_pair_issued else 0
    issued = {pair_key(1, a, b): base for a, b in itertools.combinations(conditions, 2)}
    matching = _matching(conditions, random.Random(3))
    for low, high in matching:
        issued[1, low, high] += 1
    ties = {pair for pair in itertools.combinations(conditions, 2) if pair not in matching}
    assert len(ties) == 112
    chosen = _draw_counts(conditions, issued, set(), draws=112 * 150)
    assert set(chosen) == ties
    # Chi-square with 111 degrees of freedom: 160 is its 0.2% upper point.
    expected = 150
    chi2 = sum((n - expected) ** 2 / expected for n in chosen.values())
    assert chi2 < 160, chi2


class _CountingReads(IssuedCounts):
    """Counts what the rule reads."""

    looked_up: list[int]
    read_all: list[int]

    def pairs_issued(self, image_id: int, pairs: Any) -> dict[tuple[int, int], int]:
        self.looked_up.append(len(pairs))
        return super().pairs_issued(image_id, pairs)

    def pairs_issued_on(self, image_id: int) -> dict[tuple[int, int], int]:
        self.read_all.append(image_id)
        return super().pairs_issued_on(image_id)


def test_a_thousand_conditions_cost_a_few_pair_lookups() -> None:
    """1,000 conditions, each shown once (a matching issued): the tie is the 499,000
    pairs never issued, and the rule finds one by looking up a handful."""
    conditions = list(range(1000, 2000))
    issued = {(1, low, high): 1 for low, high in _matching(conditions, random.Random(1))}
    reads = _CountingReads(pairs=issued)
    object.__setattr__(reads, "looked_up", [])
    object.__setattr__(reads, "read_all", [])
    for draw in range(50):
        choice = choose_pair_on_image(
            image_id=1,
            condition_ids=conditions,
            issued=reads,
            seen_by_rater=set(),
            rng=random.Random(draw),
        )
        pair = tuple(sorted((choice.left_condition_id, choice.right_condition_id)))
        assert (1, *pair) not in issued
    assert reads.read_all == []
    assert max(reads.looked_up) <= 8
