"""What raters' browsers reported in screening, and what the server decided."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from studies.models import RaterSession


class DisplayCheck(models.Model):
    """One report of a rater's display; a refused display may be checked again."""

    session = models.ForeignKey(
        RaterSession, on_delete=models.CASCADE, related_name="display_checks"
    )
    device_pixel_ratio = models.FloatField()
    viewport_width = models.PositiveIntegerField(help_text="CSS pixels.")
    viewport_height = models.PositiveIntegerField(help_text="CSS pixels.")
    screen_width = models.PositiveIntegerField(help_text="CSS pixels.")
    screen_height = models.PositiveIntegerField(help_text="CSS pixels.")
    color_depth = models.PositiveIntegerField(help_text="Bits per pixel.")
    accepted = models.BooleanField()
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(device_pixel_ratio__gt=0), name="display_check_dpr_positive"
            ),
        ]

    def __str__(self) -> str:
        verdict = "accepted" if self.accepted else "refused"
        return f"display check of {self.session} ({verdict})"
