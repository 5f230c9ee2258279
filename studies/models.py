"""Studies, their stimuli, the raters who judge them, and what they answered.

The database enforces what must always hold (unique names, one vote per trial,
a vote id used once, positive sizes and rates, two different stimuli in a
trial); services in ``studies.services`` keep the rules that span tables (the
two stimuli of a trial show the same source image of the trial's study).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

# Lengths of the opaque tokens. A session token is a bearer credential; an
# image token only has to be unguessable and the same shape for every image.
SESSION_TOKEN_BYTES = 24
IMAGE_TOKEN_BYTES = 16


# Where Prolific expects a participant who finished (docs: "completion URL").
PROLIFIC_COMPLETION_URL = "https://app.prolific.com/submissions/complete?cc={code}"


def new_session_token() -> str:
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


def new_image_token() -> str:
    return secrets.token_hex(IMAGE_TOKEN_BYTES)


def new_study_seed() -> int:
    return secrets.randbelow(2**31)


class SamplingStrategy(models.TextChoices):
    BALANCED = "balanced", "Balanced random pairs within each image"
    ACTIVE = "active", "Active: the pair that narrows the BD-rate intervals most"


# Choices are module-level classes (each model keeps a nested alias, e.g.
# Study.Status) so that the models' Meta constraints can list their values.


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


class RaterPlatform(models.TextChoices):
    PROLIFIC = "prolific", "Prolific"
    MTURK = "mturk", "Amazon Mechanical Turk"
    DIRECT = "direct", "Direct link"


class StudyDisplayMode(models.TextChoices):
    SIDE_BY_SIDE = "side-by-side", "A, original and B side by side"
    STACKED = "stacked", "A and B in one place, flipped by key; the original beside"
    FLIP = "flip", "Original, A and B in one place, flipped by key"

    @property
    def panels(self) -> int:
        """Images shown side by side in this mode."""
        return {"side-by-side": 3, "stacked": 2, "flip": 1}[self.value]

    @property
    def flips(self) -> bool:
        return self != StudyDisplayMode.SIDE_BY_SIDE


class Study(models.Model):
    Status = StudyStatus

    DisplayMode = StudyDisplayMode

    DEFAULT_QUESTION = "Which image is closer to the original?"
    DEFAULT_TRIALS_PER_SESSION = 30
    # Largest square, in image pixels, shown of each image; larger images are
    # shown as a crop that the server chooses per trial.
    DEFAULT_CROP_SIZE = 384
    # The field's defaults (Google's jpegli study): a choice is accepted after
    # 1 s, and in the flip modes after 3 flips.
    DEFAULT_MIN_VIEW_MS = 1000
    DEFAULT_MIN_FLIPS = 3
    # Share of trials that are golden (attention checks); failing this many of
    # them ends the session (Prolific: two failed checks before a rejection).
    DEFAULT_GOLDEN_RATE = 0.1
    GOLDEN_FAILURES_ALLOWED = 1
    DEFAULT_PRACTICE_TRIALS = 2
    # Counted votes between two background refreshes of the posterior (the active
    # planner, the interval widths and the forecast): a Laplace fit takes 1-3 s, so
    # at a few votes per second a refresh every 200 votes keeps the planner less
    # than a minute behind without keeping the worker busy.
    DEFAULT_REFRESH_EVERY = 200

    SamplingStrategy = SamplingStrategy

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    question = models.CharField(max_length=300, default=DEFAULT_QUESTION)
    instructions = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_studies"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    anchor_codec = models.CharField(
        max_length=64, help_text="Codec that BD-rates are measured against."
    )
    display_mode = models.CharField(
        max_length=32, choices=DisplayMode.choices, default=DisplayMode.SIDE_BY_SIDE
    )
    crop_size = models.PositiveIntegerField(default=DEFAULT_CROP_SIZE)
    trials_per_session = models.PositiveIntegerField(default=DEFAULT_TRIALS_PER_SESSION)
    allow_ties = models.BooleanField(default=False)
    min_view_ms = models.PositiveIntegerField(default=DEFAULT_MIN_VIEW_MS)
    min_flips = models.PositiveIntegerField(
        default=DEFAULT_MIN_FLIPS, help_text="Flips needed before a choice, in the flip modes."
    )
    golden_rate = models.FloatField(
        default=DEFAULT_GOLDEN_RATE, help_text="Share of trials that are attention checks."
    )
    practice_trials = models.PositiveIntegerField(
        default=DEFAULT_PRACTICE_TRIALS, help_text="Uncounted practice trials with feedback."
    )
    pause_every = models.PositiveIntegerField(
        default=0, help_text="Offer a break after this many trials (0: never)."
    )
    screening_required = models.BooleanField(default=True)
    completion_code = models.CharField(
        max_length=64, blank=True, help_text="Code the recruitment platform expects at the end."
    )
    failed_attention_code = models.CharField(
        max_length=64, blank=True, help_text="Code for a session ended by failed golden trials."
    )
    screen_out_code = models.CharField(
        max_length=64, blank=True, help_text="Code for a rater who did not pass screening."
    )
    seed = models.PositiveIntegerField(
        default=new_study_seed, help_text="Seeds pair scheduling, sides and crops."
    )
    platform = models.CharField(
        max_length=16,
        choices=RaterPlatform.choices,
        default=RaterPlatform.PROLIFIC,
        help_text="Where raters are recruited (decides the study link shown).",
    )
    sampling_strategy = models.CharField(
        max_length=16, choices=SamplingStrategy.choices, default=SamplingStrategy.BALANCED
    )
    target_halfwidth = models.FloatField(
        null=True, blank=True, help_text="Wanted half-width of every 95% BD-rate interval, points."
    )
    vote_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="Votes to collect at most."
    )
    refresh_every = models.PositiveIntegerField(
        default=DEFAULT_REFRESH_EVERY,
        help_text="Counted votes between background refreshes of the posterior and forecast.",
    )
    auto_close = models.BooleanField(
        default=False,
        help_text="Close the study when every interval meets the target or at the vote budget.",
    )
    closed_reason = models.CharField(
        max_length=300, blank=True, help_text="Why the study was closed, when it closed itself."
    )
    planner = models.ForeignKey(
        "PlannerRefresh",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The latest refresh whose planner issues the trials of an active study.",
    )
    spec_text = models.TextField(blank=True, help_text="The study definition file, as given.")
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_studies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(trials_per_session__gt=0), name="study_trials_per_session_positive"
            ),
            models.CheckConstraint(condition=Q(crop_size__gt=0), name="study_crop_size_positive"),
            models.CheckConstraint(
                condition=Q(status__in=StudyStatus.values), name="study_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(display_mode__in=StudyDisplayMode.values),
                name="study_display_mode_valid",
            ),
            models.CheckConstraint(
                condition=Q(golden_rate__gte=0) & Q(golden_rate__lt=1),
                name="study_golden_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(sampling_strategy__in=SamplingStrategy.values),
                name="study_sampling_strategy_valid",
            ),
            models.CheckConstraint(
                condition=Q(refresh_every__gt=0), name="study_refresh_every_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    def can_be_seen_by(self, user: Any) -> bool:
        """Owner, invited collaborators and staff may see and run a study."""
        if not user.is_authenticated:
            return False
        return (
            self.owner_id == user.pk
            or user.is_superuser
            or self.collaborators.filter(pk=user.pk).exists()
        )

    @property
    def mode(self) -> StudyDisplayMode:
        return StudyDisplayMode(self.display_mode)

    @property
    def required_flips(self) -> int:
        """Flips a rater must make before choosing (0 where nothing flips)."""
        return self.min_flips if self.mode.flips else 0

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def is_active_sampling(self) -> bool:
        return self.sampling_strategy == SamplingStrategy.ACTIVE

    @property
    def needs_refreshes(self) -> bool:
        """Does the study refresh its posterior in the background: to issue trials
        (strategy ``active``) or to show and apply its stopping rule?"""
        return (
            self.is_active_sampling
            or self.target_halfwidth is not None
            or self.vote_budget is not None
        )


class SourceImage(models.Model):
    """An original image; shown as the reference and compressed by every condition."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="source_images")
    name = models.SlugField(max_length=100)
    file = models.FileField(upload_to="sources/")
    token = models.CharField(max_length=64, unique=True, default=new_image_token)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["study", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="source_image_name_unique"),
            models.CheckConstraint(
                condition=Q(width__gt=0) & Q(height__gt=0), name="source_image_size_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}/{self.name}"

    @property
    def pixels(self) -> int:
        return self.width * self.height


class ConditionKind(models.TextChoices):
    STUDY = "study", "Compared in the study"
    GOLDEN_REFERENCE = "golden-reference", "Golden trials: the original, losslessly"
    GOLDEN_DEGRADED = "golden-degraded", "Golden trials: a heavily degraded version"


class Condition(models.Model):
    """One codec at one rate point, applied to every source image of the study.

    Golden trials use two conditions of their own kinds (the lossless original
    and a heavily degraded version); they never enter the analysis.
    """

    Kind = ConditionKind

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="conditions")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STUDY)
    name = models.SlugField(max_length=100)
    codec = models.CharField(max_length=64)
    rate_index = models.PositiveSmallIntegerField(
        help_text="Position on the codec's rate ladder, 0 = fewest bits."
    )
    target_bpp = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["study", "codec", "rate_index"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="condition_name_unique"),
            models.UniqueConstraint(
                fields=["study", "codec", "rate_index"], name="condition_rate_point_unique"
            ),
            models.CheckConstraint(
                condition=Q(target_bpp__isnull=True) | Q(target_bpp__gt=0),
                name="condition_target_bpp_positive",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ConditionKind.values), name="condition_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}/{self.name}"


