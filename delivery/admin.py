from django import forms
from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin
from core.errors import ApplicationError
from delivery.circuit import ENABLE_PERMISSION
from delivery.models import DeliveryAttempt, ReceiverCircuit, ReplyDelivery, ReplyRecovery
from delivery.recovery import RECOVER_PERMISSION, recovery_cancel, recovery_range, recovery_start
from delivery.selectors import receiver_state
from delivery.services import deliveries_retry, receiver_enable
from delivery.tasks import deliveries_send_enqueue


class DeliveryAttemptInline(admin.TabularInline):
    """The attempt log, newest first, read-only (the batches write it)."""

    model = DeliveryAttempt
    fields = ["number", "started_at", "duration_ms", "status", "outcome", "error"]
    readonly_fields = fields
    ordering = ["-number"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReplyDelivery)
class ReplyDeliveryAdmin(ReadOnlyAdmin):
    """Read-only: the delivery batches own the state; an operator can only start failed deliveries again."""

    inlines = [DeliveryAttemptInline]

    list_display = ["message", "state", "attempts", "created_at", "next_attempt_at", "delivered_at", "last_error"]
    list_filter = ["state"]
    search_fields = ["message__id", "message__conversation__id"]
    ordering = ["-created_at"]
    actions = ["retry_delivery"]

    def changelist_view(self, request, extra_context=None):
        receiver = receiver_state()
        if receiver.disabled_at is not None:
            self.message_user(
                request,
                f"The receiver answered 410 Gone at {receiver.disabled_at:%Y-%m-%d %H:%M:%S} UTC"
                f" ({receiver.last_error}): nothing is sent until it is enabled again (Receiver circuits, action"
                ' "Enable the receiver").',
                messages.ERROR,
            )
        if receiver.opened_at is not None:
            self.message_user(
                request,
                f"The receiver's circuit is open since {receiver.opened_at:%Y-%m-%d %H:%M:%S} UTC"
                f" ({receiver.last_error}): deliveries wait, one probe every few seconds.",
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("delivery.change_replydelivery")

    @admin.action(description="Retry delivery of the selected replies", permissions=["retry"])
    def retry_delivery(self, request, queryset) -> None:
        restarted = deliveries_retry(list(queryset.values_list("pk", flat=True)), wake=deliveries_send_enqueue)
        skipped = queryset.count() - restarted
        self.message_user(request, f"{restarted} delivery(ies) started again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} already delivered: left alone.", messages.WARNING)


@admin.register(ReceiverCircuit)
class ReceiverCircuitAdmin(ReadOnlyAdmin):
    """The receiver's circuit breaker, read-only: the delivery batches open and close it (delivery.circuit)."""

    list_display = ["__str__", "failures", "opened_at", "probe_at", "disabled_at", "last_error"]
    actions = ["enable_receiver"]

    def has_enable_permission(self, request) -> bool:
        return request.user.has_perm(ENABLE_PERMISSION)

    @admin.action(description="Enable the receiver (after a 410 Gone)", permissions=["enable"])
    def enable_receiver(self, request, queryset) -> None:
        if receiver_enable(wake=deliveries_send_enqueue):
            self.message_user(request, "The receiver is enabled: the waiting replies go out now.", messages.SUCCESS)
        else:
            self.message_user(request, "The receiver was not disabled: nothing changed.", messages.WARNING)


class ReplyRecoveryForm(forms.ModelForm):
    class Meta:
        model = ReplyRecovery
        fields = ["since", "until"]
        help_texts = {"until": "Empty, or later than now: now."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["until"].required = False

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("since") is not None:
            try:
                recovery_range(since=cleaned["since"], until=cleaned.get("until"))
            except ApplicationError as exc:
                raise forms.ValidationError(exc.detail, code=exc.code) from exc
        return cleaned


@admin.register(ReplyRecovery)
class ReplyRecoveryAdmin(ReadOnlyAdmin):
    """Start a recovery (Add: a time range) and follow its progress; delivery's periodic step advances it
    (delivery.recovery). Nothing is edited by hand; a running one can be cancelled."""

    form = ReplyRecoveryForm
    list_display = ["id", "since", "until", "state", "progress", "requeued", "skipped", "requested_by", "finished_at"]
    list_filter = ["state"]
    ordering = ["-id"]
    actions = ["cancel_recovery"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(RECOVER_PERMISSION)

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm(RECOVER_PERMISSION)

    def get_fields(self, request, obj=None):
        return ["since", "until"] if obj is None else [*self.list_display, "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description="done")
    def progress(self, recovery: ReplyRecovery) -> str:
        share = recovery.done_share
        return "counting" if share is None else f"{share:.0%} of {recovery.total}"

    def save_model(self, request, obj, form, change) -> None:
        # The service writes the row; the admin's messages and redirect read it from `obj`.
        started = recovery_start(since=obj.since, until=obj.until, requested_by=request.user.get_username())
        obj.__dict__.update(
            {field.attname: getattr(started, field.attname) for field in ReplyRecovery._meta.concrete_fields}
        )
        obj._state.adding = False

    @admin.action(
        description="Cancel the selected recoveries (what they queued still goes out)", permissions=["cancel"]
    )
    def cancel_recovery(self, request, queryset) -> None:
        cancelled = sum(recovery_cancel(recovery_id) for recovery_id in queryset.values_list("id", flat=True))
        self.message_user(request, f"{cancelled} recovery(ies) cancelled.", messages.SUCCESS)
