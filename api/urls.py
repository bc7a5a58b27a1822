from django.urls import re_path

from api.apis import (
    ConsoleEventApi,
    ConversationDetailApi,
    ConversationListApi,
    ReceiverEnableApi,
    ServiceConfigApi,
    SessionApi,
    WebhookApi,
)
from api.recoveries import RecoveryCancelApi, RecoveryDetailApi, RecoveryListApi

# Every route works with and without its trailing slash: a POST cannot follow a redirect.
urlpatterns = [
    re_path(r"^webhook/?$", WebhookApi.as_view(), name="webhook"),
    re_path(r"^api/config/?$", ServiceConfigApi.as_view(), name="service-config"),
    re_path(r"^api/session/?$", SessionApi.as_view(), name="session"),
    re_path(r"^api/console/events/?$", ConsoleEventApi.as_view(), name="console-events"),
    re_path(r"^api/receiver/enable/?$", ReceiverEnableApi.as_view(), name="receiver-enable"),
    re_path(r"^api/deliveries/recoveries/?$", RecoveryListApi.as_view(), name="recovery-list"),
    re_path(
        r"^api/deliveries/recoveries/(?P<recovery_id>[^/]+)/?$", RecoveryDetailApi.as_view(), name="recovery-detail"
    ),
    re_path(
        r"^api/deliveries/recoveries/(?P<recovery_id>[^/]+)/cancel/?$",
        RecoveryCancelApi.as_view(),
        name="recovery-cancel",
    ),
    re_path(r"^conversations/?$", ConversationListApi.as_view(), name="conversation-list"),
    re_path(
        r"^conversations/(?P<conversation_id>[^/]+)/?$", ConversationDetailApi.as_view(), name="conversation-detail"
    ),
]
