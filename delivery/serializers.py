"""How the API shows where a reply stands with the receiver (api.serializers embeds it in each OUTBOUND)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializer_fields import UTCDateTimeField
from delivery.models import DeliveryAttempt, ReplyDelivery, ReplyRecovery
from delivery.selectors import delivery_newest_attempts


class DeliveryAttemptSerializer(serializers.Serializer):
    """One POST of a reply (a DeliveryAttempt)."""

    number = serializers.IntegerField(help_text="X-Delivery-Attempt of the POST.")
    started_at = UTCDateTimeField()
    duration_ms = serializers.FloatField(help_text="From the POST's start to its answer, timeout or error.")
    status = serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status; null: no answer.")
    outcome = serializers.ChoiceField(choices=DeliveryAttempt.Outcome.choices)
    error = serializers.CharField(help_text="Why it did not deliver; empty when it did.")


class DeliverySerializer(serializers.Serializer):
    """Where a reply stands with REPLY_WEBHOOK_URL (a ReplyDelivery)."""

    state = serializers.ChoiceField(
        choices=ReplyDelivery.State.choices,
        help_text="pending: not delivered yet (retries included); delivered: a 2xx answer; failed: given up.",
    )
    attempts = serializers.IntegerField(help_text="POSTs started so far.")
    last_error = serializers.CharField(help_text="Why the last attempt did not deliver; empty once delivered.")
    delivered_at = UTCDateTimeField(allow_null=True)
    log = serializers.SerializerMethodField(help_text="Its newest attempts (20 at most), newest first.")

    @extend_schema_field(DeliveryAttemptSerializer(many=True))
    def get_log(self, delivery: ReplyDelivery) -> list[dict]:
        return DeliveryAttemptSerializer(delivery_newest_attempts(delivery), many=True).data


class ReplyRecoverySerializer(serializers.Serializer):
    """An operator's recovery and its progress (a ReplyRecovery)."""

    id = serializers.IntegerField()
    since = UTCDateTimeField()
    until = UTCDateTimeField()
    state = serializers.ChoiceField(
        choices=ReplyRecovery.State.choices, help_text="running until every reply in the range is handled."
    )
    total = serializers.IntegerField(
        allow_null=True, help_text="Replies in the range; null until the first step has counted them."
    )
    requeued = serializers.IntegerField(help_text="Replies sent again so far (delivered or failed before).")
    skipped = serializers.IntegerField(help_text="Replies left to their own delivery: they were pending anyway.")
    done_share = serializers.FloatField(
        allow_null=True, help_text="requeued + skipped over total, 0 to 1; null until counted."
    )
    requested_by = serializers.CharField()
    created_at = UTCDateTimeField()
    finished_at = UTCDateTimeField(allow_null=True)


class RecoveryRequestSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Send again every reply whose delivery was opened at or after this.")
    until = serializers.DateTimeField(required=False, allow_null=True, help_text="...and before this (default: now).")
