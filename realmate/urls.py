from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from realmate.health import HealthApi
from realmate.ui import ui_index

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", HealthApi.as_view(), name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("chat.urls")),
    path("", ui_index, name="ui"),
]
