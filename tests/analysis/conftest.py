"""Shared fixtures of the analysis tests: simulated studies with known truth, and one fit.

The simulator is written here, independently of ``analysis``, straight from the model's
definition: P(a beats b) = 1 / (1 + 10^(-(E_a - E_b) / 400)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from analysis.fit import FitResult, fit_study

#: Anchor codec of the simulated studies.
ANCHOR = "jpeg"
#: Rate factor of each codec against the anchor at equal Elo: a codec reaches the
#: anchor's Elo with FACTOR times the bits, so its true BD-rate is (FACTOR - 1) * 100 %.
RATE_FACTORS = {"jpeg": 1.0, "webp": 0.8, "avif": 0.6, "pico": 0.45}
#: Nominal anchor rates (bpp); other codecs use them times their factor, so all curves
#: span the same Elo range.
NOMINAL_BPP = (0.25, 0.5, 1.0, 2.0)
#: True Elo gained per unit of ln(bpp). Elo linear in ln(bpp) makes ln(bpp) linear in
#: Elo, which PCHIP reproduces exactly, so the BD-rate of the true points is exact.
ELO_PER_LN_BPP = 300.0
#: Spread of per-image rate (content difficulty), as a log-normal sigma.
IMAGE_RATE_SIGMA = 0.3
#: Jitter of a condition's rate on one image around its rate-matched value.
CONDITION_RATE_JITTER = 0.05
#: Stimuli used by golden (attention-check) trials; not study conditions.
GOLDEN_PAIR = ("original", "degraded")

#: Seeds: of the simulated data and of the sampler in the shared fit.
SIMULATION_SEED = 20260501
FIT_SEED = 11


@dataclass(frozen=True)
class SimulatedStudy:
    """A simulated study with the parameters that generated it."""

    votes: pd.DataFrame
    conditions: pd.DataFrame
    anchor: str
    true_elo: pd.Series  # by condition, centred to mean 0 like the fit's anchoring
    true_bd_rate: dict[str, float]  # percent, by non-anchor codec
    n_golden: int


def simulate_study(
    *,
    seed: int,
    n_votes: int,
    n_images: int = 6,
    n_raters: int = 20,
    n_golden: int = 0,
) -> SimulatedStudy:
    """Simulate votes of a 4-codec x 4-rate study from known Elo scores."""
    rng = np.random.default_rng(seed)
    images = [f"img{i:02d}" for i in range(n_images)]
    image_rate = np.exp(rng.normal(0.0, IMAGE_RATE_SIGMA, n_images))
    rows = []
    for codec, factor in RATE_FACTORS.items():
        for level, nominal in enumerate(NOMINAL_BPP):
            for image, difficulty in zip(images, image_rate, strict=True):
                jitter = np.exp(rng.normal(0.0, CONDITION_RATE_JITTER))
                bpp = nominal * factor * difficulty * jitter
                rows.append((f"{codec}-{level}", codec, image, bpp))
    conditions = pd.DataFrame(rows, columns=["condition", "codec", "image", "bpp"])

    mean_bpp = conditions.groupby("condition", sort=False)["bpp"].mean()
    codec_of = conditions.groupby("condition", sort=False)["codec"].first()
    rate_factor = codec_of.map(RATE_FACTORS).astype(float)
    elo = ELO_PER_LN_BPP * (np.log(mean_bpp) - np.log(rate_factor))
    true_elo = elo - elo.mean()

    labels = true_elo.index.to_numpy()
    k = len(labels)
    a = rng.integers(0, k, n_votes)
    b = (a + rng.integers(1, k, n_votes)) % k  # uniform over the other conditions
    diff = true_elo.to_numpy()[a] - true_elo.to_numpy()[b]
    a_wins = rng.random(n_votes) < 1.0 / (1.0 + 10.0 ** (-diff / 400.0))
    votes = pd.DataFrame(
        {
            "rater": [f"r{i:02d}" for i in rng.integers(0, n_raters, n_votes)],
            "image": rng.choice(images, n_votes),
            "condition_a": labels[a],
            "condition_b": labels[b],
            "choice": np.where(a_wins, "a", "b"),
            "golden": 0,
            "response_ms": rng.integers(1500, 9000, n_votes),
        }
    )
    if n_golden:
        golden = pd.DataFrame(
            {
                "rater": [f"r{i:02d}" for i in rng.integers(0, n_raters, n_golden)],
                "image": rng.choice(images, n_golden),
                "condition_a": GOLDEN_PAIR[0],
                "condition_b": GOLDEN_PAIR[1],
                "choice": "a",
                "golden": 1,
                "response_ms": rng.integers(1500, 9000, n_golden),
            }
        )
        votes = pd.concat([votes, golden], ignore_index=True)
        votes = votes.iloc[rng.permutation(len(votes))].reset_index(drop=True)
    true_bd = {codec: (f - 1.0) * 100.0 for codec, f in RATE_FACTORS.items() if codec != ANCHOR}
    return SimulatedStudy(votes, conditions, ANCHOR, true_elo, true_bd, n_golden)


@pytest.fixture(scope="session")
def simulate() -> Callable[..., SimulatedStudy]:
    """The simulator, for tests that need a data set of their own."""
    return simulate_study


@pytest.fixture(scope="session")
def simulated_study() -> SimulatedStudy:
    """The shared simulated study: 2,000 counted votes and 60 golden ones."""
    return simulate_study(seed=SIMULATION_SEED, n_votes=2000, n_golden=60)


@pytest.fixture(scope="session")
def fitted_study(simulated_study: SimulatedStudy) -> FitResult:
    """The one real fit of the session, with default sampler settings."""
    return fit_study(
        simulated_study.votes, simulated_study.conditions, anchor=ANCHOR, seed=FIT_SEED
    )
