"""Django's own error answers (unknown path, bad request or Host, CSRF, a crash) in the API's JSON error shape,
so a client of the API gets `{"code", "detail"}` whatever failed. The admin keeps Django's HTML pages."""

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure

from core.errors import error_body


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith("/admin/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    return JsonResponse(
        error_body("bad_request", "The request could not be understood."), status=HTTPStatus.BAD_REQUEST
    )


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body("permission_denied", "The request is not allowed."), status=HTTPStatus.FORBIDDEN)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("not_found", "Not found."), status=HTTPStatus.NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_admin(request):
        return defaults.server_error(request)
    return JsonResponse(error_body("error", "Internal server error."), status=HTTPStatus.INTERNAL_SERVER_ERROR)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _is_admin(request):
        return django_csrf_failure(request, reason)
    return JsonResponse(error_body("permission_denied", f"CSRF check failed: {reason}"), status=HTTPStatus.FORBIDDEN)
