"""The service's URLs plus /bench/baseline/: a bare DRF view doing one INSERT, the yardstick of the benchmark."""

from django.db import models
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from realmate.urls import urlpatterns as service_urlpatterns


class BaselineRow(models.Model):
    """A row per baseline request; the table is created by bench/webhook_bench.py, not by migrations."""

    body = models.TextField()

    class Meta:
        app_label = "chat"
        db_table = "bench_baseline"
        managed = False

    def __str__(self) -> str:
        return str(self.id)


class BaselineApi(APIView):
    parser_classes = []

    def post(self, request):
        row = BaselineRow.objects.create(body=request.body.decode())
        return Response({"id": row.id}, status=201)


# The service's own patterns, not an include() of them: an include is one more resolver level, and the
# webhook must resolve here exactly as it does in production.
urlpatterns = [path("bench/baseline/", BaselineApi.as_view()), *service_urlpatterns]
