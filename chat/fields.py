"""Serializer fields that accept exactly JSON's types: DRF's own ones coerce numbers into strings and UUIDs.
The contract says input is strict and the API speaks UTC; these fields are where that is enforced."""

from datetime import UTC, datetime

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string only, stored as sent (no trimming). DRF's own validator refuses lone surrogates."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a JSON string; DRF's field would also take an integer."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class UTCDateTimeField(serializers.DateTimeField):
    """A datetime read and written in UTC, whatever Django's current zone: the API speaks UTC."""

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)


class StrictDateTimeField(UTCDateTimeField):
    """An ISO-8601 string; naive values are UTC, and every value must fit PostgreSQL and Python in UTC."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="ISO-8601")
        return super().to_internal_value(value)

    def enforce_timezone(self, value: datetime) -> datetime:
        try:
            return super().enforce_timezone(value)
        except (OverflowError, ValueError):
            self.fail("invalid", format="ISO-8601")
