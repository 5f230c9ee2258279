"""Colour plates: seeded, and they test colour vision (dichromat simulations).

The contrast measure is CIEDE2000 between the mean CIELAB colour of the
figure's dots and of the ground's dots. Dichromacy is simulated by libraries
independent of the generator: Machado, Oliveira & Fernandes (2009) through
colorspacious, and Brettel, Viénot & Mollon (1997) through DaltonLens.
Machado's model is known to be unreliable for tritanopia (DaltonLens' own
review says so), so tritan plates are checked with Brettel's only.
"""

from __future__ import annotations

import numpy as np
import pytest

from screening.plates import (
    LUMINANCE,
    PlateKind,
    generate_plate,
    normalise_answer,
    plate_answer,
    srgb_to_linear,
)

colorspacious = pytest.importorskip("colorspacious")
simulate = pytest.importorskip("daltonlens.simulate")
skcolor = pytest.importorskip("skimage.color")

SEEDS = (11, 22, 33, 44)
# Normal vision must see the figure clearly; the targeted dichromat must not
# (a CIEDE2000 of about 2 is a just noticeable difference).
NORMAL_MIN_DELTA_E = 6.0
DICHROMAT_MAX_DELTA_E = 2.0
DEMONSTRATION_MIN_DELTA_E = 20.0
# Brightness must not give the figure away: the standardised difference of
# the dots' luminance (Cohen's d) stays small.
MAX_LUMINANCE_EFFECT = 0.5

MACHADO = {"protan": "protanomaly", "deutan": "deuteranomaly", "tritan": "tritanomaly"}
BRETTEL = {
    "protan": simulate.Deficiency.PROTAN,
    "deutan": simulate.Deficiency.DEUTAN,
    "tritan": simulate.Deficiency.TRITAN,
}


def _contrast(colours: np.ndarray, in_figure: np.ndarray) -> float:
    lab = skcolor.rgb2lab(np.clip(colours, 0, 1)[None])[0]
    figure, ground = lab[in_figure].mean(axis=0), lab[~in_figure].mean(axis=0)
    return float(skcolor.deltaE_ciede2000(figure[None], ground[None])[0])


def _machado(colours: np.ndarray, deficiency: str) -> np.ndarray:
    space = {"name": "sRGB1+CVD", "cvd_type": MACHADO[deficiency], "severity": 100}
    return np.clip(colorspacious.cspace_convert(colours, space, "sRGB1"), 0, 1)


def _brettel(colours: np.ndarray, deficiency: str) -> np.ndarray:
    image = (np.clip(colours, 0, 1) * 255).round().astype(np.uint8)[None]
    simulated = simulate.Simulator_Brettel1997().simulate_cvd(
        image, BRETTEL[deficiency], severity=1.0
    )
    return simulated[0] / 255.0


def test_the_same_seed_draws_the_same_plate() -> None:
    for kind in PlateKind:
        first, second = generate_plate(kind, 5), generate_plate(kind, 5)
        assert first.png() == second.png()
        assert first.answer == plate_answer(kind, 5)
    assert generate_plate("protan", 5).png() != generate_plate("protan", 6).png()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["protan", "deutan", "tritan"])
def test_normal_vision_sees_the_figure_and_the_dichromat_does_not(kind: str, seed: int) -> None:
    plate = generate_plate(kind, seed)
    colours, figure = plate.dot_colours, plate.dot_in_figure
    assert figure.sum() > 30 and (~figure).sum() > 200
    assert _contrast(colours, figure) >= NORMAL_MIN_DELTA_E
    assert _contrast(_brettel(colours, kind), figure) <= DICHROMAT_MAX_DELTA_E
    if kind != "tritan":
        assert _contrast(_machado(colours, kind), figure) <= DICHROMAT_MAX_DELTA_E


@pytest.mark.parametrize("seed", SEEDS)
def test_red_green_plates_stay_legible_for_a_tritanope(seed: int) -> None:
    """They test red-green vision only: a blue-yellow deficiency does not hide them."""
    for kind in ("protan", "deutan"):
        plate = generate_plate(kind, seed)
        simulated = _brettel(plate.dot_colours, "tritan")
        assert _contrast(simulated, plate.dot_in_figure) >= NORMAL_MIN_DELTA_E / 2


@pytest.mark.parametrize("seed", SEEDS)
def test_everyone_reads_the_demonstration_plate(seed: int) -> None:
    plate = generate_plate("demonstration", seed)
    assert _contrast(plate.dot_colours, plate.dot_in_figure) >= DEMONSTRATION_MIN_DELTA_E
    for deficiency in ("protan", "deutan", "tritan"):
        simulated = _brettel(plate.dot_colours, deficiency)
        assert _contrast(simulated, plate.dot_in_figure) >= DEMONSTRATION_MIN_DELTA_E


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["protan", "deutan", "tritan"])
def test_brightness_does_not_reveal_the_figure(kind: str, seed: int) -> None:
    plate = generate_plate(kind, seed)
    luminance = srgb_to_linear(plate.dot_colours) @ LUMINANCE
    figure, ground = luminance[plate.dot_in_figure], luminance[~plate.dot_in_figure]
    effect = (figure.mean() - ground.mean()) / luminance.std()
    assert abs(effect) <= MAX_LUMINANCE_EFFECT


def test_the_figure_is_the_number_of_the_answer() -> None:
    """A crude reading: the figure's dots span more width for two digits than for one."""
    widths: dict[int, list[int]] = {}
    for seed in range(40):
        plate = generate_plate("demonstration", seed)
        ys, xs = np.nonzero(np.all(np.abs(plate.image.astype(int) - (64, 80, 107)) < 40, axis=2))
        widths.setdefault(len(plate.answer), []).append(int(np.ptp(xs)))
    assert set(widths) == {1, 2}
    assert min(widths[2]) > max(widths[1])


@pytest.mark.parametrize(
    ("typed", "expected"),
    [(" 12 ", "12"), ("nothing", "nothing"), ("", "nothing"), ("I see 8", "8"), ("7.", "7")],
)
def test_answers_are_compared_as_digits(typed: str, expected: str) -> None:
    assert normalise_answer(typed) == expected
