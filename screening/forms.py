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

    def report(self) -> DisplayReport:
        return DisplayReport(**self.cleaned_data)
