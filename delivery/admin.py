from django.contrib import admin, messages

from delivery.models import ReplyDelivery
from delivery.services import deliveries_retry
from delivery.tasks import reply_delivery_enqueue


@admin.register(ReplyDelivery)
class ReplyDeliveryAdmin(admin.ModelAdmin):
    """Read-only: the delivery jobs own the state; an operator can only start failed deliveries again."""

    list_display = ["message", "state", "attempts", "created_at", "delivered_at", "last_error"]
    list_filter = ["state"]
    search_fields = ["message__id", "message__conversation__id"]
    ordering = ["-created_at"]
    actions = ["retry_delivery"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("delivery.change_replydelivery")

    @admin.action(description="Retry delivery of the selected replies", permissions=["retry"])
    def retry_delivery(self, request, queryset) -> None:
        restarted = deliveries_retry(list(queryset.values_list("pk", flat=True)), dispatch=reply_delivery_enqueue)
        skipped = queryset.count() - restarted
        self.message_user(request, f"{restarted} delivery(ies) started again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} already delivered: left alone.", messages.WARNING)
