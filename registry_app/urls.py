from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

app_name = "registry"

urlpatterns = [
    path("", RedirectView.as_view(url="/groups/", permanent=False), name="home"),
]