class Stimulus(models.Model):
    """The decoded reconstruction of one source image under one condition."""

    condition = models.ForeignKey(Condition, on_delete=models.CASCADE, related_name="stimuli")
    source_image = models.ForeignKey(SourceImage, on_delete=models.CASCADE, related_name="stimuli")
    file = models.FileField(upload_to="stimuli/")
    token = models.CharField(max_length=64, unique=True, default=new_image_token)
    sha256 = models.CharField(max_length=64, help_text="Of the decoded PNG served to raters.")
    bitstream_bytes = models.PositiveIntegerField()
    bpp = models.FloatField(help_text="Bits of the bitstream per pixel of the original.")
    codec_library = models.CharField(max_length=100)
    codec_version = models.CharField(max_length=100)
    settings = models.JSONField(default=dict, help_text="Encoder settings used.")
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Objective metrics against the original."
    )

    class Meta:
        verbose_name_plural = "stimuli"
        ordering = ["condition", "source_image"]
        constraints = [
            models.UniqueConstraint(
                fields=["condition", "source_image"], name="stimulus_condition_image_unique"
            ),
            models.CheckConstraint(
                condition=Q(bitstream_bytes__gt=0), name="stimulus_bytes_positive"
            ),
            models.CheckConstraint(condition=Q(bpp__gt=0), name="stimulus_bpp_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.condition} on {self.source_image.name}"


class Rater(models.Model):
    """A person as the recruitment platform identifies them."""

    Platform = RaterPlatform

    platform = models.CharField(max_length=16, choices=Platform.choices)
    external_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "external_id"], name="rater_identity_unique"
            ),
            models.CheckConstraint(
                condition=Q(platform__in=RaterPlatform.values), name="rater_platform_valid"
            ),
            models.CheckConstraint(
                condition=~Q(external_id=""), name="rater_external_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id}"


class SessionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    FAILED_ATTENTION = "failed-attention", "Ended: failed golden trials"
    SCREENED_OUT = "screened-out", "Ended: did not pass screening"


class RaterSession(models.Model):
    """One rater's work on one study; reloading the entry link resumes it."""

    Status = SessionStatus

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="sessions")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="sessions")
    token = models.CharField(max_length=64, unique=True, default=new_session_token)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    trials_total = models.PositiveIntegerField(help_text="Counted trials, golden ones included.")
    practice_total = models.PositiveIntegerField(
        default=0, help_text="Practice trials before the counted ones."
    )
    recruitment = models.JSONField(
        default=dict, blank=True, help_text="Platform parameters, e.g. Prolific STUDY_ID."
    )
    user_agent = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    screening_passed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the session ended, for whatever reason."
    )

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "rater"], name="session_one_per_rater"),
            models.CheckConstraint(
                condition=Q(trials_total__gt=0), name="session_trials_total_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SessionStatus.values), name="session_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=SessionStatus.ACTIVE) | Q(completed_at__isnull=False),
                name="session_completed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug} / {self.rater}"

    @property
    def is_admitted(self) -> bool:
        """May this session be shown comparisons (screening passed or not required)?"""
        return not self.study.screening_required or self.screening_passed_at is not None

    @property
    def has_ended(self) -> bool:
        """Has the session ended (finished, or stopped by the study's rules)?"""
        return self.status != self.Status.ACTIVE

    def has_expired(self, at: datetime | None = None) -> bool:
        """Is the session older than ``RATER_SESSION_MAX_AGE`` seconds (0: never)?"""
        max_age = settings.RATER_SESSION_MAX_AGE
        if not max_age:
            return False
        return (at or timezone.now()) - self.started_at > timedelta(seconds=max_age)

    @property
    def end_code(self) -> str:
        """The recruitment platform's code for how the session ended."""
        return {
            SessionStatus.COMPLETED: self.study.completion_code,
            SessionStatus.FAILED_ATTENTION: self.study.failed_attention_code,
            SessionStatus.SCREENED_OUT: self.study.screen_out_code,
        }.get(SessionStatus(self.status), "")

    def completion_url(self) -> str:
        """Where the rater goes at the end: the platform's URL, or our page."""
        code = self.end_code
        if self.rater.platform == Rater.Platform.PROLIFIC and code:
            return PROLIFIC_COMPLETION_URL.format(code=quote(code))
        return reverse("studies:rater_done", kwargs={"slug": self.study.slug})


