"""Evidence for docs/screening.md: do the plates test colour vision, does the staircase work?

Run: .venv/bin/python bench/screening.py [--seeds N] [--observers N]

1. For N seeds of each plate kind: CIEDE2000 between the mean colours of the
   figure's and the ground's dots, for normal vision and for simulated
   protanopia, deuteranopia and tritanopia (Machado et al. 2009 through
   colorspacious; Brettel et al. 1997 through DaltonLens), and the luminance
   effect size (Cohen's d) between figure and ground dots.
2. The artifact staircase on N simulated observers with known psychometric
   functions: bias and mean absolute error of the threshold, in levels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import colorspacious  # noqa: E402
from daltonlens import simulate  # noqa: E402
from skimage.color import deltaE_ciede2000, rgb2lab  # noqa: E402

from screening.artifacts import STAIRCASE  # noqa: E402
from screening.plates import LUMINANCE, PlateKind, generate_plate, srgb_to_linear  # noqa: E402
from screening.staircase import TARGET_PROPORTION, replay, threshold  # noqa: E402

MACHADO = {"protan": "protanomaly", "deutan": "deuteranomaly", "tritan": "tritanomaly"}
BRETTEL = {
    "protan": simulate.Deficiency.PROTAN,
    "deutan": simulate.Deficiency.DEUTAN,
    "tritan": simulate.Deficiency.TRITAN,
}


def contrast(colours: np.ndarray, figure: np.ndarray) -> float:
    lab = rgb2lab(np.clip(colours, 0, 1)[None])[0]
    return float(deltaE_ciede2000(lab[figure].mean(0)[None], lab[~figure].mean(0)[None])[0])


def simulated(colours: np.ndarray, model: str, deficiency: str | None) -> np.ndarray:
    assert deficiency is not None
    if model == "machado":
        space = {"name": "sRGB1+CVD", "cvd_type": MACHADO[deficiency], "severity": 100}
        return np.clip(colorspacious.cspace_convert(colours, space, "sRGB1"), 0, 1)
    image = (np.clip(colours, 0, 1) * 255).round().astype(np.uint8)[None]
    out = simulate.Simulator_Brettel1997().simulate_cvd(image, BRETTEL[deficiency], severity=1.0)
    return out[0] / 255.0


def plates_table(seeds: int) -> None:
    print(f"Plates: CIEDE2000 figure vs ground (median [min, max] over {seeds} seeds)")
    columns = [("normal", None, None)] + [
        (f"{d} {m}", m, d) for d in ("protan", "deutan", "tritan") for m in ("machado", "brettel")
    ]
    print("kind".ljust(14) + "".join(name.rjust(22) for name, _, _ in columns) + "  |d| lum max")
    for kind in PlateKind:
        values: dict[str, list[float]] = {name: [] for name, _, _ in columns}
        effects = []
        for seed in range(seeds):
            plate = generate_plate(kind, seed)
            colours, figure = plate.dot_colours, plate.dot_in_figure
            for name, model, deficiency in columns:
                shown = colours if model is None else simulated(colours, model, deficiency)
                values[name].append(contrast(shown, figure))
            y = srgb_to_linear(colours) @ LUMINANCE
            effects.append(abs(y[figure].mean() - y[~figure].mean()) / y.std())
        cells = "".join(
            f"{np.median(v):6.1f} [{min(v):5.1f},{max(v):5.1f}]".rjust(22) for v in values.values()
        )
        print(kind.value.ljust(14) + cells + f"  {max(effects):.2f}")


def staircase_table(observers: int) -> None:
    rng = np.random.default_rng(7)
    slope, lapse = 0.7, 0.02
    errors, items = [], []
    for _ in range(observers):
        midpoint = rng.uniform(1.5, 8.0)
        detect = (TARGET_PROPORTION - 0.5) / (0.5 - lapse)
        truth = midpoint + slope * np.log(1 / detect - 1)
        answers: list[tuple[int, bool]] = []
        while (level := replay(STAIRCASE, answers).next_level) is not None:
            p = 0.5 + (0.5 - lapse) / (1 + np.exp((level - midpoint) / slope))
            answers.append((level, bool(rng.random() < p)))
        errors.append(threshold(STAIRCASE, answers) - truth)
        items.append(len(answers))
    e = np.array(errors)
    print(f"\nStaircase on {observers} simulated observers (slope {slope}, lapse {lapse}):")
    print(f"  bias {e.mean():+.3f} levels, mean |error| {np.abs(e).mean():.3f}, sd {e.std():.3f}")
    print(f"  90% of |errors| below {np.quantile(np.abs(e), 0.9):.2f} levels")
    print(f"  items per rater: median {np.median(items):.0f}, range {min(items)}-{max(items)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--observers", type=int, default=1000)
    args = parser.parse_args()
    plates_table(args.seeds)
    staircase_table(args.observers)


if __name__ == "__main__":
    main()
