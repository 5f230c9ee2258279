from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from studies.models import (
    Condition,
    ConditionIssueCount,
    Exclusion,
    Fit,
    PairIssueCount,
    PlannerRefresh,
    Rater,
    RaterSession,
    SourceImage,
    Stimulus,
    Study,
    StudyBuild,
    Trial,
    Vote,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For the record of what raters saw and answered: viewable, never editable."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "owner", "status", "anchor_codec", "created_at"]
    list_filter = ["status"]
    search_fields = ["slug", "title"]


@admin.register(SourceImage)
class SourceImageAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "width", "height"]
    list_filter = ["study"]
    readonly_fields = ["token", "sha256", "width", "height"]


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "codec", "rate_index", "target_bpp"]
    list_filter = ["study", "codec"]


@admin.register(Stimulus)
class StimulusAdmin(ReadOnlyAdmin):
    list_display = ["condition", "source_image", "bpp", "bitstream_bytes", "codec_library"]
    list_filter = ["condition__study", "condition__codec"]


@admin.register(PairIssueCount)
class PairIssueCountAdmin(ReadOnlyAdmin):
    """Kept by the service that issues trials; editing it would unbalance the schedule."""

    list_display = ["study", "source_image", "condition_low", "condition_high", "issued"]
    list_filter = ["study"]


@admin.register(ConditionIssueCount)
class ConditionIssueCountAdmin(ReadOnlyAdmin):
    """Kept by the service that issues trials, beside the pair counts."""

    list_display = ["study", "source_image", "condition", "issued"]
    list_filter = ["study"]


@admin.register(Rater)
class RaterAdmin(ReadOnlyAdmin):
    list_display = ["platform", "external_id", "created_at"]
    search_fields = ["external_id"]


@admin.register(RaterSession)
class RaterSessionAdmin(ReadOnlyAdmin):
    list_display = ["study", "rater", "status", "trials_total", "started_at", "completed_at"]
    list_filter = ["study", "status"]
    exclude = ["token"]


@admin.register(Trial)
class TrialAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "session", "position", "source_image", "is_golden", "issued_at"]
    list_filter = ["session__study", "is_golden"]


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["trial", "choice", "response_ms", "flips", "created_at"]
    list_filter = ["trial__session__study", "choice"]


@admin.register(Fit)
class FitAdmin(ReadOnlyAdmin):
    list_display = ["pk", "study", "status", "n_votes", "created_at", "finished_at"]
    list_filter = ["study", "status"]


@admin.register(PlannerRefresh)
class PlannerRefreshAdmin(ReadOnlyAdmin):
    """Background refreshes of a study's posterior; the stored planner is not shown."""

    list_display = ["pk", "study", "status", "n_votes", "created_at", "finished_at"]
    list_filter = ["status"]
    exclude = ["planner"]


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin):
    list_display = ["study", "rater", "excluded_by", "reason", "created_at"]
    list_filter = ["study"]
    readonly_fields = ["created_at"]


@admin.register(StudyBuild)
class StudyBuildAdmin(ReadOnlyAdmin):
    list_display = ["study", "status", "done", "total", "created_at", "finished_at"]
    list_filter = ["status"]
