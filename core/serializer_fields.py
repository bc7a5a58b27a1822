"""Serializer fields that accept exactly JSON's types: DRF's own ones coerce numbers into strings and UUIDs.
The contract says input is strict and the API speaks UTC; these fields are where that is enforced."""

import re
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


# RFC 3339's date-time (ISO 8601's extended format with a time), the offset optional (naive means UTC). Python's
# parser alone would also take a date alone, week dates, the basic format and a trailing newline.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?")


class StrictDateTimeField(UTCDateTimeField):
    """An RFC 3339 date-time string (`2025-06-04T14:20:00Z`, `2025-06-04T14:20:00.123-03:00`); naive values are
    UTC, and every value must fit PostgreSQL and Python in UTC."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            self.fail("invalid", format="RFC 3339, e.g. 2025-06-04T14:20:00Z")
        return super().to_internal_value(value)

    def enforce_timezone(self, value: datetime) -> datetime:
        try:
            return super().enforce_timezone(value)
        except (OverflowError, ValueError):
            self.fail("invalid", format="ISO-8601")


class StrictFloatField(serializers.FloatField):
    """A JSON number only (an integer or a fraction); DRF's field would also take a string or a boolean."""

    default_error_messages = {"not_a_number": "Must be a number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("not_a_number")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only (2.0 is refused too); DRF's field would also take a string, a boolean or 2.0."""

    default_error_messages = {"not_an_integer": "Must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)
