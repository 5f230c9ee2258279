from __future__ import annotations

from django.urls import path

from screening import views

app_name = "screening"

urlpatterns = [
    path("<slug:slug>/display/", views.display_check, name="display_check"),
]
