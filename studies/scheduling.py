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

import functools
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    conditions = set(condition_ids)
    n_pairs = len(conditions) * (len(conditions) - 1) // 2
    seen_per_image: dict[int, int] = {}
    for image_id, low, high in seen_by_rater:
        if low in conditions and high in conditions:
            seen_per_image[image_id] = seen_per_image.get(image_id, 0) + 1
    # An image is open while the rater has seen fewer of its pairs than it has.
    open_images = [
        image_id for image_id in sorted(set(image_ids)) if seen_per_image.get(image_id, 0) < n_pairs
    ]
    if not open_images:
        return None
    fewest = min(issued_per_image.get(image_id, 0) for image_id in open_images)
    return rng.choice([i for i in open_images if issued_per_image.get(i, 0) == fewest])


@functools.cache
def _pair_indices(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices (i, j), i < j, of all pairs of n items, in itertools.combinations order."""
    first, second = np.triu_indices(n, 1)
    first.setflags(write=False)
    second.setflags(write=False)
    return first, second


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

    Only the counts of ``image_id`` in ``issued`` are read. The pairs are scored
    as arrays (a study of 1,000 conditions has 499,500 pairs on an image); the
    lightest are taken in the order of ``itertools.combinations`` of the sorted
    conditions, and one is drawn as ``rng.choice`` draws from that list.
    """
    conditions = sorted(set(condition_ids))
    n = len(conditions)
    index = {condition: i for i, condition in enumerate(conditions)}
    first, second = _pair_indices(n)

    def flat(a: int, b: int) -> int:
        """Position of the pair (a, b), a < b, in combinations order."""
        return a * n - a * (a + 1) // 2 + (b - a - 1)

    pair_issued = np.zeros(first.size, dtype=np.int64)
    appearances = np.zeros(n, dtype=np.int64)
    for (image, low, high), count in issued.pairs.items():
        if image != image_id or not count or low not in index or high not in index:
            continue
        a, b = index[low], index[high]
        pair_issued[flat(a, b)] = count
        appearances[a] += count
        appearances[b] += count
    open_pairs = np.ones(first.size, dtype=bool)
    for image, low, high in seen_by_rater:
        if image == image_id and low in index and high in index:
            open_pairs[flat(index[low], index[high])] = False

    count_first, count_second = appearances[first], appearances[second]
    # The load of a pair, compared key by key: the more frequent condition's
    # appearances, then both conditions', then the pair's own trials.
    lightest = open_pairs
    for key in (
        np.maximum(count_first, count_second),
        count_first + count_second,
        pair_issued,
    ):
        lightest = lightest & (key == key[lightest].min())
    candidates = np.flatnonzero(lightest)
    # randrange(k) draws as choice() does from a list of k.
    pick = int(candidates[rng.randrange(candidates.size)])
    first_id, second_id = conditions[int(first[pick])], conditions[int(second[pick])]
    left, right = orient_pair(first_id, second_id, side_balance=side_balance or {}, rng=rng)
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