class Trial(models.Model):
    """A comparison issued to one session: two stimuli of the same source image."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(RaterSession, on_delete=models.CASCADE, related_name="trials")
    position = models.PositiveIntegerField(help_text="0-based order within the session.")
    source_image = models.ForeignKey(SourceImage, on_delete=models.PROTECT, related_name="+")
    left = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="+")
    right = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="+")
    is_golden = models.BooleanField(default=False)
    is_practice = models.BooleanField(
        default=False, help_text="Instruction trial: shown with feedback, never analysed."
    )
    crop_x = models.PositiveIntegerField(default=0)
    crop_y = models.PositiveIntegerField(default=0)
    crop_width = models.PositiveIntegerField()
    crop_height = models.PositiveIntegerField()
    issued_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="trial_position_unique"),
            models.CheckConstraint(condition=~Q(left=F("right")), name="trial_two_stimuli"),
            models.CheckConstraint(
                condition=Q(crop_width__gt=0) & Q(crop_height__gt=0),
                name="trial_crop_size_positive",
            ),
            models.CheckConstraint(
                condition=~(Q(is_golden=True) & Q(is_practice=True)),
                name="trial_golden_or_practice",
            ),
        ]

    def __str__(self) -> str:
        return f"trial {self.public_id}"

    @property
    def golden_answer(self) -> str | None:
        """The side showing the original in a golden or practice trial, else None."""
        if not (self.is_golden or self.is_practice):
            return None
        reference = ConditionKind.GOLDEN_REFERENCE
        return "left" if self.left.condition.kind == reference else "right"


class PairIssueCount(models.Model):
    """How many comparison trials of a study showed one pair of conditions on one image.

    The scheduler's view of the whole study (docs/rating.md, strategy
    ``balanced``), counted by the service that issues trials, in the same
    transaction, so that choosing a pair reads a few rows instead of every
    trial of the study. Golden and practice trials are not counted.
    """

    # The unique constraint's index serves every lookup (study, then image);
    # the foreign keys need no index of their own.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+", db_index=False)
    source_image = models.ForeignKey(
        SourceImage, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    condition_low = models.ForeignKey(
        Condition, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    condition_high = models.ForeignKey(
        Condition, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    issued = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "source_image", "condition_low", "condition_high"],
                name="pair_issue_count_unique",
            ),
            models.CheckConstraint(
                condition=Q(condition_low__lt=F("condition_high")),
                name="pair_issue_count_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.issued} trials of pair {self.condition_low_id}/{self.condition_high_id}"


class ConditionIssueCount(models.Model):
    """How many comparison trials of a study showed one condition on one image.

    Kept beside ``PairIssueCount``, in the same transaction, so that the
    balanced rule finds an image's least shown conditions in one row per
    condition instead of summing every pair of them (docs/rating.md). Each
    trial counts once for each of its two conditions, so an image's rows sum to
    twice its trials. Golden and practice trials are not counted.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+", db_index=False)
    source_image = models.ForeignKey(
        SourceImage, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    condition = models.ForeignKey(
        Condition, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    issued = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "source_image", "condition"],
                name="condition_issue_count_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.issued} trials showing condition {self.condition_id}"


class VoteChoice(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    TIE = "tie", "Can't tell"


class Vote(models.Model):
    """The answer to one trial. Retrying with the same client id is a no-op."""

    Choice = VoteChoice

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="vote")
    client_vote_id = models.UUIDField(unique=True)
    choice = models.CharField(max_length=8, choices=Choice.choices)
    response_ms = models.PositiveIntegerField()
    flips = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=VoteChoice.values), name="vote_choice_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.choice} on {self.trial}"


