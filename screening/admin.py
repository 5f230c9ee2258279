from __future__ import annotations

from django.contrib import admin

from screening.models import (
    ArtifactItem,
    ArtifactTrial,
    DisplayCheck,
    PlateItem,
    ScreeningAttempt,
    ScreeningImage,
    ScreeningPolicy,
)
from studies.admin import ReadOnlyAdmin


@admin.register(DisplayCheck)
class DisplayCheckAdmin(ReadOnlyAdmin):
    list_display = [
        "session",
        "accepted",
        "device_pixel_ratio",
        "viewport_width",
        "viewport_height",
        "created_at",
    ]
    list_filter = ["accepted", "session__study"]


@admin.register(ScreeningPolicy)
class ScreeningPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "study",
        "require_colour",
        "require_tritan",
        "require_artifacts",
        "artifact_cutoff_level",
    ]


@admin.register(ScreeningAttempt)
class ScreeningAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "rater",
        "version",
        "started_at",
        "colour_finished_at",
        "artifacts_finished_at",
        "artifact_threshold",
    ]
    list_filter = ["version"]


@admin.register(PlateItem)
class PlateItemAdmin(ReadOnlyAdmin):
    list_display = ["attempt", "position", "kind", "answer", "correct", "answered_at"]
    list_filter = ["kind", "correct"]


@admin.register(ArtifactTrial)
class ArtifactTrialAdmin(ReadOnlyAdmin):
    list_display = ["attempt", "position", "level", "answer", "correct", "answered_at"]


@admin.register(ScreeningImage)
class ScreeningImageAdmin(ReadOnlyAdmin):
    list_display = ["name", "version"]


@admin.register(ArtifactItem)
class ArtifactItemAdmin(ReadOnlyAdmin):
    list_display = ["image", "level", "codec", "bpp"]
    list_filter = ["level", "codec"]
