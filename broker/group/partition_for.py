"""Which ``__consumer_offsets`` partition holds a group (Kafka's GroupMetadataManager.partitionFor).

The leader of that partition is the group's coordinator, so every broker must agree on this number
with Kafka's clients and tools: it is Java's ``String.hashCode`` exactly, not Python's ``hash``.
"""

from __future__ import annotations

INT_MIN = -(2**31)
DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS = 50  # offsets.topic.num.partitions


def _to_int32(n: int) -> int:
    n &= 0xFFFFFFFF
    return n - 2**32 if n >= 2**31 else n


def java_string_hash(s: str) -> int:
    """Java's String.hashCode: ``h = 31*h + c`` over UTF-16 code units, wrapping at 32 bits.

    A character outside the Basic Multilingual Plane is two code units in Java (a surrogate pair),
    so the string is hashed as UTF-16, not as Python's code points."""
    data = s.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return _to_int32(h)


def abs_java(n: int) -> int:
    """Kafka's Utils.abs: ``Math.abs`` would leave Integer.MIN_VALUE negative, Kafka maps it to 0."""
    return 0 if n == INT_MIN else abs(n)


def partition_for(group_id: str, num_partitions: int = DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS) -> int:
    """``Utils.abs(groupId.hashCode) % offsets.topic.num.partitions``."""
    if num_partitions <= 0:
        raise ValueError(f"offsets.topic.num.partitions must be positive, got {num_partitions}")
    return abs_java(java_string_hash(group_id)) % num_partitions