class TaskStatus(models.TextChoices):
    """Where the background task behind a record stands: a fit, a build, a refresh."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Fit(models.Model):
    """One run of the analysis on a study's votes, done by a background task."""

    Status = TaskStatus

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="fits")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    anchor_codec = models.CharField(max_length=64)
    seed = models.PositiveIntegerField()
    n_votes = models.PositiveIntegerField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    output_dir = models.CharField(max_length=300, blank=True, help_text="Relative to MEDIA_ROOT.")
    summary = models.JSONField(default=dict, blank=True)
    excluded_raters = models.JSONField(
        default=list, blank=True, help_text="Rater pseudonyms left out of this fit."
    )
    fast = models.BooleanField(default=False, help_text="MAP + Laplace preview, not NUTS.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values), name="fit_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"fit {self.pk} of {self.study.slug} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class Exclusion(models.Model):
    """A researcher's decision to leave a rater's votes out of the study's fits."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="exclusions")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="exclusions")
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "rater"], name="exclusion_once_per_rater"),
            models.CheckConstraint(condition=~Q(reason=""), name="exclusion_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} excluded from {self.study}"


class StudyBuild(models.Model):
    """Encoding (and importing) a study's stimuli from its spec, as a background task."""

    Status = TaskStatus

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="build")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    source_dir = models.CharField(max_length=500, help_text="Where the spec's folders are.")
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values), name="build_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"build of {self.study} ({self.status})"

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


