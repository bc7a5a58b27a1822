"""Admin building blocks the apps share."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows whose state the service owns (the webhook, the reply engine, the sweep, delivery): shown, never added,
    changed or deleted by hand, where a change would go around the rules that wrote them. Actions that call the
    services are the way to act on them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
