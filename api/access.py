"""Who may read conversations and use the web console.

Off by default (API_AUTH_REQUIRED=False), so the documented curl examples work as they are. Turned on, reads
(the conversation list and detail, the timing config) need a DRF token (`Authorization: Token <key>`; create one
with `manage.py drf_create_token <username>`) or a logged-in staff session (the UI, after /admin/login/). The
webhook is never behind this: its guard is the HMAC signature (WEBHOOK_SECRET), which auth mode makes mandatory.
Erasing a conversation always needs a token or a staff session, with Django's permission to delete conversations.
"""

from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.permissions import BasePermission

from chat.erasure import ERASE_PERMISSION
from delivery.circuit import ENABLE_PERMISSION
from delivery.recovery import RECOVER_PERMISSION


def is_staff_session(request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff and not isinstance(request.auth, Token))


class ReadAccess(BasePermission):
    """Everyone when API_AUTH_REQUIRED is off; otherwise a token's user or a staff session."""

    def has_permission(self, request, view) -> bool:
        return not settings.API_AUTH_REQUIRED or TokenOrStaffSession().has_permission(request, view)


class TokenOrStaffSession(BasePermission):
    """A token's user or a staff session."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Token) or is_staff_session(request)


class PermittedAccess(TokenOrStaffSession):
    """An operator's action, whatever API_AUTH_REQUIRED says: a token or a staff session whose user holds
    `permission`, as the admin's action asks."""

    permission: str

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.has_perm(self.permission)


class EraseAccess(PermittedAccess):
    """Erasing a conversation."""

    permission = ERASE_PERMISSION


class ReceiverAccess(PermittedAccess):
    """Enabling the reply receiver again (may change the receiver's circuit)."""

    permission = ENABLE_PERMISSION


class RecoveryAccess(PermittedAccess):
    """Reply recoveries (may add recoveries)."""

    permission = RECOVER_PERMISSION


class StaffSession(BasePermission):
    """A logged-in staff member's session: the web console, which can act as the webhook's sender."""

    def has_permission(self, request, view) -> bool:
        return is_staff_session(request)