class PlannerRefresh(models.Model):
    """One background refresh of a study's posterior: the active planner, the interval
    widths and the forecast of the votes still needed (docs/rating.md).

    Requested when ``Study.refresh_every`` counted votes have arrived since the
    previous one (at most one queued or running per study); the task fits the votes
    with the fast Laplace fit and stores the planner (``analysis.active``'s
    ``.npz``, no pickles) in ``planner``. ``trial_watermark`` is the highest trial id
    of the study when the votes were read: trials above it are the planner's
    ``pending`` trials, and counted votes on them bring the next refresh.
    """

    Status = TaskStatus

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="refreshes")
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.QUEUED)
    trial_watermark = models.PositiveBigIntegerField(
        default=0, help_text="Highest trial id of the study when the votes were read."
    )
    n_votes = models.PositiveIntegerField(
        default=0,
        help_text="Counted votes of the study (golden ones too) when the votes were read.",
    )
    n_trials = models.PositiveIntegerField(
        default=0, help_text="Comparison trials issued up to the watermark."
    )
    appearances = models.JSONField(
        default=dict, blank=True, help_text="Comparison trials per condition id, to the watermark."
    )
    image_trials = models.JSONField(
        default=dict,
        blank=True,
        help_text="Comparison trials per image id, to the watermark.",
    )
    planner = models.BinaryField(blank=True, default=b"", help_text="ActivePlanner.to_bytes().")
    summary = models.JSONField(
        default=dict, blank=True, help_text="Per codec: BD-rate, half-width, forecast."
    )
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TaskStatus.values), name="refresh_status_valid"
            ),
            # Requesting is guarded by this: concurrent votes enqueue one refresh.
            models.UniqueConstraint(
                fields=["study"],
                condition=Q(status__in=[TaskStatus.QUEUED, TaskStatus.RUNNING]),
                name="refresh_one_in_flight_per_study",
            ),
        ]

    def __str__(self) -> str:
        return f"refresh {self.pk} of {self.study.slug} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}
