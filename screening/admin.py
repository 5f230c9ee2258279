from __future__ import annotations

from django.contrib import admin

from screening.models import DisplayCheck
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
