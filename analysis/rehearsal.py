"""Rehearse a pair-scheduling strategy on a simulated study, up to the stopping rule.

The loop that ``bench/active.py`` measures and the tests run small: simulated raters
(:func:`analysis.simulate.simulate_answers`, the truth of a
:class:`analysis.simulate.SimulatedStudy`) arrive one at a time in proportion to their
activity; a scheduler chooses each one's pair from plain data (what the study app would
pass); every ``batch`` votes the study is refitted with the fast Laplace fit, the 95%
BD-rate intervals are computed from its draws by the report's own code
(:func:`analysis.fit.bd_rate_posterior`), and the rehearsal stops once every codec's
half-width is at most the target. An active scheduler gets a fresh
:class:`analysis.active.ActivePlanner` from each refit, and the trials issued since as
``pending``, as the study app would give it between background refreshes.

A scheduler is any callable ``(rater, state, rng) -> (image, left, right) | None``; the
balanced strategy of the study app can be wrapped (bench/active.py does), since this
library never imports the app.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.active import ActivePlanner, PairKey, PlannerSettings
from analysis.fit import bd_rate_posterior, condition_points
from analysis.io import validate_conditions, validate_votes
from analysis.laplace import fit_laplace
from analysis.model import ModelName, count_votes, resolve_options
from analysis.simulate import GOLDEN_DEGRADED, GOLDEN_REFERENCE, SimulatedStudy, simulate_answers

#: Votes between refits (and stopping checks).
DEFAULT_BATCH: Final = 500
#: Votes chosen by the balanced rule before any strategy starts (both strategies share
#: them when run with the same seed).
DEFAULT_WARMUP: Final = 1000
#: Most counted votes before a rehearsal gives up.
DEFAULT_MAX_VOTES: Final = 80_000
#: Model of the refits: ``bt`` is the fastest Laplace fit, and BD-rates barely depend on
#: the model (docs/analysis.md).
DEFAULT_MODEL: Final = ModelName.BT


@dataclass
class ScheduleState:
    """What a study app knows when a rater asks for a trial, as plain data.

    Conditions and images are integer ids (positions in ``labels`` and ``images``).

    Attributes
    ----------
    image_ids, condition_ids : list of int
    issued : dict of PairKey to int
        Trials issued per (image, low condition, high condition).
    issued_per_image : dict of int to int
    appearances : dict of int to int
        Trials issued per condition.
    image_appearances : dict of (int, int) to int
        Trials issued per (image, condition).
    seen_by_rater : dict of int to set of PairKey
    side_balance : dict of int to dict of int to int
        Per rater and condition: left minus right appearances.
    pending : dict of (int, int) to int
        Trials issued since the last refresh, per condition pair.
    planner : ActivePlanner or None
        The latest refresh, for active schedulers.
    """

    image_ids: list[int]
    condition_ids: list[int]
    issued: dict[PairKey, int] = field(default_factory=dict)
    issued_per_image: dict[int, int] = field(default_factory=dict)
    appearances: dict[int, int] = field(default_factory=dict)
    image_appearances: dict[tuple[int, int], int] = field(default_factory=dict)
    seen_by_rater: dict[int, set[PairKey]] = field(default_factory=dict)
    side_balance: dict[int, dict[int, int]] = field(default_factory=dict)
    pending: dict[tuple[int, int], int] = field(default_factory=dict)
    planner: ActivePlanner | None = None

    def record(self, rater: int, image: int, left: int, right: int) -> None:
        """Count one issued trial."""
        low, high = min(left, right), max(left, right)
        key = (image, low, high)
        self.issued[key] = self.issued.get(key, 0) + 1
        self.issued_per_image[image] = self.issued_per_image.get(image, 0) + 1
        for condition in (left, right):
            self.appearances[condition] = self.appearances.get(condition, 0) + 1
            shown = (image, condition)
            self.image_appearances[shown] = self.image_appearances.get(shown, 0) + 1
        self.seen_by_rater.setdefault(rater, set()).add(key)
        sides = self.side_balance.setdefault(rater, {})
        sides[left] = sides.get(left, 0) + 1
        sides[right] = sides.get(right, 0) - 1
        self.pending[(low, high)] = self.pending.get((low, high), 0) + 1


#: A scheduler: (rater id, state, rng) -> (image id, left condition id, right condition id).
Scheduler = Callable[[int, ScheduleState, random.Random], tuple[int, int, int] | None]


def active_scheduler(
    rater: int, state: ScheduleState, rng: random.Random
) -> tuple[int, int, int] | None:
    """The active strategy: :meth:`ActivePlanner.choose` with the state's plain data.

    Parameters
    ----------
    rater : int
    state : ScheduleState
        Its ``planner`` must be set.
    rng : random.Random

    Returns
    -------
    tuple of int or None

    Raises
    ------
    ValueError
        If the state has no planner.
    """
    if state.planner is None:
        raise ValueError("the active scheduler needs a planner")
    choice = state.planner.choose(
        image_ids=state.image_ids,
        issued_per_image=state.issued_per_image,
        seen_by_rater=state.seen_by_rater.get(rater, set()),
        rng=rng,
        side_balance=state.side_balance.get(rater, {}),
        pending=state.pending,
        appearances=state.appearances,
    )
    if choice is None:
        return None
    return choice.image_id, choice.left_condition_id, choice.right_condition_id


def uniform_balanced_scheduler(
    rater: int, state: ScheduleState, rng: random.Random
) -> tuple[int, int, int] | None:
    """A plain balanced rule: least used open image, then a pair of its least shown
    conditions among those the rater has not seen, sides at random.

    The study app's ``balanced`` strategy is the reference; this stand-in is for the
    warm-up and for tests that cannot import the app.

    Parameters
    ----------
    rater : int
    state : ScheduleState
    rng : random.Random

    Returns
    -------
    tuple of int or None
    """
    seen = state.seen_by_rater.get(rater, set())
    k = len(state.condition_ids)
    n_pairs = k * (k - 1) // 2
    per_image_seen: dict[int, int] = {}
    for image, _, _ in seen:
        per_image_seen[image] = per_image_seen.get(image, 0) + 1
    open_images = [i for i in state.image_ids if per_image_seen.get(i, 0) < n_pairs]
    if not open_images:
        return None
    fewest = min(state.issued_per_image.get(i, 0) for i in open_images)
    image = rng.choice([i for i in open_images if state.issued_per_image.get(i, 0) == fewest])
    shown = [state.image_appearances.get((image, c), 0) for c in range(k)]
    order = sorted(range(k), key=lambda c: (shown[c], rng.random()))
    for first_pos, first in enumerate(order):
        for second in order[first_pos + 1 :]:
            key = (image, min(first, second), max(first, second))
            if key not in seen:
                return (image, first, second) if rng.random() < 0.5 else (image, second, first)
    return None


@dataclass(frozen=True)
class RehearsalSettings:
    """How a rehearsal runs.

    Attributes
    ----------
    target_halfwidth : float
        Stopping rule: every 95% BD-rate half-width at most this (percentage points).
    batch, warmup, max_votes : int
        Votes between refits, balanced votes first, most votes.
    model : ModelName
        Model of the Laplace refits.
    planner : PlannerSettings
        For active schedulers (its target is replaced by ``target_halfwidth``).
    golden_share : float or None
        Golden trials per counted vote; the design's when None.
    """

    target_halfwidth: float = 5.0
    batch: int = DEFAULT_BATCH
    warmup: int = DEFAULT_WARMUP
    max_votes: int = DEFAULT_MAX_VOTES
    model: ModelName = DEFAULT_MODEL
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    golden_share: float | None = None


@dataclass(frozen=True)
class Checkpoint:
    """The stopping rule after one refit.

    Attributes
    ----------
    votes : int
        Counted votes so far.
    halfwidth : dict of str to float
    bd_rate, bd_rate_lo, bd_rate_hi : dict of str to float
    """

    votes: int
    halfwidth: dict[str, float]
    bd_rate: dict[str, float]
    bd_rate_lo: dict[str, float]
    bd_rate_hi: dict[str, float]

    @property
    def worst(self) -> float:
        """Largest half-width (NaN counts as infinite)."""
        values = [v if np.isfinite(v) else np.inf for v in self.halfwidth.values()]
        return float(max(values))


@dataclass(frozen=True)
class RehearsalResult:
    """What a rehearsal measured.

    Attributes
    ----------
    reached : bool
        The stopping rule was met within ``max_votes``.
    votes : int
        Counted votes at the first refit meeting it (or the last one).
    checkpoints : list of Checkpoint
    covered : dict of str to bool
        Per codec, whether the final 95% interval contains the true BD-rate.
    votes_table : DataFrame
        All votes (counted and golden), in the ``votes.csv`` format.
    planners : list of ActivePlanner
        The planner of every refresh (active schedulers only).
    seconds : dict of str to float
        ``fit``, ``choose`` and ``total`` wall time.
    """

    reached: bool
    votes: int
    checkpoints: list[Checkpoint]
    covered: dict[str, bool]
    votes_table: pd.DataFrame
    planners: list[ActivePlanner]
    seconds: dict[str, float]


def rehearse(
    study: SimulatedStudy,
    scheduler: Scheduler,
    *,
    seed: int,
    settings: RehearsalSettings | None = None,
    needs_planner: bool = False,
) -> RehearsalResult:
    """Run a simulated study under a scheduler until every BD-rate interval is narrow enough.

    Parameters
    ----------
    study : SimulatedStudy
        The truth (its own votes are not used).
    scheduler : Scheduler
        Chooses each trial.
    seed : int
        Seed of the rater arrivals, answers and tie-breaks: the warm-up is the same for
        every scheduler under the same seed.
    settings : RehearsalSettings, optional
    needs_planner : bool
        Build an :class:`ActivePlanner` at every refit (for active schedulers).

    Returns
    -------
    RehearsalResult

    Raises
    ------
    ValueError
        If the design has no rater activity or the warm-up is not positive.
    analysis.laplace.LaplaceError
        If a refit's posterior is not locally Gaussian.
    """
    settings = RehearsalSettings() if settings is None else settings
    if study.rater_activity is None:
        raise ValueError("the study needs rater activity (from analysis.simulate.simulate_study)")
    if settings.warmup < 1 or settings.batch < 1:
        raise ValueError("warmup and batch must be positive")
    started = time.perf_counter()
    conditions = validate_conditions(study.conditions)
    labels = list(pd.unique(conditions["condition"]))
    images = list(pd.unique(conditions["image"]))
    raters = study.rater_activity.index.to_numpy()
    activity = study.rater_activity.to_numpy(dtype=np.float64)
    points = condition_points(conditions, tuple(labels))
    planner_settings = replace(settings.planner, target_halfwidth=settings.target_halfwidth)
    golden_share = (
        study.design.golden_share if settings.golden_share is None else settings.golden_share
    )

    rng = np.random.default_rng(seed)
    choice_rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    state = ScheduleState(
        image_ids=list(range(len(images))), condition_ids=list(range(len(labels)))
    )
    tables: list[pd.DataFrame] = []
    checkpoints: list[Checkpoint] = []
    planners: list[ActivePlanner] = []
    seconds = {"fit": 0.0, "choose": 0.0, "plan": 0.0}
    n_counted = 0
    reached = False
    final: Checkpoint | None = None
    while n_counted < settings.max_votes:
        warm = n_counted < settings.warmup
        size = settings.warmup if warm else settings.batch
        arrivals = rng.choice(raters.size, size, p=activity)
        rows: list[tuple[int, int, int, int]] = []
        tick = time.perf_counter()
        for rater in arrivals.tolist():
            chooser = uniform_balanced_scheduler if warm else scheduler
            picked = chooser(rater, state, choice_rng)
            if picked is None:
                continue
            image, left, right = picked
            state.record(rater, image, left, right)
            rows.append((rater, image, left, right))
        seconds["choose"] += time.perf_counter() - tick
        n_counted += len(rows)
        tables.append(_answers(study, rows, raters, images, labels, golden_share, rng))
        votes = pd.concat(tables, ignore_index=True)
        tick = time.perf_counter()
        validated = validate_votes(votes, conditions)
        data = count_votes(validated, conditions)
        options = resolve_options(data, model=settings.model)
        fit = fit_laplace(data, options=options, random_seed=seed)
        elo_draws = fit.idata.posterior["elo"].to_numpy().reshape(-1, len(labels))
        table, _ = bd_rate_posterior(elo_draws, points, anchor=study.anchor)
        seconds["fit"] += time.perf_counter() - tick
        final = _checkpoint(n_counted, table)
        checkpoints.append(final)
        if final.worst <= settings.target_halfwidth:
            reached = True
            break
        state.pending = {}
        if needs_planner:
            tick = time.perf_counter()
            state.planner = ActivePlanner.from_laplace(
                fit,
                points,
                anchor=study.anchor,
                settings=planner_settings,
                n_votes=n_counted,
                random_seed=seed,
            )
            planners.append(state.planner)
            seconds["plan"] += time.perf_counter() - tick
    if final is None:
        raise ValueError("the rehearsal gave no votes")
    covered = {
        codec: bool(final.bd_rate_lo[codec] <= truth <= final.bd_rate_hi[codec])
        for codec, truth in study.true_bd_rate.items()
    }
    seconds["total"] = time.perf_counter() - started
    return RehearsalResult(
        reached=reached,
        votes=final.votes,
        checkpoints=checkpoints,
        covered=covered,
        votes_table=pd.concat(tables, ignore_index=True),
        planners=planners,
        seconds=seconds,
    )


def _answers(
    study: SimulatedStudy,
    rows: list[tuple[int, int, int, int]],
    raters: npt.NDArray[np.object_],
    images: list[str],
    labels: list[str],
    golden_share: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Simulated answers to the chosen trials, plus golden trials at the design's share."""
    chosen = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    label_array = np.asarray(labels, dtype=object)
    trials = pd.DataFrame(
        {
            "rater": raters[chosen[:, 0]],
            "image": np.asarray(images, dtype=object)[chosen[:, 1]],
            "condition_a": label_array[chosen[:, 2]],
            "condition_b": label_array[chosen[:, 3]],
        }
    )
    n_golden = int(rng.binomial(len(rows), golden_share)) if golden_share > 0 else 0
    if n_golden:
        activity = study.rater_activity
        if activity is None:
            raise ValueError("the simulated study has no rater activity")
        left = rng.random(n_golden) < 0.5
        golden = pd.DataFrame(
            {
                "rater": rng.choice(raters, n_golden, p=activity.to_numpy(dtype=np.float64)),
                "image": rng.choice(np.asarray(images, dtype=object), n_golden),
                "condition_a": np.where(left, GOLDEN_REFERENCE, GOLDEN_DEGRADED),
                "condition_b": np.where(left, GOLDEN_DEGRADED, GOLDEN_REFERENCE),
            }
        )
        trials = pd.concat([trials, golden], ignore_index=True)
    return simulate_answers(study, trials, rng=rng)


def _checkpoint(votes: int, table: pd.DataFrame) -> Checkpoint:
    bd = table.set_index("codec")
    lo = bd["bd_rate_lo"].astype("float64")
    hi = bd["bd_rate_hi"].astype("float64")
    return Checkpoint(
        votes=votes,
        halfwidth={str(c): float(v) for c, v in ((hi - lo) / 2.0).items()},
        bd_rate={str(c): float(v) for c, v in bd["bd_rate"].astype("float64").items()},
        bd_rate_lo={str(c): float(v) for c, v in lo.items()},
        bd_rate_hi={str(c): float(v) for c, v in hi.items()},
    )
