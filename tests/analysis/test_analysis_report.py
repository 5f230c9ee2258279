"""The HTML report: self-contained, complete, and loud when the fit did not converge."""

from __future__ import annotations

import dataclasses
import re

import pytest

from analysis.fit import FitResult
from analysis.report import render_report

pytestmark = pytest.mark.slow  # every test here uses the session's real fit


def test_the_report_is_one_self_contained_page(fitted_study: FitResult) -> None:
    html = render_report(fitted_study, title="Simulated study")

    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 2  # Elo against bpp, and the savings curve
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html) is None
    assert "<script" not in html and "<link" not in html
    assert "<title>Simulated study</title>" in html


def test_the_report_shows_plot_tables_diagnostics_and_data(fitted_study: FitResult) -> None:
    html = render_report(fitted_study, title="t")

    for condition in fitted_study.elo["condition"]:
        assert f"<td>{condition}</td>" in html
    for codec in fitted_study.bd_rate["codec"]:
        assert f"<td>{codec}</td>" in html
    for label in ("largest R-hat", "smallest bulk ESS", "divergent transitions", "raters"):
        assert label in html
    assert "Elo is relative to the mean of all conditions" in html
    assert 'class="banner error"' not in html


def test_the_report_warns_when_the_fit_did_not_converge(fitted_study: FitResult) -> None:
    diagnostics = {
        **fitted_study.diagnostics,
        "converged": False,
        "convergence_problems": ["R-hat 1.080 exceeds 1.01", "3 divergent transitions"],
    }
    html = render_report(dataclasses.replace(fitted_study, diagnostics=diagnostics), title="t")

    banner = re.search(r'<div class="banner error"[^>]*>(.*?)</div>', html)
    assert banner is not None
    assert "did not converge" in banner.group(1)
    assert "R-hat 1.080 exceeds 1.01; 3 divergent transitions" in banner.group(1)


def test_the_report_escapes_text_and_is_reproducible(fitted_study: FitResult) -> None:
    title = "<Study & co>"
    first = render_report(fitted_study, title=title)
    assert "<h1>&lt;Study &amp; co&gt;</h1>" in first
    assert render_report(fitted_study, title=title) == first
