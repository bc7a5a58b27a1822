from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from realmate.health import HealthApi
from realmate.ui import ui_index

# The chat routes come first: Django tries patterns in order, and the webhook is the hot path.
urlpatterns = [
    path("", include("chat.urls")),
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", HealthApi.as_view(), name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", ui_index, name="ui"),
]
