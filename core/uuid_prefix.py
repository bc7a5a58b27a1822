"""Searching by the start of a UUID through the primary key's index."""

import uuid

HEX_DIGITS = frozenset("0123456789abcdef")


def uuid_prefix_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The first and the last UUID that start with these hex digits (dashes ignored): a range a UUID column's
    index serves, where a text match on the id reads the whole table. ValueError if it cannot start a UUID."""
    digits = prefix.strip().replace("-", "").lower()
    if not 0 < len(digits) <= 32 or set(digits) - HEX_DIGITS:
        raise ValueError(f"not the start of a UUID: {prefix!r}")
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
