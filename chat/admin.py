from django.contrib import admin

from chat.models import Conversation, Message, PendingMessage


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "conversation"
    fields = ["id", "type", "content", "timestamp", "received_at", "pending", "reply"]
    readonly_fields = fields
    ordering = ["timestamp", "received_at", "id"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "created_at", "updated_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["id"]
    readonly_fields = ["id", "created_at", "updated_at", "closed_at", "opened_event_at", "closed_event_at"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "type", "pending", "timestamp", "received_at"]
    list_filter = ["type", "pending"]
    search_fields = ["id", "conversation__id"]
    raw_id_fields = ["conversation", "reply"]
    readonly_fields = ["received_at"]


@admin.register(PendingMessage)
class PendingMessageAdmin(admin.ModelAdmin):
    """Parked messages are evidence of out-of-order delivery: read-only, the sweep owns their state."""

    list_display = ["id", "conversation_id", "state", "received_at", "resolved_at"]
    ordering = ["-received_at"]
    list_filter = ["state"]
    search_fields = ["id", "conversation_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
