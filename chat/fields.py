"""Serializer fields that accept exactly JSON's types: DRF's own ones coerce numbers into strings and UUIDs."""

from datetime import UTC, datetime

from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator


class StrictCharField(serializers.CharField):
    """A JSON string only, stored as sent (no trimming), and encodable as UTF-8 (no lone surrogates)."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        # The encode check below rejects lone surrogates first, in C. DRF's validator for them would walk the
        # string in Python, one ord() per character of every message, and never find one.
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitSurrogateCharactersValidator)]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictObjectField(serializers.DictField):
    """A JSON object, passed on as it is: the serializer of its event validates what is inside, so DictField's
    check of each value (a child field run per key) would be done twice."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        return data


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a JSON string; DRF's field would also take an integer."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class UTCDateTimeField(serializers.DateTimeField):
    """A datetime read and written in UTC, whatever Django's current zone: the API speaks UTC (SPEC). Fixing the
    zone also spares a lookup of the current one (a thread-local) per value, a noticeable share of a request."""

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)


class StrictDateTimeField(UTCDateTimeField):
    """An ISO-8601 string; naive values are UTC (SPEC), and every value must fit PostgreSQL and Python in UTC."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="ISO-8601")
        return super().to_internal_value(value)

    def enforce_timezone(self, value: datetime) -> datetime:
        try:
            return super().enforce_timezone(value)
        except (OverflowError, ValueError):
            self.fail("invalid", format="ISO-8601")
