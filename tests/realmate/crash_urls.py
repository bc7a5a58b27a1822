"""The service's URLs plus one view that crashes, for the 500 test."""

from django.urls import path

from realmate.urls import urlpatterns as service_urlpatterns


def crash(request):
    raise RuntimeError("boom")


urlpatterns = [path("crash/", crash), path("admin/crash/", crash), *service_urlpatterns]
handler500 = "realmate.error_views.server_error"
