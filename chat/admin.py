"""The admin shows conversations and messages as the webhook left them; it changes nothing around the webhook's
rules. Closing is an action that calls the same service as CLOSE_CONVERSATION; messages and parked messages are
read-only (the webhook, the reply engine and the sweep own their state). Erasing is an action too: the service
deletes a conversation with everything about it."""

from django.contrib import admin, messages
from django.utils import timezone

from chat.erasure import ERASE_PERMISSION, PURGE_BATCH, Erased, conversations_erase
from chat.models import MESSAGE_ORDER, Conversation, Message, ParkedMessage
from chat.services import conversation_close
from core.admin import ReadOnlyAdmin
from core.errors import ApplicationError


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "conversation"
    fields = ["id", "type", "author", "content", "timestamp", "received_at", "pending", "taken_over", "reply"]
    readonly_fields = fields
    ordering = list(MESSAGE_ORDER)
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "created_at", "updated_at", "closed_at", "bot_paused_until"]
    list_filter = ["status"]
    search_fields = ["id"]
    inlines = [MessageInline]
    actions = ["close_conversations", "erase_conversations"]

    def has_close_permission(self, request) -> bool:
        return request.user.has_perm("chat.change_conversation")

    def has_erase_permission(self, request) -> bool:
        return request.user.has_perm(ERASE_PERMISSION)

    @admin.action(description="Erase the selected conversations and everything about them", permissions=["erase"])
    def erase_conversations(self, request, queryset) -> None:
        ids = list(queryset.values_list("id", flat=True))
        erased = Erased()
        # In transactions of PURGE_BATCH, as the purge: "select all" may name a table's worth.
        for start in range(0, len(ids), PURGE_BATCH):
            erased.add_all(conversations_erase(ids[start : start + PURGE_BATCH]))
        self.message_user(
            request,
            f"{erased.conversations} conversation(s) erased, with {erased.messages} message(s) and {erased.parked} "
            "parked message(s).",
            messages.SUCCESS,
        )

    @admin.action(description="Close the selected conversations", permissions=["close"])
    def close_conversations(self, request, queryset) -> None:
        closed = 0
        for conversation_id in queryset.values_list("id", flat=True):
            try:
                conversation_close(conversation_id=conversation_id, event_at=timezone.now())
            except ApplicationError:  # closed meanwhile, or already closed
                continue
            closed += 1
        self.message_user(request, f"{closed} conversation(s) closed.", messages.SUCCESS)
        if skipped := queryset.count() - closed:
            self.message_user(request, f"{skipped} already closed: left alone.", messages.WARNING)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "conversation", "type", "author", "pending", "taken_over", "timestamp", "received_at"]
    list_filter = ["type", "pending"]
    search_fields = ["id", "conversation__id"]
    # A conversation's messages together, in conversation order: message_conversation_order_idx serves it.
    ordering = ["conversation_id", *MESSAGE_ORDER]


@admin.register(ParkedMessage)
class ParkedMessageAdmin(ReadOnlyAdmin):
    """Parked messages are evidence of out-of-order delivery: read-only, the sweep owns their state."""

    list_display = ["id", "conversation_id", "author", "state", "received_at", "resolved_at"]
    ordering = ["-received_at"]
    list_filter = ["state"]
    search_fields = ["id", "conversation_id"]
