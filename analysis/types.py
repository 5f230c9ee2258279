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
OPTIONAL_VOTE_COLUMNS: Final = ("golden", "response_ms", "flips", "session", "created_at")

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
