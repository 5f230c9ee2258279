"""The display rule: can this browser show the study's images at 1:1 device pixels?

Plain functions of plain numbers, so the rule is testable and documented in
one place (docs/screening.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The comparison page shows up to three images side by side (original, A, B);
# the flip modes show two or one.
PANELS_SIDE_BY_SIDE = 3
# CSS pixels the page needs beside the images: gaps and margins across,
# question, buttons and progress bar down.
LAYOUT_EXTRA_WIDTH_CSS = 64
LAYOUT_EXTRA_HEIGHT_CSS = 200
# Fewer bits than 8 per channel would band the images by itself.
MIN_COLOR_DEPTH_BITS = 24


@dataclass(frozen=True)
class DisplayReport:
    device_pixel_ratio: float
    viewport_width: int
    viewport_height: int
    screen_width: int
    screen_height: int
    color_depth: int
    zoom: float | None = None


@dataclass(frozen=True)
class DisplayVerdict:
    accepted: bool
    reason: str
    needed_width: int
    needed_height: int


def required_viewport(
    *,
    image_width: int,
    image_height: int,
    device_pixel_ratio: float,
    panels: int = PANELS_SIDE_BY_SIDE,
) -> tuple[int, int]:
    """CSS pixels needed to show ``panels`` images of this size at 1:1 device pixels."""
    panel_w = math.ceil(image_width / device_pixel_ratio)
    panel_h = math.ceil(image_height / device_pixel_ratio)
    return (panels * panel_w + LAYOUT_EXTRA_WIDTH_CSS, panel_h + LAYOUT_EXTRA_HEIGHT_CSS)


def judge_display(
    report: DisplayReport,
    *,
    shown_width: int,
    shown_height: int,
    panels: int = PANELS_SIDE_BY_SIDE,
) -> DisplayVerdict:
    """Accept the display when the shown images fit the viewport pixel for pixel.

    ``shown_width`` and ``shown_height`` are the largest image (or crop) the
    study shows, in image pixels; ``panels`` how many are side by side.
    """
    need_w, need_h = required_viewport(
        image_width=shown_width,
        image_height=shown_height,
        device_pixel_ratio=report.device_pixel_ratio,
        panels=panels,
    )
    if report.color_depth < MIN_COLOR_DEPTH_BITS:
        return DisplayVerdict(
            False,
            f"Your display shows {report.color_depth}-bit colour; at least "
            f"{MIN_COLOR_DEPTH_BITS}-bit is needed.",
            need_w,
            need_h,
        )
    if report.viewport_width < need_w or report.viewport_height < need_h:
        return DisplayVerdict(
            False,
            f"The browser window is {report.viewport_width}×{report.viewport_height} "
            f"and the study needs at least {need_w}×{need_h} (at this zoom level). "
            "Maximise the window, reset the zoom to 100% (Ctrl+0 or Cmd+0) and check again.",
            need_w,
            need_h,
        )
    return DisplayVerdict(True, "", need_w, need_h)
