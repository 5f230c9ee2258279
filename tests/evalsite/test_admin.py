"""Every model is in the admin; the record of what raters saw and answered is read-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client, RequestFactory

READ_ONLY = {
    "studies.vote",
    "studies.trial",
    "studies.stimulus",
    "studies.ratersession",
    "studies.rater",
    "studies.fit",
    "studies.plannerrefresh",
    "screening.displaycheck",
    "screening.screeningattempt",
    "screening.plateitem",
    "screening.artifacttrial",
}


def _our_models() -> list[Any]:
    return [
        m for label in ("studies", "screening") for m in apps.get_app_config(label).get_models()
    ]


def test_every_model_of_the_apps_is_in_the_admin() -> None:
    missing = [m._meta.label for m in _our_models() if not admin.site.is_registered(m)]
    assert missing == []


@pytest.mark.parametrize("label", sorted(READ_ONLY))
def test_records_cannot_be_changed_added_or_deleted(label: str, admin_user: Any) -> None:
    model = apps.get_model(label)
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_staff_see_the_votes_page(admin_client: Client) -> None:
    assert admin_client.get("/admin/studies/vote/").status_code == 200
