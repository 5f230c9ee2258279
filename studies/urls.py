from __future__ import annotations

from django.urls import path

from studies import api, views

app_name = "studies"

urlpatterns = [
    # Rater pages
    path("r/<slug:slug>/", views.rater_entry, name="rater_entry"),
    path("r/<slug:slug>/rate/", views.rater_viewer, name="rater_viewer"),
    path("r/<slug:slug>/done/", views.rater_done, name="rater_done"),
    path("i/<str:token>.png", views.image, name="image"),
    # Rater API
    path("api/v1/studies/<slug:slug>/sessions", api.session_start, name="api_session_start"),
    path("api/v1/sessions/<str:token>/next", api.session_next, name="api_session_next"),
    path("api/v1/trials/<uuid:trial_id>/vote", api.trial_vote, name="api_trial_vote"),
    # Researcher pages
    path("studies/", views.study_list, name="study_list"),
    path("studies/<slug:slug>/", views.study_detail, name="study_detail"),
    path("studies/<slug:slug>/fit", views.study_fit, name="study_fit"),
    path("studies/<slug:slug>/fits/<int:fit_id>/<str:name>", views.fit_file, name="fit_file"),
    path("studies/<slug:slug>/export/<str:table>.csv", views.study_export, name="study_export"),
]
