"""Pseudo-isochromatic plates, generated (not copied from Ishihara's).

A plate is a disc of dots of random sizes. The dots inside a number's outline
(the figure) and the others (the ground) take two colours that differ only
along one dichromat's confusion line — only in the L (protan), M (deutan) or
S (tritan) cone response — so a dichromat of that type sees one colour where
normal vision sees two. The two colours have nearly the same luminance, and
every dot's brightness is jittered at random, so the figure cannot be found
by brightness. The demonstration plate instead differs in luminance and in
all three cones: everyone can read it.

Cone responses follow Viénot, Brettel and Mollon (1999), "Digital video
colourmaps for checking the legibility of displays by dichromats": linear sRGB
to LMS with the Smith and Pokorny fundamentals. docs/screening.md shows, with
simulations by Machado et al. (2009) and Brettel et al. (1997) from other
libraries, that the figure vanishes for the dichromat each plate targets.

Everything is a function of (kind, seed): the same seed draws the same plate.
"""

from __future__ import annotations

import enum
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from skimage.color import deltaE_ciede2000, rgb2lab

# Viénot, Brettel & Mollon (1999), eq. 2: linear RGB -> LMS (Smith & Pokorny).
RGB_TO_LMS = np.array(
    [
        [17.8824, 43.5161, 4.11935],
        [3.45565, 27.1554, 3.86714],
        [0.0299566, 0.184309, 1.46709],
    ]
)
LMS_TO_RGB = np.linalg.inv(RGB_TO_LMS)
# Rec. 709 / sRGB luminance of linear RGB.
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])

PLATE_SIZE = 400  # pixels, square
DISC_MARGIN = 6
BACKGROUND = (236, 236, 236)
DOT_RADIUS_RANGE = (3.0, 8.5)  # pixels
DOT_GAP = 1.2  # pixels between dots
DOT_ATTEMPTS = 30_000
# Each dot's linear-light intensity is scaled by a factor drawn from
# 1 ± LUMINANCE_JITTER, far more than the figure/ground luminance mismatch.
LUMINANCE_JITTER = 0.2
MAX_LUMINANCE_MISMATCH = 0.02
# Colours are kept away from the gamut's edges so the jitter never clips.
GAMUT_MARGIN = 0.16
COLOUR_CANDIDATES = 4000
# The number's strokes are thickened so that several dots fall inside them.
FIGURE_FONT_SIZE = 230
FIGURE_STROKE_GROWTH = 17  # MaxFilter size, pixels
# Numbers shown: no 1s (too thin to read in dots), no ambiguous pairs.
ANSWERS = ("2", "3", "5", "6", "8", "9", "12", "15", "26", "29", "35", "42", "57", "74", "96")


class PlateKind(enum.StrEnum):
    DEMONSTRATION = "demonstration"
    PROTAN = "protan"
    DEUTAN = "deutan"
    TRITAN = "tritan"

    @property
    def cone(self) -> int | None:
        """Index of the LMS cone the figure/ground difference lies on (None: all)."""
        return {"protan": 0, "deutan": 1, "tritan": 2}.get(self.value)


@dataclass(frozen=True)
class Plate:
    kind: PlateKind
    seed: int
    answer: str
    image: np.ndarray  # uint8 (PLATE_SIZE, PLATE_SIZE, 3)
    dot_colours: np.ndarray  # float sRGB in [0, 1], one row per dot
    dot_in_figure: np.ndarray  # bool, one per dot
    ground: np.ndarray  # base sRGB colours before jitter
    figure: np.ndarray

    def png(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.image, "RGB").save(buffer, format="PNG", optimize=False)
        return buffer.getvalue()


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=float), 0.0, None)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def _confusion_colours(kind: PlateKind, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ground and figure colours (sRGB) on one confusion line, of equal luminance.

    For random ground colours, the figure changes only the plate's cone, by
    as much as the luminance tolerance allows (luminance is linear in the cone
    response). Of the pairs that stay well inside the gamut, the one farthest
    apart for normal vision (CIEDE2000) is taken.
    """
    cone = kind.cone
    if cone is None:
        raise ValueError(f"{kind} plates have no confusion line")
    lo, hi = GAMUT_MARGIN, 1.0 - GAMUT_MARGIN
    ground = rng.uniform(lo, hi, size=(COLOUR_CANDIDATES, 3))
    ground_linear = srgb_to_linear(ground)
    lms = ground_linear @ RGB_TO_LMS.T
    # Luminance per unit of this cone's response, and the largest cone change
    # (as a fraction of the ground's response) within the luminance tolerance.
    luminance_per_cone = float(LUMINANCE @ LMS_TO_RGB[:, cone])
    y_ground = ground_linear @ LUMINANCE
    limit = MAX_LUMINANCE_MISMATCH * y_ground / np.abs(lms[:, cone] * luminance_per_cone)
    change = rng.choice([-1.0, 1.0], COLOUR_CANDIDATES) * np.minimum(limit, 1.5)
    figure_lms = lms.copy()
    figure_lms[:, cone] *= 1.0 + change
    figure_linear = figure_lms @ LMS_TO_RGB.T
    figure = linear_to_srgb(figure_linear)
    ok = np.all(figure_linear >= 0, axis=1) & np.all((figure >= lo) & (figure <= hi), axis=1)
    if not ok.any():  # pragma: no cover - never seen with COLOUR_CANDIDATES draws
        raise RuntimeError(f"no {kind} colour pair found for this seed")
    difference = deltaE_ciede2000(rgb2lab(ground[None])[0], rgb2lab(figure[None])[0])
    best = int(np.argmax(np.where(ok, difference, -1.0)))
    return ground[best], figure[best]


def _demonstration_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A light warm ground and a dark blue-grey figure: different to every eye."""
    ground = np.array([0.86, 0.72, 0.55]) + rng.uniform(-0.04, 0.04, 3)
    figure = np.array([0.25, 0.32, 0.42]) + rng.uniform(-0.04, 0.04, 3)
    return ground, figure


def _figure_mask(answer: str) -> np.ndarray:
    mask = Image.new("L", (PLATE_SIZE, PLATE_SIZE), 0)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=FIGURE_FONT_SIZE)
    left, top, right, bottom = draw.textbbox((0, 0), answer, font=font)
    x = (PLATE_SIZE - (right - left)) / 2 - left
    y = (PLATE_SIZE - (bottom - top)) / 2 - top
    draw.text((x, y), answer, fill=255, font=font)
    mask = mask.filter(ImageFilter.MaxFilter(FIGURE_STROKE_GROWTH))
    return np.asarray(mask) > 127


