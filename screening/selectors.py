"""Reads for researchers: how a study's raters fared in screening."""

from __future__ import annotations

from collections import Counter
from typing import Any

from screening import services
from screening.models import SCREENING_VERSION, DisplayCheck, ScreeningAttempt
from studies.models import RaterSession, SessionStatus, Study

# Viewport widths (CSS pixels) are reported in these bins.
VIEWPORT_BINS = (800, 1024, 1280, 1440, 1680, 1920, 2560)


def _viewport_bin(width: int) -> str:
    lower = 0
    for edge in VIEWPORT_BINS:
        if width < edge:
            return f"{lower}–{edge - 1}"
        lower = edge
    return f"≥ {VIEWPORT_BINS[-1]}"


def screening_stats(study: Study) -> dict[str, Any]:
    """Pass rates per test, the distribution of artifact thresholds, the display mix."""
    policy = services.policy_for(study)
    sessions = RaterSession.objects.filter(study=study)
    attempts = ScreeningAttempt.objects.filter(
        rater__sessions__study=study, version=SCREENING_VERSION
    ).prefetch_related("plates")
    colour_done = [a for a in attempts if a.colour_finished_at is not None]
    artifact_done = [a for a in attempts if a.artifacts_finished_at is not None]
    checks = DisplayCheck.objects.filter(session__study=study)
    accepted = checks.filter(accepted=True)
    thresholds = sorted(a.artifact_threshold for a in artifact_done if a.artifact_threshold)
    return {
        "version": SCREENING_VERSION,
        "policy": policy,
        "sessions": sessions.count(),
        "admitted": sessions.filter(screening_passed_at__isnull=False).count(),
        "screened_out": sessions.filter(status=SessionStatus.SCREENED_OUT).count(),
        "colour_taken": len(colour_done),
        "colour_passed": sum(services.colour_passed(a, policy) for a in colour_done),
        "artifacts_taken": len(artifact_done),
        "artifacts_passed": sum(services.artifacts_passed(a, policy) for a in artifact_done),
        "threshold_histogram": sorted(Counter(round(t) for t in thresholds).items()),
        "thresholds": thresholds,
        "display_checks": checks.count(),
        "display_refused": checks.filter(accepted=False).count(),
        "device_pixel_ratios": sorted(
            Counter(round(c.device_pixel_ratio, 2) for c in accepted).items()
        ),
        "viewports": sorted(Counter(_viewport_bin(c.viewport_width) for c in accepted).items()),
    }
