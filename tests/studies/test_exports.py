"""Exports are safe to open in a spreadsheet, and HTML in names is never markup."""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
from django.test import Client

from studies import selectors, services
from studies.models import Study


def test_formula_cells_are_neutralised_and_numbers_kept() -> None:
    frame = pd.DataFrame(
        {
            "text": ["=HYPERLINK(1)", "+1", "-cmd", "@SUM(A1)", "plain", "\tx"],
            "n": [-1, 2, 3, 4, 5, 6],
        }
    )
    safe = selectors.neutralise_formulas(frame)
    assert safe["text"].tolist() == ["'=HYPERLINK(1)", "'+1", "'-cmd", "'@SUM(A1)", "plain", "'\tx"]
    assert safe["n"].tolist() == [-1, 2, 3, 4, 5, 6]
    assert frame["text"][0] == "=HYPERLINK(1)"  # the original is untouched


def test_an_exclusion_reason_cannot_run_as_a_formula(
    client: Client, study: Study, owner: Any
) -> None:
    session, _ = services.rater_session_start(study=study, platform="direct", participant="x")
    services.exclusion_add(
        study=study, rater=session.rater, by=owner, reason='=HYPERLINK("http://evil")'
    )
    client.force_login(owner)
    body = client.get(f"/studies/{study.slug}/export/exclusions.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["reason"] == '\'=HYPERLINK("http://evil")'


def test_markup_in_titles_and_ids_is_escaped_everywhere_it_is_shown(
    client: Client, make_study: Any, owner: Any
) -> None:
    study = make_study(
        slug="xss",
        title="<script>alert('title')</script>",
        instructions="<img src=x onerror=alert(1)>",
    )
    participant = "<b onmouseover=alert(2)>p</b>"
    entry = client.get(f"/r/{study.slug}/?participant={participant}")
    for page in (entry,):
        assert b"<script>alert(" not in page.content
        assert b"<img src=x onerror" not in page.content
        assert b"&lt;script&gt;alert(" in page.content
        assert b"<b onmouseover" not in page.content
    form = entry.context["form"]
    client.post(f"/r/{study.slug}/", {n: form[n].value() or "" for n in form.fields})
    researcher = Client()
    researcher.force_login(owner)
    for url in (f"/studies/{study.slug}/", "/studies/"):
        page = researcher.get(url)
        assert b"<script>alert(" not in page.content
        assert b"&lt;script&gt;alert(" in page.content
