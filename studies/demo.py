"""The demo study: real photographs, real codecs, nothing downloaded.

The photographs ship inside scikit-image's wheel; one more image is drawn
here with text and sharp graphics, the content where codecs differ most.
Every image is centre-cropped to at most ``DEMO_MAX_SIDE`` pixels a side so
that the whole demo encodes in about a minute on a laptop.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from studies.ladder import Ladder

DEMO_SLUG = "demo"
DEMO_TITLE = "Codec Arena demo: JPEG, WebP, AVIF and JPEG XL"
DEMO_RESEARCHER = "researcher"
DEMO_ANCHOR = "jpeg"
DEMO_COMPLETION_CODE = "DEMO-COMPLETE"
DEMO_TRIALS_PER_SESSION = 20
DEMO_MAX_SIDE = 512
# Seeds the demo's pair schedule, sides and crops, so every build behaves alike.
DEMO_SEED = 2026

# Four rate points per codec between about 0.1 and 1 bpp. The ladders differ
# because the codecs differ: JPEG needs more bits for the same quality, and
# JPEG XL and WebP cannot go below about 0.26 and 0.18 bpp on the busiest demo
# photograph; AVIF gets the lowest rates. Spread this way, the codecs' quality
# ranges overlap, which BD-rate needs.
DEMO_LADDERS = (
    Ladder("jpeg", (0.3, 0.5, 0.75, 1.0)),
    Ladder("webp", (0.2, 0.3, 0.5, 0.8)),
    Ladder("avif", (0.15, 0.25, 0.4, 0.6)),
    Ladder("jxl", (0.3, 0.45, 0.65, 0.9)),
)

GRAPHICS_SIZE = (512, 384)


def _centre_crop(rgb: np.ndarray, max_side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    h, w = min(height, max_side), min(width, max_side)
    top, left = (height - h) // 2, (width - w) // 2
    return np.ascontiguousarray(rgb[top : top + h, left : left + w, :3])


def graphics_image() -> np.ndarray:
    """A synthetic screen-content image: text of several sizes, thin lines, flat colours
    and a smooth gradient (where codecs show ringing, blur and banding)."""
    width, height = GRAPHICS_SIZE
    x = np.linspace(0.0, 1.0, width)[None, :, None]
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    gradient = np.concatenate([0.15 + 0.7 * x + 0 * y, 0.3 + 0.4 * y + 0 * x, 0.8 - 0.5 * x * y], 2)
    canvas = Image.fromarray((np.clip(gradient, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((16, 16, width - 16, 150), fill=(250, 250, 246), outline=(20, 20, 20), width=2)
    for size, (top, text) in zip(
        (30, 18, 12),
        (
            (22, "Codec Arena 2026"),
            (62, "Sharp edges, thin lines & small text"),
            (90, "0123456789 ~ The quick brown fox jumps over the lazy dog."),
        ),
        strict=True,
    ):
        draw.text((28, top), text, fill=(10, 10, 10), font=ImageFont.load_default(size=size))
    draw.text(
        (28, 112), "RED  GREEN  BLUE", fill=(200, 20, 30), font=ImageFont.load_default(size=18)
    )
    # A bar chart with 1-pixel grid lines.
    for i in range(9):
        gx = 40 + i * 50
        draw.line((gx, 170, gx, height - 20), fill=(255, 255, 255), width=1)
    palette = [(220, 50, 47), (38, 139, 210), (133, 153, 0), (181, 137, 0), (108, 113, 196)]
    for i, colour in enumerate(palette):
        top = 180 + i * 36
        draw.rectangle((40, top, 90 + 70 * (i + 1), top + 24), fill=colour, outline=(0, 0, 0))
    # Concentric circles and a checkerboard: aliasing and ringing targets.
    for r in range(6, 70, 6):
        draw.ellipse((400 - r, 260 - r, 400 + r, 260 + r), outline=(0, 0, 0), width=1)
    for i in range(8):
        for j in range(8):
            if (i + j) % 2 == 0:
                draw.rectangle((440 + i * 8, 165 + j * 8, 447 + i * 8, 172 + j * 8), fill=(0, 0, 0))
    return np.asarray(canvas, dtype=np.uint8)


def _photographs() -> dict[str, Callable[[], np.ndarray]]:
    from skimage import data

    return {
        "astronaut": data.astronaut,
        "chelsea": data.chelsea,
        "coffee": data.coffee,
        "rocket": data.rocket,
        "motorcycle": lambda: data.stereo_motorcycle()[0],
    }


def demo_images() -> dict[str, np.ndarray]:
    """The demo's source images by name, RGB uint8, at most DEMO_MAX_SIDE a side."""
    images = {name: _centre_crop(load(), DEMO_MAX_SIDE) for name, load in _photographs().items()}
    images["graphics"] = graphics_image()
    return images


def researcher_password(credentials_file: Path) -> tuple[str, bool]:
    """The demo researcher's password, created on first use; returns (password, created)."""
    if credentials_file.exists():
        return credentials_file.read_text(encoding="utf-8").strip(), False
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    credentials_file.touch(mode=0o600)
    credentials_file.write_text(password + "\n", encoding="utf-8")
    return password, True
