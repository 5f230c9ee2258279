from __future__ import annotations

from django.urls import path

from studies import api
from studies.views import rater, research

app_name = "studies"

urlpatterns = [
    # Rater pages
    path("r/<slug:slug>/", rater.rater_entry, name="rater_entry"),
    path("r/<slug:slug>/rate/", rater.rater_viewer, name="rater_viewer"),
    path("r/<slug:slug>/done/", rater.rater_done, name="rater_done"),
    path("i/<str:token>.png", rater.image, name="image"),
    # Rater API
    path("api/v1/studies/<slug:slug>/sessions", api.session_start, name="api_session_start"),
    path("api/v1/sessions/<str:token>/next", api.session_next, name="api_session_next"),
    path("api/v1/trials/<uuid:trial_id>/vote", api.trial_vote, name="api_trial_vote"),
    # Researcher pages
    path("studies/", research.study_list, name="study_list"),
    path("studies/new/", research.study_new, name="study_new"),
    path("studies/<slug:slug>/", research.study_detail, name="study_detail"),
    path("studies/<slug:slug>/status/<str:action>", research.study_status, name="study_status"),
    path("studies/<slug:slug>/fit", research.study_fit, name="study_fit"),
    path(
        "studies/<slug:slug>/raters/<str:rater>/exclusion",
        research.rater_exclusion,
        name="rater_exclusion",
    ),
    path(
        "studies/<slug:slug>/collaborators",
        research.study_collaborators,
        name="study_collaborators",
    ),
    path(
        "studies/<slug:slug>/fits/<int:fit_id>/bundle.zip", research.fit_bundle, name="fit_bundle"
    ),
    path("studies/<slug:slug>/fits/<int:fit_id>/<str:name>", research.fit_file, name="fit_file"),
    path("studies/<slug:slug>/export/<str:table>.csv", research.study_export, name="study_export"),
]
