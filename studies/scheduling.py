"""Which pair a rater sees next: balanced random within an image.

Plain data in, one choice out, so the rule can be tested without a database.
The rule (strategy ``balanced``):

1. Take the images that still have a pair this rater has not seen, and among
   them the ones with the fewest trials issued so far in the study.
2. Within the chosen image, among the pairs this rater has not seen, take the
   pairs whose more frequent condition has appeared least often on this image,
   then the lowest sum of the two conditions' appearances, then the least
   issued pairs.
3. Ties are broken at random, every tied pair as likely as any other.
4. Sides are balanced per rater: the condition this rater has seen more often
   on the left goes to the right; when both have been left as often, at random.

So every condition appears about equally often on every image and on each
side, every image gets about the same number of trials, and no rater sees a
pair twice.

Finding the pair reads little: the first two keys depend only on how often each
condition has appeared on the image (one number per condition), and pick out the
conditions at two appearance levels, ``top`` and ``other``; the tied pairs are
those between the two levels. Most of them have usually never been issued
(a study of 1,000 conditions has 499,500 pairs on an image), so the third key
draws tied pairs at random and looks up their counts, a few at a time, keeping
the first never issued one: the first success of uniform draws is uniform over
the successes. Only when a few dozen draws find none are all the image's pair
counts read.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# (image id, lower condition id, higher condition id)
PairKey = tuple[int, int, int]
# (lower condition id, higher condition id) on one image
Pair = tuple[int, int]

#: Open tied pairs up to which every count is looked up at once.
LOOKUP_ALL_AT_MOST = 64
#: Tied pairs drawn per lookup while searching for a never issued one.
DRAW_BATCHES = (8, 64)


def pair_key(image_id: int, condition_1: int, condition_2: int) -> PairKey:
    low, high = sorted((condition_1, condition_2))
    return (image_id, low, high)


@dataclass(frozen=True)
class PairChoice:
    image_id: int
    left_condition_id: int
    right_condition_id: int


class IssueCounts(Protocol):
    """What the balanced rule reads of the trials issued so far in the study."""

    def per_image(self) -> Mapping[int, int]:
        """Trials per image (missing: none)."""
        ...

    def appearances_on(self, image_id: int) -> Mapping[int, int]:
        """Trials on the image per condition shown, on either side (missing: none)."""
        ...

    def pairs_issued(self, image_id: int, pairs: Collection[Pair]) -> Mapping[Pair, int]:
        """Trials on the image for these (low, high) pairs (missing: none)."""
        ...

    def pairs_issued_on(self, image_id: int) -> Mapping[Pair, int]:
        """Trials on the image for every pair issued at least once."""
        ...


@dataclass(frozen=True)
class IssuedCounts:
    """What the study has issued so far, in memory (``IssueCounts``).

    ``pairs`` counts trials per (image, low, high) pair. A caller that keeps the
    totals per image and per (image, condition) as it goes passes them too;
    otherwise they are summed from ``pairs`` when asked for.
    """

    pairs: Mapping[PairKey, int]
    issued_per_image: Mapping[int, int] | None = None
    image_appearances: Mapping[tuple[int, int], int] | None = None

    def per_image(self) -> Mapping[int, int]:
        if self.issued_per_image is not None:
            return self.issued_per_image
        totals: dict[int, int] = {}
        for (image_id, _, _), n in self.pairs.items():
            totals[image_id] = totals.get(image_id, 0) + n
        return totals

    def appearances(self) -> Mapping[tuple[int, int], int]:
        """Trials per (image, condition)."""
        if self.image_appearances is not None:
            return self.image_appearances
        counts: dict[tuple[int, int], int] = {}
        for (image_id, low, high), n in self.pairs.items():
            for condition_id in (low, high):
                key = (image_id, condition_id)
                counts[key] = counts.get(key, 0) + n
        return counts

    def appearances_on(self, image_id: int) -> dict[int, int]:
        return {
            condition_id: n
            for (image, condition_id), n in self.appearances().items()
            if image == image_id
        }

    def pairs_issued(self, image_id: int, pairs: Collection[Pair]) -> dict[Pair, int]:
        found = ((pair, self.pairs.get((image_id, *pair), 0)) for pair in pairs)
        return {pair: n for pair, n in found if n}

    def pairs_issued_on(self, image_id: int) -> dict[Pair, int]:
        return {(low, high): n for (image, low, high), n in self.pairs.items() if image == image_id}


def choose_balanced_pair(
    *,
    image_ids: Iterable[int],
    condition_ids: Iterable[int],
    issued: IssueCounts,
    seen_by_rater: set[PairKey],
    rng: random.Random,
    side_balance: Mapping[int, int] | None = None,
) -> PairChoice | None:
    """Choose the next pair for one rater, or None when the rater has seen every pair.

    :func:`choose_image` followed by :func:`choose_pair_on_image` with the same
    ``rng``.

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


