"""How the API shows where a reply stands with the receiver (api.serializers embeds it in each OUTBOUND)."""

from rest_framework import serializers

from core.serializer_fields import UTCDateTimeField
from delivery.models import ReplyDelivery


class DeliverySerializer(serializers.Serializer):
    """Where a reply stands with REPLY_WEBHOOK_URL (a ReplyDelivery)."""

    state = serializers.ChoiceField(
        choices=ReplyDelivery.State.choices,
        help_text="pending: not delivered yet (retries included); delivered: a 2xx answer; failed: given up.",
    )
    attempts = serializers.IntegerField(help_text="POSTs started so far.")
    last_error = serializers.CharField(help_text="Why the last attempt did not deliver; empty once delivered.")
    delivered_at = UTCDateTimeField(allow_null=True)
