"""Domain types of the analysis library: what a vote table, a condition table and the outputs are.

The column tuples below are the public file formats of ``docs/formats.md``; later
versions may add columns, never remove or rename these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

# --- votes.csv -----------------------------------------------------------------------------

#: Required columns of a vote table (in any order in a file; other columns may follow).
VOTE_COLUMNS: Final = ("rater", "image", "condition_a", "condition_b", "choice")

#: Optional columns of a vote table that the format defines. Any other column is ignored.
OPTIONAL_VOTE_COLUMNS: Final = (
    "golden",
    "response_ms",
    "flips",
    "session",
    "created_at",
    "golden_correct",
)

#: Condition names that mark the original in a golden trial: a golden answer choosing one
#: of them is correct (when ``golden_correct`` is absent). Codec Arena exports
#: ``golden-reference`` against ``golden-degraded``.
GOLDEN_REFERENCE_NAMES: Final = ("golden-reference", "reference", "original")

#: ``choice``: ``condition_a`` was judged closer to the original.
CHOICE_A: Final = "a"
#: ``choice``: ``condition_b`` was judged closer to the original.
CHOICE_B: Final = "b"
#: ``choice``: the rater could not tell them apart.
CHOICE_TIE: Final = "tie"
#: The allowed values of ``choice``.
CHOICES: Final = (CHOICE_A, CHOICE_B, CHOICE_TIE)

#: Allowed spellings of the ``golden`` flag (an empty cell means not golden).
GOLDEN_TRUE: Final = "1"
GOLDEN_FALSE: Final = "0"

# --- conditions.csv ------------------------------------------------------------------------

#: Required columns of a condition table: one row per condition and source image.
CONDITION_COLUMNS: Final = ("condition", "codec", "image", "bpp")

# --- outputs ---------------------------------------------------------------------------------

#: Columns of ``elo.csv``: one row per condition; ``bpp`` is the mean over images.
ELO_COLUMNS: Final = ("condition", "codec", "bpp", "elo", "elo_lo", "elo_hi")

#: Columns of ``bd_rate.csv``: one row per codec other than the anchor, in percent.
BD_RATE_COLUMNS: Final = ("codec", "anchor", "bd_rate", "bd_rate_lo", "bd_rate_hi")
#: Columns ``bd_rate.csv`` has after :data:`BD_RATE_COLUMNS` (added in issue 4): the
#: median overlap of the two curves' Elo ranges (intersection over union) and the share
#: of posterior draws without a BD-rate.
BD_RATE_EXTRA_COLUMNS: Final = ("overlap", "unusable_share")
#: Columns of ``bd_rate_matrix.csv``: every ordered pair of codecs.
BD_RATE_MATRIX_COLUMNS: Final = (*BD_RATE_COLUMNS, *BD_RATE_EXTRA_COLUMNS)
#: Columns of ``curves.csv``: Elo against bpp per codec; ``image`` empty for the curve
#: over mean bpp, else one image's curve.
CURVE_COLUMNS: Final = ("codec", "condition", "image", "bpp", "elo", "elo_lo", "elo_hi")
#: Columns of ``savings.csv``: rate of a codec over the anchor's at equal Elo, as a
#: function of the anchor's bpp.
SAVINGS_COLUMNS: Final = (
    "codec",
    "anchor",
    "anchor_bpp",
    "elo",
    "rate_ratio",
    "rate_ratio_lo",
    "rate_ratio_hi",
    "usable_share",
)
#: Columns of ``raters.csv``: one row per rater.
RATER_COLUMNS: Final = (
    "rater",
    "votes",
    "golden",
    "golden_accuracy",
    "lapse",
    "lapse_lo",
    "lapse_hi",
    "p_random",
    "median_response_ms",
    "left_share",
    "exclude",
    "reason",
)
#: Columns of ``metrics.csv``: rank correlation of each objective metric with human Elo.
METRIC_COLUMNS: Final = ("metric", "n_conditions", "spearman", "kendall")
#: Columns of the ``bdrate`` command's output.
BDRATE_COMMAND_COLUMNS: Final = ("codec", "anchor", "bd_rate", "overlap", "note")
#: Columns of a rate/quality curve file for the ``bdrate`` command.
CURVE_INPUT_COLUMNS: Final = ("codec", "bpp", "quality")

#: Name of the index that :func:`analysis.io.read_votes` and
#: :func:`analysis.io.read_conditions` give their frames: the 1-based line of the file
#: each row came from (the header is line 1), so that later errors can name it.
LINE_INDEX: Final = "line"


@dataclass(frozen=True)
class PairCounts:
    """Votes aggregated into counts per ordered pair of conditions.

    Identical ordered comparisons ``(condition_a, condition_b)`` share one row; the
    order is kept (not canonicalised) so that a later position-bias term can use it.

    Attributes
    ----------
    conditions : tuple of str
        Condition labels; ``a_idx`` and ``b_idx`` index into it. Includes conditions
        that received no vote.
    a_idx, b_idx : ndarray of int
        Index of the condition shown as A and as B.
    wins_a : ndarray of float
        Wins of A, where a tie counts as half a win for each side.
    n : ndarray of int
        Number of votes on the pair.
    n_ties : int
        Number of ties among the counted votes.
    """

    conditions: tuple[str, ...]
    a_idx: npt.NDArray[np.intp]
    b_idx: npt.NDArray[np.intp]
    wins_a: npt.NDArray[np.float64]
    n: npt.NDArray[np.int64]
    n_ties: int

    @property
    def n_votes(self) -> int:
        """Total number of votes counted."""
        return int(self.n.sum())


#: Outcome codes of a vote in :class:`VoteData`.
OUTCOME_A: Final = 0
OUTCOME_B: Final = 1
OUTCOME_TIE: Final = 2


@dataclass(frozen=True)
class VoteData:
    """Counted (non-golden) votes as integer codes, and golden answers per rater.

    Built by :func:`analysis.model.count_votes`. Model builders aggregate these per-vote
    codes into the counts their likelihood needs (per ordered pair, per rater and pair,
    per image and pair).

    Attributes
    ----------
    conditions, raters, images : tuple of str
        Labels; the ``*_idx`` arrays index into them. ``raters`` includes raters who only
        answered golden trials.
    a_idx, b_idx : ndarray of int
        Condition shown as A (left) and as B, per vote.
    rater_idx, image_idx : ndarray of int
        Rater and source image of each vote.
    outcome : ndarray of int
        :data:`OUTCOME_A`, :data:`OUTCOME_B` or :data:`OUTCOME_TIE`.
    golden_correct, golden_wrong : ndarray of int
        Per rater: golden answers known to be right / wrong (a tie is wrong).
    golden_unknown : int
        Golden answers whose correctness could not be told (not used).
    """

    conditions: tuple[str, ...]
    raters: tuple[str, ...]
    images: tuple[str, ...]
    a_idx: npt.NDArray[np.intp]
    b_idx: npt.NDArray[np.intp]
    rater_idx: npt.NDArray[np.intp]
    image_idx: npt.NDArray[np.intp]
    outcome: npt.NDArray[np.int8]
    golden_correct: npt.NDArray[np.int64]
    golden_wrong: npt.NDArray[np.int64]
    golden_unknown: int = 0

    @property
    def n_votes(self) -> int:
        """Number of counted votes."""
        return int(self.outcome.size)

    @property
    def n_ties(self) -> int:
        """Number of ties among the counted votes."""
        return int(np.count_nonzero(self.outcome == OUTCOME_TIE))


@dataclass(frozen=True)
class SamplerSettings:
    """How long to run NUTS; the defaults are the library's and the command line's.

    On a 16-condition study with 1,000-3,000 votes the defaults give a bulk ESS above
    5,000 and a tail ESS above 2,500 per condition, with about a second of sampling on
    two cores (numbers in docs/analysis.md); the 2.5% and 97.5% quantiles of the
    intervals need the tail ESS.

    Attributes
    ----------
    draws : int
        Draws kept per chain.
    tune : int
        Warm-up iterations per chain.
    chains : int
        Independent chains (at least 2, for R-hat).
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
