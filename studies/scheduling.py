"""Which pair a rater sees next: balanced random within an image.

Plain data in, one choice out, so the rule can be tested without a database.
The rule (strategy ``balanced``):

1. Take the images that still have a pair this rater has not seen, and among
   them the ones with the fewest trials issued so far in the study.
2. Within the chosen image, among the pairs this rater has not seen, take the
   pairs whose more frequent condition has appeared least often on this image,
   then the lowest sum of the two conditions' appearances, then the least
   issued pairs.
3. Ties are broken at random.
4. Sides are balanced per rater: the condition this rater has seen more often
   on the left goes to the right; when both have been left as often, at random.

So every condition appears about equally often on every image and on each
side, every image gets about the same number of trials, and no rater sees a
pair twice.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# (image id, lower condition id, higher condition id)
PairKey = tuple[int, int, int]


def pair_key(image_id: int, condition_1: int, condition_2: int) -> PairKey:
    low, high = sorted((condition_1, condition_2))
    return (image_id, low, high)


@dataclass(frozen=True)
class PairChoice:
    image_id: int
    left_condition_id: int
    right_condition_id: int


@dataclass(frozen=True)
class IssuedCounts:
    """What the study has issued so far, keyed by image and condition pair."""

    pairs: Mapping[PairKey, int]

    def per_image(self) -> dict[int, int]:
        totals: dict[int, int] = {}
        for (image_id, _, _), n in self.pairs.items():
            totals[image_id] = totals.get(image_id, 0) + n
        return totals

    def appearances(self) -> dict[tuple[int, int], int]:
        counts: dict[tuple[int, int], int] = {}
        for (image_id, low, high), n in self.pairs.items():
            for condition_id in (low, high):
                key = (image_id, condition_id)
                counts[key] = counts.get(key, 0) + n
        return counts


def choose_balanced_pair(
    *,
    image_ids: Iterable[int],
    condition_ids: Iterable[int],
    issued: IssuedCounts,
    seen_by_rater: set[PairKey],
    rng: random.Random,
    side_balance: Mapping[int, int] | None = None,
) -> PairChoice | None:
    """Choose the next pair for one rater, or None when the rater has seen every pair.

    The same as :func:`choose_image` followed by :func:`choose_pair_on_image`
    with the same ``rng``; a caller that reads the counts of one image only
    (the server, for speed) calls the two in turn and gets the same choice.

    Parameters
    ----------
    image_ids, condition_ids
        The study's source images and conditions; every condition has a
        stimulus for every image.
    issued
        Trials issued so far in the whole study (all raters).
    seen_by_rater
        Pairs already issued to this rater.
    rng
        Source of the random tie-breaks.
    side_balance
        Per condition, how many more times this rater saw it on the left than
        on the right.
    """
    conditions = sorted(set(condition_ids))
    image_id = choose_image(
        image_ids=image_ids,
        condition_ids=conditions,
        issued_per_image=issued.per_image(),
        seen_by_rater=seen_by_rater,
        rng=rng,
    )
    if image_id is None:
        return None
    return choose_pair_on_image(
        image_id=image_id,
        condition_ids=conditions,
        issued=issued,
        seen_by_rater=seen_by_rater,
        rng=rng,
        side_balance=side_balance,
    )


def choose_image(
    *,
    image_ids: Iterable[int],
    condition_ids: Iterable[int],
    issued_per_image: Mapping[int, int],
    seen_by_rater: set[PairKey],
    rng: random.Random,
) -> int | None:
    """Step 1 of :func:`choose_balanced_pair`: among the images where the rater has
    an unseen pair, one with the fewest trials issued; None when there is none.

    ``issued_per_image`` counts the study's trials per image (missing: none).
    """
    all_pairs = list(itertools.combinations(sorted(set(condition_ids)), 2))
    open_images = [
        image_id
        for image_id in sorted(set(image_ids))
        if any((image_id, a, b) not in seen_by_rater for a, b in all_pairs)
    ]
    if not open_images:
        return None
    fewest = min(issued_per_image.get(image_id, 0) for image_id in open_images)
    return rng.choice([i for i in open_images if issued_per_image.get(i, 0) == fewest])


def choose_pair_on_image(
    *,
    image_id: int,
    condition_ids: Iterable[int],
    issued: IssuedCounts,
    seen_by_rater: set[PairKey],
    rng: random.Random,
    side_balance: Mapping[int, int] | None = None,
) -> PairChoice:
    """Steps 2 to 4 of :func:`choose_balanced_pair` on an image chosen by
    :func:`choose_image` (so the rater has an unseen pair on it).

    Only the counts of ``image_id`` in ``issued`` are read.
    """
    all_pairs = list(itertools.combinations(sorted(set(condition_ids)), 2))
    pairs = issued.pairs
    appearances: dict[int, int] = {}
    for a, b in all_pairs:
        n = pairs.get((image_id, a, b), 0)
        if n:
            appearances[a] = appearances.get(a, 0) + n
            appearances[b] = appearances.get(b, 0) + n

    def load(pair: tuple[int, int]) -> tuple[int, int, int]:
        a, b = pair
        count_a = appearances.get(a, 0)
        count_b = appearances.get(b, 0)
        return (max(count_a, count_b), count_a + count_b, pairs.get((image_id, a, b), 0))

    candidates = [p for p in all_pairs if (image_id, *p) not in seen_by_rater]
    loads = [load(p) for p in candidates]
    lightest = min(loads)
    first, second = rng.choice([p for p, w in zip(candidates, loads, strict=True) if w == lightest])
    left, right = orient_pair(first, second, side_balance=side_balance or {}, rng=rng)
    return PairChoice(image_id=image_id, left_condition_id=left, right_condition_id=right)


def orient_pair(
    a: int, b: int, *, side_balance: Mapping[int, int], rng: random.Random
) -> tuple[int, int]:
    """(left, right): the condition less often on the left so far goes left."""
    balance_a, balance_b = side_balance.get(a, 0), side_balance.get(b, 0)
    if balance_a == balance_b:
        return (a, b) if rng.random() < 0.5 else (b, a)
    return (a, b) if balance_a < balance_b else (b, a)


def choose_crop(
    *, width: int, height: int, crop_size: int, rng: random.Random
) -> tuple[int, int, int, int]:
    """A crop of at most crop_size x crop_size at a random position: (x, y, w, h)."""
    crop_w = min(width, crop_size)
    crop_h = min(height, crop_size)
    x = rng.randint(0, width - crop_w)
    y = rng.randint(0, height - crop_h)
    return x, y, crop_w, crop_h
