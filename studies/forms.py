"""Validation of what raters and researchers send."""

from __future__ import annotations

from typing import Any

from django import forms

from studies.models import Rater, Vote

# Recruitment parameters kept with a session, by platform (the names the
# platforms put in the study URL).
RECRUITMENT_FIELDS = ("study_id", "session_id", "assignment_id", "hit_id", "turk_submit_to")
# Where MTurk may send a finished assignment back (production and sandbox).
MTURK_SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
MAX_RESPONSE_MS = 24 * 60 * 60 * 1000
MAX_FLIPS = 100_000


class SessionStartForm(forms.Form):
    participant = forms.CharField(max_length=128)
    platform = forms.ChoiceField(choices=Rater.Platform.choices, required=False)
    study_id = forms.CharField(max_length=128, required=False)
    session_id = forms.CharField(max_length=128, required=False)
    assignment_id = forms.CharField(max_length=128, required=False)
    hit_id = forms.CharField(max_length=128, required=False)
    turk_submit_to = forms.CharField(max_length=200, required=False)

    def clean_platform(self) -> str:
        return self.cleaned_data.get("platform") or Rater.Platform.DIRECT

    def clean_turk_submit_to(self) -> str:
        value = self.cleaned_data.get("turk_submit_to", "").rstrip("/")
        if value and value not in MTURK_SUBMIT_HOSTS:
            raise forms.ValidationError(
                f"turkSubmitTo must be one of {', '.join(MTURK_SUBMIT_HOSTS)}, not {value!r}"
            )
        return value

    def session_fields(self) -> dict[str, Any]:
        """Keyword arguments of ``services.rater_session_start`` from a valid form."""
        data = self.cleaned_data
        return {
            "platform": data["platform"],
            "participant": data["participant"],
            "recruitment": {key: data[key] for key in RECRUITMENT_FIELDS if data[key]},
        }


class VoteForm(forms.Form):
    choice = forms.ChoiceField(choices=Vote.Choice.choices)
    client_vote_id = forms.UUIDField()
    response_ms = forms.IntegerField(min_value=0, max_value=MAX_RESPONSE_MS)
    flips = forms.IntegerField(min_value=0, max_value=MAX_FLIPS, required=False)

    def clean_flips(self) -> int:
        return self.cleaned_data.get("flips") or 0


def form_errors(form: forms.Form) -> str:
    """One line naming every field that is wrong and why."""
    parts = []
    for field, errors in form.errors.get_json_data().items():
        messages = "; ".join(e["message"] for e in errors)
        parts.append(f"{field}: {messages}" if field != "__all__" else messages)
    return ", ".join(parts)


# A study definition file is a few KiB of TOML.
SPEC_MAX_BYTES = 256 * 1024


class StudyUploadForm(forms.Form):
    spec = forms.FileField(help_text="The study definition file (TOML, docs/study-spec.md).")
    folder = forms.FileField(
        required=False,
        help_text="A zip of the folders the spec names (its images, imported reconstructions).",
    )

    def clean_spec(self) -> Any:
        spec = self.cleaned_data["spec"]
        if spec.size > SPEC_MAX_BYTES:
            raise forms.ValidationError(
                f"the study definition file is {spec.size:,} bytes; "
                f"at most {SPEC_MAX_BYTES:,} are accepted"
            )
        return spec


class ExclusionForm(forms.Form):
    reason = forms.CharField(max_length=300)


class CollaboratorForm(forms.Form):
    username = forms.CharField(max_length=150)
