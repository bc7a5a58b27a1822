"""The API of reply recoveries (delivery.recovery): start one, follow its progress, cancel it. A token or a staff
session whose user may add recoveries, as the admin asks, whatever API_AUTH_REQUIRED says."""

from http import HTTPStatus

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from api.access import RecoveryAccess
from api.serializers import ErrorSerializer
from core.errors import ApplicationError
from delivery.models import ReplyRecovery
from delivery.recovery import recovery_cancel, recovery_start
from delivery.selectors import recovery_find
from delivery.serializers import RecoveryRequestSerializer, ReplyRecoverySerializer

# The list shows the newest ones only.
RECOVERIES_LISTED = 20


def recovery_get(recovery_id: str) -> ReplyRecovery:
    if (recovery := recovery_find(recovery_id)) is None:
        raise ApplicationError("not_found", "Recovery not found.", status=HTTPStatus.NOT_FOUND)
    return recovery


class RecoveryListApi(APIView):
    permission_classes = [RecoveryAccess]

    @extend_schema(
        summary="Recover every reply in a time range",
        description="Every reply whose delivery was opened in [since, until), delivered or failed, is sent again in "
        "the background, a batch at a time, behind live replies. 202 with the recovery; follow its progress at "
        "Location.",
        request=RecoveryRequestSerializer,
        responses={
            202: ReplyRecoverySerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        asked = RecoveryRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        recovery = recovery_start(**asked.validated_data, requested_by=request.user.get_username())
        location = reverse("recovery-detail", kwargs={"recovery_id": recovery.id}, request=request)
        return Response(
            ReplyRecoverySerializer(recovery).data, status=HTTPStatus.ACCEPTED, headers={"Location": location}
        )

    @extend_schema(
        summary="The newest recoveries",
        responses={200: ReplyRecoverySerializer(many=True), 401: ErrorSerializer, 403: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        recoveries = ReplyRecovery.objects.order_by("-id")[:RECOVERIES_LISTED]
        return Response(ReplyRecoverySerializer(recoveries, many=True).data)


class RecoveryDetailApi(APIView):
    permission_classes = [RecoveryAccess]

    @extend_schema(
        summary="A recovery's progress",
        responses={200: ReplyRecoverySerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, recovery_id: str) -> Response:
        return Response(ReplyRecoverySerializer(recovery_get(recovery_id)).data)


class RecoveryCancelApi(APIView):
    permission_classes = [RecoveryAccess]

    @extend_schema(
        summary="Cancel a running recovery",
        description="It stops where it stands; the replies it has already queued still go out.",
        request=None,
        responses={
            200: inline_serializer(
                "RecoveryCancelled",
                {"was_running": serializers.BooleanField(help_text="false: it had finished; nothing changed.")},
            ),
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def post(self, request: Request, recovery_id: str) -> Response:
        return Response({"was_running": recovery_cancel(recovery_get(recovery_id).id)})
