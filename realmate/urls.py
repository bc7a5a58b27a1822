from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from realmate.health import HealthApi
from realmate.metrics_api import MetricsApi
from realmate.ui import ui_index

# The chat routes come first: Django tries patterns in order, and the webhook is the hot path.
urlpatterns = [
    path("", include("api.urls")),
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", HealthApi.as_view(), name="healthz"),
    re_path(r"^metrics/?$", MetricsApi.as_view(), name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # GET and HEAD only: the page renders with HTML templates, which have nothing to say to an OPTIONS request.
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]), name="docs"
    ),
    path("", ui_index, name="ui"),
]

handler400 = "realmate.error_views.bad_request"
handler403 = "realmate.error_views.permission_denied"
handler404 = "realmate.error_views.not_found"
handler500 = "realmate.error_views.server_error"