def _pack_dots(rng: np.random.Generator) -> np.ndarray:
    """Non-overlapping dots filling the disc: rows of (x, y, radius)."""
    centre = PLATE_SIZE / 2
    radius = centre - DISC_MARGIN
    cell = 2 * DOT_RADIUS_RANGE[1] + DOT_GAP
    n_cells = math.ceil(PLATE_SIZE / cell) + 1
    grid: dict[tuple[int, int], list[int]] = {}
    dots: list[tuple[float, float, float]] = []
    xs = rng.uniform(0, PLATE_SIZE, DOT_ATTEMPTS)
    ys = rng.uniform(0, PLATE_SIZE, DOT_ATTEMPTS)
    # Large dots first, then ever smaller ones fill the gaps.
    rs = np.sort(rng.uniform(*DOT_RADIUS_RANGE, DOT_ATTEMPTS))[::-1]
    for x, y, r in zip(xs, ys, rs, strict=True):
        if math.hypot(x - centre, y - centre) + r > radius:
            continue
        cx, cy = int(x // cell), int(y // cell)
        clear = True
        for gx in range(max(cx - 1, 0), min(cx + 2, n_cells)):
            for gy in range(max(cy - 1, 0), min(cy + 2, n_cells)):
                for i in grid.get((gx, gy), ()):
                    ox, oy, orad = dots[i]
                    if math.hypot(x - ox, y - oy) < r + orad + DOT_GAP:
                        clear = False
                        break
                if not clear:
                    break
            if not clear:
                break
        if clear:
            grid.setdefault((cx, cy), []).append(len(dots))
            dots.append((float(x), float(y), float(r)))
    return np.array(dots)


def _plate_rng(kind: PlateKind, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, list(PlateKind).index(kind)])


def plate_answer(kind: PlateKind | str, seed: int) -> str:
    """The number on the plate of this kind and seed, without drawing the plate."""
    return str(_plate_rng(PlateKind(kind), seed).choice(ANSWERS))


def generate_plate(kind: PlateKind | str, seed: int) -> Plate:
    """Draw the plate of this kind and seed (the same arguments give the same plate)."""
    kind = PlateKind(kind)
    rng = _plate_rng(kind, seed)
    answer = str(rng.choice(ANSWERS))
    if kind == PlateKind.DEMONSTRATION:
        ground, figure = _demonstration_colours(rng)
    else:
        ground, figure = _confusion_colours(kind, rng)
    mask = _figure_mask(answer)
    dots = _pack_dots(rng)
    in_figure = mask[
        np.clip(dots[:, 1].astype(int), 0, PLATE_SIZE - 1),
        np.clip(dots[:, 0].astype(int), 0, PLATE_SIZE - 1),
    ]
    base = np.where(in_figure[:, None], figure, ground)
    jitter = rng.uniform(1 - LUMINANCE_JITTER, 1 + LUMINANCE_JITTER, len(dots))
    colours = np.clip(linear_to_srgb(srgb_to_linear(base) * jitter[:, None]), 0, 1)

    canvas = Image.new("RGB", (PLATE_SIZE, PLATE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for (x, y, r), colour in zip(dots, colours, strict=True):
        fill = tuple(int(round(255 * c)) for c in colour)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    return Plate(
        kind=kind,
        seed=seed,
        answer=answer,
        image=np.asarray(canvas, dtype=np.uint8),
        dot_colours=colours,
        dot_in_figure=in_figure,
        ground=ground,
        figure=figure,
    )


def normalise_answer(text: str) -> str:
    """What a rater typed, as compared with the answer: digits only, or 'nothing'."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits or "nothing"
