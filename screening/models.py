"""What raters' browsers reported in screening, and what the server decided."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from studies.models import RaterSession, new_image_token


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
    zoom = models.FloatField(
        null=True, blank=True, help_text="Browser zoom estimate (outer / inner width)."
    )
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


# The version of the screening tests. Raters take the screening once per
# version (whatever the study); change it when a test changes meaningfully.
SCREENING_VERSION = "2026.1"


class ScreeningPolicy(models.Model):
    """What a study asks of its raters (every study has one, with these defaults)."""

    # Default cut-off of the artifact test: the rater must reliably see
    # artifacts at level 3 (0.19 bpp on 256-pixel items) or subtler.
    DEFAULT_ARTIFACT_CUTOFF_LEVEL = 3

    study = models.OneToOneField(
        "studies.Study", on_delete=models.CASCADE, related_name="screening_policy"
    )
    require_colour = models.BooleanField(
        default=True, help_text="Demonstration plate and every red-green plate right."
    )
    require_tritan = models.BooleanField(
        default=False, help_text="Also every blue-yellow (tritan) plate right."
    )
    require_artifacts = models.BooleanField(default=True)
    artifact_cutoff_level = models.FloatField(
        default=DEFAULT_ARTIFACT_CUTOFF_LEVEL,
        help_text="Pass when the detection threshold is at this level or subtler.",
    )

    def __str__(self) -> str:
        return f"screening policy of {self.study}"


class ScreeningAttempt(models.Model):
    """A rater's one screening per version: the plates, the artifact items, the results."""

    rater = models.ForeignKey(
        "studies.Rater", on_delete=models.PROTECT, related_name="screening_attempts"
    )
    version = models.CharField(max_length=32, default=SCREENING_VERSION)
    seed = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    colour_finished_at = models.DateTimeField(null=True, blank=True)
    artifacts_finished_at = models.DateTimeField(null=True, blank=True)
    artifact_threshold = models.FloatField(
        null=True, blank=True, help_text="Staircase level (0 = most severe)."
    )
    artifact_threshold_bpp = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rater", "version"], name="one_screening_per_version"),
        ]

    def __str__(self) -> str:
        return f"screening {self.version} of {self.rater}"


class PlateKindChoice(models.TextChoices):
    DEMONSTRATION = "demonstration", "Demonstration"
    PROTAN = "protan", "Red-green (protan)"
    DEUTAN = "deutan", "Red-green (deutan)"
    TRITAN = "tritan", "Blue-yellow (tritan)"


class PlateItem(models.Model):
    """One colour plate shown to a rater, and what they answered."""

    Kind = PlateKindChoice

    attempt = models.ForeignKey(ScreeningAttempt, on_delete=models.CASCADE, related_name="plates")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    seed = models.PositiveBigIntegerField()
    expected = models.CharField(max_length=16, help_text="Never sent to the browser.")
    token = models.CharField(max_length=64, unique=True, default=new_image_token)
    shown_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=32, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    correct = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "position"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "position"], name="plate_position_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=PlateKindChoice.values), name="plate_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} plate {self.position} of {self.attempt}"


class ScreeningImage(models.Model):
    """An original of the artifact test (never a study image)."""

    version = models.CharField(max_length=32)
    name = models.SlugField(max_length=64)
    file = models.FileField(upload_to="screening/")
    token = models.CharField(max_length=64, unique=True, default=new_image_token)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="screening_image_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.version})"


class ArtifactItem(models.Model):
    """A compressed version of a screening image at one severity level."""

    image = models.ForeignKey(ScreeningImage, on_delete=models.CASCADE, related_name="items")
    level = models.PositiveSmallIntegerField(help_text="0 = most severe.")
    codec = models.CharField(max_length=32)
    bpp = models.FloatField()
    file = models.FileField(upload_to="screening/")
    token = models.CharField(max_length=64, unique=True, default=new_image_token)

    class Meta:
        ordering = ["level", "image", "codec"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "level", "codec"], name="artifact_item_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image.name} {self.codec} level {self.level}"


class ArtifactTrial(models.Model):
    """One item of a rater's staircase: original beside compressed, which is which."""

    class Side(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"

    attempt = models.ForeignKey(
        ScreeningAttempt, on_delete=models.CASCADE, related_name="artifact_trials"
    )
    position = models.PositiveIntegerField()
    level = models.PositiveSmallIntegerField()
    item = models.ForeignKey(ArtifactItem, on_delete=models.PROTECT, related_name="+")
    token = models.CharField(
        max_length=64, unique=True, default=new_image_token, help_text="Names its two images."
    )
    compressed_side = models.CharField(max_length=8, choices=Side.choices)
    shown_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=8, choices=Side.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    correct = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt", "position"], name="artifact_trial_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"artifact item {self.position} of {self.attempt}"
