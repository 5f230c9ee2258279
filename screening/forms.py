from __future__ import annotations

from django import forms

from screening.rules import DisplayReport

# Bounds that no real browser exceeds; anything outside is a bad report.
MAX_CSS_PIXELS = 100_000
MAX_DEVICE_PIXEL_RATIO = 16.0


class DisplayReportForm(forms.Form):
    device_pixel_ratio = forms.FloatField(min_value=0.1, max_value=MAX_DEVICE_PIXEL_RATIO)
    viewport_width = forms.IntegerField(min_value=1, max_value=MAX_CSS_PIXELS)
    viewport_height = forms.IntegerField(min_value=1, max_value=MAX_CSS_PIXELS)
    screen_width = forms.IntegerField(min_value=1, max_value=MAX_CSS_PIXELS)
    screen_height = forms.IntegerField(min_value=1, max_value=MAX_CSS_PIXELS)
    color_depth = forms.IntegerField(min_value=1, max_value=64)
    zoom = forms.FloatField(min_value=0.05, max_value=20, required=False)

    def report(self) -> DisplayReport:
        return DisplayReport(**self.cleaned_data)


class PlateAnswerForm(forms.Form):
    plate = forms.CharField(max_length=64)
    answer = forms.CharField(max_length=32, required=False)


class ArtifactAnswerForm(forms.Form):
    position = forms.IntegerField(min_value=0)
    answer = forms.ChoiceField(choices=[("left", "Left"), ("right", "Right")])