def choose_pair_on_image(
    *,
    image_id: int,
    condition_ids: Iterable[int],
    issued: IssueCounts,
    seen_by_rater: set[PairKey],
    rng: random.Random,
    side_balance: Mapping[int, int] | None = None,
) -> PairChoice:
    """Steps 2 to 4 of :func:`choose_balanced_pair` on an image chosen by
    :func:`choose_image` (so the rater has an unseen pair on it).

    Reads the image's appearances per condition, then the counts of a few tied
    pairs (see the module's notes); ``issued`` is not read for other images.
    """
    conditions = sorted(set(condition_ids))
    appearances = issued.appearances_on(image_id)
    level_of = {c: appearances.get(c, 0) for c in conditions}
    values = sorted(set(level_of.values()))
    rank = {value: k for k, value in enumerate(values)}
    members: list[list[int]] = [[] for _ in values]
    for condition in conditions:  # ascending ids within each level
        members[rank[level_of[condition]]].append(condition)
    # The rater's pairs on this image, by the levels of their two conditions.
    seen_between: dict[tuple[int, int], set[Pair]] = {}
    seen_under: Counter[int] = Counter()  # by the higher level
    for image, low, high in seen_by_rater:
        if image == image_id and low in level_of and high in level_of:
            levels = sorted((rank[level_of[low]], rank[level_of[high]]))
            seen_between.setdefault((levels[0], levels[1]), set()).add((low, high))
            seen_under[levels[1]] += 1
    # Key 1: the lowest level ``top`` with an unseen pair whose busier condition is
    # at that level (a pair of two lower conditions would be lower still).
    below = 0
    for top, group in enumerate(members):
        n_top = len(group)
        if n_top * (n_top - 1) // 2 + n_top * below > seen_under[top]:
            break
        below += n_top
    else:
        raise ValueError(f"the rater has seen every pair of image {image_id}")
    # Key 2: with one condition at ``top``, the other as little shown as can be.
    for other in range(top + 1):
        tied = _TiedPairs(
            lower=members[other],
            upper=members[top],
            seen=seen_between.get((other, top), set()),
            same_level=other == top,
        )
        if tied.open_count > 0:
            break
    first_id, second_id = _least_issued(tied, image_id=image_id, issued=issued, rng=rng)
    left, right = orient_pair(first_id, second_id, side_balance=side_balance or {}, rng=rng)
    return PairChoice(image_id=image_id, left_condition_id=left, right_condition_id=right)


@dataclass(frozen=True)
class _TiedPairs:
    """The pairs with one condition from ``lower`` and one from ``upper`` (two of
    ``upper`` when both are the same level), less those the rater has seen."""

    lower: list[int]
    upper: list[int]
    seen: set[Pair]
    same_level: bool

    @property
    def size(self) -> int:
        n = len(self.upper)
        return n * (n - 1) // 2 if self.same_level else len(self.lower) * n

    @property
    def open_count(self) -> int:
        return self.size - len(self.seen)

    def draw(self, rng: random.Random) -> Pair:
        """One open pair, each as likely as any other."""
        while True:
            n = len(self.upper)
            if self.same_level:
                i = rng.randrange(n)
                j = rng.randrange(n - 1)
                a, b = self.upper[i], self.upper[j + (j >= i)]
            else:
                a, b = self.lower[rng.randrange(len(self.lower))], self.upper[rng.randrange(n)]
            pair = (a, b) if a < b else (b, a)
            if pair not in self.seen:
                return pair

    def grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair as (lower ids, upper ids, open mask) arrays, in a fixed order."""
        lower = np.asarray(self.lower, dtype=np.int64)
        upper = np.asarray(self.upper, dtype=np.int64)
        if self.same_level:
            i, j = np.triu_indices(upper.size, 1)
            a, b = upper[i], upper[j]
        else:
            a = np.repeat(lower, upper.size)
            b = np.tile(upper, lower.size)
        low, high = np.minimum(a, b), np.maximum(a, b)
        seen = np.array(sorted(self.seen), dtype=np.int64).reshape(-1, 2)
        open_mask = ~np.isin(_code(low, high), _code(seen[:, 0], seen[:, 1]))
        return low, high, open_mask


def _code(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """One integer per (low, high) pair of ids, ordered as the pairs are."""
    return low * (np.int64(1) << np.int64(32)) + high


def _least_issued(
    tied: _TiedPairs, *, image_id: int, issued: IssueCounts, rng: random.Random
) -> Pair:
    """Key 3 and the tie-break: an open pair among ``tied`` with the fewest trials
    issued, each such pair as likely as any other."""
    if tied.open_count <= LOOKUP_ALL_AT_MOST:
        low, high, open_mask = tied.grid()
        pairs = [(int(a), int(b)) for a, b in zip(low[open_mask], high[open_mask], strict=True)]
        counts = issued.pairs_issued(image_id, pairs)
        fewest = min(counts.get(pair, 0) for pair in pairs)
        ties = [pair for pair in pairs if counts.get(pair, 0) == fewest]
        return ties[rng.randrange(len(ties))]
    # Never issued is the fewest there can be: the first such draw is a uniform
    # choice among them.
    for batch in DRAW_BATCHES:
        drawn = [tied.draw(rng) for _ in range(batch)]
        counts = issued.pairs_issued(image_id, drawn)
        for pair in drawn:
            if pair not in counts or counts[pair] == 0:
                return pair
    # Most tied pairs have been issued: count them all.
    low, high, open_mask = tied.grid()
    on_image = issued.pairs_issued_on(image_id)
    n = np.zeros(low.size, dtype=np.int64)
    if on_image:
        keys = np.array(list(on_image), dtype=np.int64)
        known = _code(keys[:, 0], keys[:, 1])
        order = np.argsort(known)
        known = known[order]
        values = np.fromiter(on_image.values(), dtype=np.int64, count=len(on_image))[order]
        wanted = _code(low, high)
        at = np.minimum(np.searchsorted(known, wanted), known.size - 1)
        found = known[at] == wanted
        n[found] = values[at[found]]
    candidates = np.flatnonzero(open_mask & (n == n[open_mask].min()))
    pick = int(candidates[rng.randrange(candidates.size)])
    return int(low[pick]), int(high[pick])


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
