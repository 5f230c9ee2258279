"""Issuing a session's new trials: the schedule's seeded choices and the study's pair counts."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass

from studies import scheduling
from studies.models import ConditionKind, RaterSession, Trial
from studies.services import planning, rating_sql

# Golden trials are never the first counted trial: raters settle in first.
GOLDEN_FIRST_POSITION = 1


def _rng(session: RaterSession, *parts: object) -> random.Random:
    """The session's own seeded random source for one decision.

    Keyed by the study's seed and the rater's identity (not a database id), so
    the same participants get the same schedule on any database.
    """
    rater = session.rater
    key = ":".join(str(p) for p in (session.study.seed, rater.platform, rater.external_id, *parts))
    return random.Random(key)  # noqa: S311 - scheduling, not secrets


def golden_positions(session: RaterSession) -> set[int]:
    """Counted positions (0-based, after practice) of the session's golden trials."""
    study = session.study
    candidates = range(GOLDEN_FIRST_POSITION, session.trials_total)
    wanted = min(round(study.golden_rate * session.trials_total), len(candidates))
    return set(_rng(session, "golden").sample(candidates, wanted))


@dataclass
class _LivePlanner:
    """The study's planner with what was issued since its refresh (this call's too)."""

    loaded: planning.LoadedPlanner
    pending: dict[tuple[int, int], int]  # (low, high) condition ids -> trials
    appearances: dict[int, int]  # condition id -> comparison trials, study-wide

    def add(self, left: int, right: int, n: int = 1) -> None:
        pair = (min(left, right), max(left, right))
        self.pending[pair] = self.pending.get(pair, 0) + n
        for condition in pair:
            self.appearances[condition] = self.appearances.get(condition, 0) + n


class _StudyCounts:
    """The study's issue counts as the balanced rule reads them
    (``scheduling.IssueCounts``): the counts stored so far plus this call's trials,
    which :meth:`TrialIssuer.save_counts` stores at the end."""

    def __init__(
        self,
        study_id: int,
        added: dict[scheduling.PairKey, int],
        per_image: Callable[[], dict[int, int]],
    ) -> None:
        self.study_id = study_id
        self.added = added
        self._per_image = per_image
        self._appearances: dict[int, dict[int, int]] = {}

    def per_image(self) -> dict[int, int]:
        return self._per_image()

    def appearances_on(self, image_id: int) -> dict[int, int]:
        if image_id not in self._appearances:
            self._appearances[image_id] = rating_sql.appearances_on_image(self.study_id, image_id)
        counts = dict(self._appearances[image_id])
        for (image, low, high), n in self.added.items():
            if image == image_id:
                counts[low] = counts.get(low, 0) + n
                counts[high] = counts.get(high, 0) + n
        return counts

    def pairs_issued(
        self, image_id: int, pairs: Collection[scheduling.Pair]
    ) -> dict[scheduling.Pair, int]:
        wanted = set(pairs)
        stored = rating_sql.issued_pairs(self.study_id, image_id, wanted)
        return self._with_added(image_id, stored, wanted)

    def pairs_issued_on(self, image_id: int) -> dict[scheduling.Pair, int]:
        return self._with_added(image_id, rating_sql.issued_on_image(self.study_id, image_id))

    def _with_added(
        self,
        image_id: int,
        counts: dict[scheduling.Pair, int],
        wanted: set[scheduling.Pair] | None = None,
    ) -> dict[scheduling.Pair, int]:
        """``counts`` plus this call's trials (of the ``wanted`` pairs; None: all)."""
        for (image, low, high), n in self.added.items():
            if image == image_id and (wanted is None or (low, high) in wanted):
                counts[low, high] = counts.get((low, high), 0) + n
        return counts


