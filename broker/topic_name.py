"""Kafka's topic-name rules (clients/.../common/internals/Topic.java, validate)."""

from __future__ import annotations

# Kafka's limit (KAFKA-3219): a partition's log directory is "<topic>-<partition>", and 249 leaves room
# within a 255-character file name for the dash and a partition id of up to five digits.
MAX_NAME_LENGTH = 249
_LEGAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class InvalidTopicName(ValueError):
    error_code = 17  # Kafka's INVALID_TOPIC_EXCEPTION


def validate_topic_name(name: str) -> None:
    """Raise InvalidTopicName, with Kafka's message, unless `name` is a legal topic name.

    Checks run in Kafka's order, so a name that is both too long and badly formed gets the length message.
    """
    reason = _reason_invalid(name)
    if reason is not None:
        raise InvalidTopicName(f"Topic name is invalid: {reason}")


def _reason_invalid(name: str) -> str | None:
    if not name:
        return "the empty string is not allowed"
    # "." and ".." would name the log directory's own entries.
    if name == ".":
        return "'.' is not allowed"
    if name == "..":
        return "'..' is not allowed"
    # Java's String.length counts UTF-16 code units; count the same way so the checks agree with Kafka's.
    if len(name.encode("utf-16-le")) // 2 > MAX_NAME_LENGTH:
        return f"the length of '{name}' is longer than the max allowed length {MAX_NAME_LENGTH}"
    if not set(name) <= _LEGAL_CHARS:
        return f"'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
    return None
