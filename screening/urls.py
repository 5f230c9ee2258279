from __future__ import annotations

from django.urls import path

from screening import views

app_name = "screening"

urlpatterns = [
    path("<slug:slug>/", views.screening_next, name="next"),
    path("<slug:slug>/display/", views.display_check, name="display_check"),
    path("<slug:slug>/colour/", views.colour, name="colour"),
    path("<slug:slug>/artifacts/", views.artifact_test, name="artifacts"),
    path("<slug:slug>/stats/", views.stats, name="stats"),
    path("p/<str:token>.png", views.plate_image, name="plate_image"),
    path("a/<str:token>-<str:side>.png", views.artifact_image, name="artifact_image"),
]