class TrialIssuer:
    """Issues one session's new trials within one call of ``rating.trials_pending``.

    The study-wide counts of issued trials come from ``ConditionIssueCount`` (per
    image, then per condition of the image the scheduler chose) and
    ``PairIssueCount`` (a few pairs of that image), never from a scan of the
    study's trials; this call's own trials are added in memory and written by
    :meth:`save_counts`. For an active
    study with a planner, the counts per image and per condition are the
    refresh's plus the trials issued since it (one statement bounded by the
    trial table's primary key), so the pair counts are only written.
    """

    def __init__(
        self,
        session: RaterSession,
        issued_trials: list[rating_sql.SessionTrial],
        stimuli: rating_sql.StudyStimuli,
    ) -> None:
        self.session = session
        self.study = session.study
        self.stimuli = stimuli
        self.golden = golden_positions(session)
        self.seen: set[scheduling.PairKey] = set()
        self.side_balance: dict[int, int] = {}
        condition_of = stimuli.condition_of
        for trial in issued_trials:
            if not (trial.is_golden or trial.is_practice):
                left, right = condition_of[trial.left_id], condition_of[trial.right_id]
                self._saw(trial.source_image_id, left, right)
        self.added: dict[scheduling.PairKey, int] = {}
        self._per_image: dict[int, int] | None = None
        self._counts = _StudyCounts(self.study.pk, self.added, self._issued_per_image)
        self._live: _LivePlanner | None = None
        self._live_read = False

    def _saw(self, image_id: int, left: int, right: int) -> None:
        self.seen.add(scheduling.pair_key(image_id, left, right))
        self.side_balance[left] = self.side_balance.get(left, 0) + 1
        self.side_balance[right] = self.side_balance.get(right, 0) - 1

    def issue(self, *, position: int) -> Trial | None:
        """Create the trial at ``position``; None if the rater has seen every pair."""
        counted = position - self.session.practice_total
        if counted < 0:
            return self._issue_golden(position=position, practice=True)
        if counted in self.golden:
            return self._issue_golden(position=position, practice=False)
        return self._issue_comparison(position=position)

    def _issued_per_image(self) -> dict[int, int]:
        if self._per_image is None:
            self._per_image = rating_sql.issued_per_image(self.study.pk)
        return self._per_image

    def _live_planner(self) -> _LivePlanner | None:
        """The active planner and its pending trials, read once per call; None for a
        balanced study, before the first refresh, or when the stored planner does not
        fit the study (issuing then follows the balanced rule)."""
        if self._live_read:
            return self._live
        self._live_read = True
        if not self.study.is_active_sampling:
            return None
        loaded = planning.loaded_planner(self.study)
        if loaded is None or loaded.condition_ids != frozenset(self.stimuli.study_conditions):
            return None
        live = _LivePlanner(loaded=loaded, pending={}, appearances=dict(loaded.appearances))
        # The trials per image too come from the refresh and the trials since, not from
        # a scan of the study's pair counts.
        per_image = dict(loaded.image_trials)
        condition_of = self.stimuli.condition_of
        for image_id, left, right, n in rating_sql.pairs_issued_since(
            self.study.pk, loaded.trial_watermark
        ):
            live.add(condition_of[left], condition_of[right], n)
            per_image[image_id] = per_image.get(image_id, 0) + n
        self._per_image = per_image
        self._live = live
        return live

    def _issue_comparison(self, *, position: int) -> Trial | None:
        chosen = self.choose_comparison(position=position)
        if chosen is None:
            return None
        choice, rng = chosen
        return self._create(
            position=position,
            image_id=choice.image_id,
            left=choice.left_condition_id,
            right=choice.right_condition_id,
            rng=rng,
        )

    def choose_comparison(
        self, *, position: int
    ) -> tuple[scheduling.PairChoice, random.Random] | None:
        """The pair of the comparison trial at ``position`` by the study's strategy, and the
        seeded random source that goes on to choose its crop; None if the rater has seen
        every pair. The pair counts as issued by this call from now on (the trial itself
        is stored by the caller)."""
        rng = _rng(self.session, position)
        live = self._live_planner()
        choice = (
            self._choose_balanced(rng) if live is None else self._choose_active(live=live, rng=rng)
        )
        if choice is None:
            return None
        image_id, left, right = choice.image_id, choice.left_condition_id, choice.right_condition_id
        if live is not None:
            live.add(left, right)
        key = scheduling.pair_key(image_id, left, right)
        per_image = self._issued_per_image()
        per_image[image_id] = per_image.get(image_id, 0) + 1
        self.added[key] = self.added.get(key, 0) + 1
        self._saw(image_id, left, right)
        return choice, rng

    def _choose_balanced(self, rng: random.Random) -> scheduling.PairChoice | None:
        """Strategy ``balanced`` (docs/rating.md), reading the counts of one image."""
        conditions = self.stimuli.study_conditions
        image_id = scheduling.choose_image(
            image_ids=self.stimuli.image_ids,
            condition_ids=conditions,
            issued_per_image=self._issued_per_image(),
            seen_by_rater=self.seen,
            rng=rng,
        )
        if image_id is None:
            return None
        return scheduling.choose_pair_on_image(
            image_id=image_id,
            condition_ids=conditions,
            issued=self._counts,
            seen_by_rater=self.seen,
            side_balance=self.side_balance,
            rng=rng,
        )

    def _choose_active(
        self, *, live: _LivePlanner, rng: random.Random
    ) -> scheduling.PairChoice | None:
        """Strategy ``active``: the planner's choice (docs/rating.md), under the same
        rater-level rules as the balanced one (one image, no pair twice, sides)."""
        choice = live.loaded.planner.choose(
            image_ids=self.stimuli.image_ids,
            issued_per_image=self._issued_per_image(),
            seen_by_rater=self.seen,
            rng=rng,
            side_balance=self.side_balance,
            pending=live.pending,
            appearances=live.appearances,
        )
        if choice is None:
            return None
        return scheduling.PairChoice(
            image_id=choice.image_id,
            left_condition_id=choice.left_condition_id,
            right_condition_id=choice.right_condition_id,
        )

    def _issue_golden(self, *, position: int, practice: bool) -> Trial:
        """The original against a heavily degraded version, on a random image."""
        rng = _rng(self.session, position)
        golden = self.stimuli.golden
        pair = [golden[ConditionKind.GOLDEN_REFERENCE], golden[ConditionKind.GOLDEN_DEGRADED]]
        rng.shuffle(pair)
        return self._create(
            position=position,
            image_id=rng.choice(self.stimuli.image_ids),
            left=pair[0],
            right=pair[1],
            rng=rng,
            is_golden=not practice,
            is_practice=practice,
        )

    def _create(
        self,
        *,
        position: int,
        image_id: int,
        left: int,
        right: int,
        rng: random.Random,
        is_golden: bool = False,
        is_practice: bool = False,
    ) -> Trial:
        width, height = self.stimuli.image_size[image_id]
        crop = scheduling.choose_crop(
            width=width, height=height, crop_size=self.study.crop_size, rng=rng
        )
        return rating_sql.trial_insert(
            session_id=self.session.pk,
            position=position,
            source_image_id=image_id,
            left_id=self.stimuli.stimulus[(image_id, left)],
            right_id=self.stimuli.stimulus[(image_id, right)],
            crop=crop,
            is_golden=is_golden,
            is_practice=is_practice,
        )

    def save_counts(self) -> None:
        """Add this call's comparison trials to the study's pair counts."""
        rating_sql.count_issued_pairs(self.study.pk, self.added)
        self.added.clear()
        self._per_image = None
        self._counts = _StudyCounts(self.study.pk, self.added, self._issued_per_image)
