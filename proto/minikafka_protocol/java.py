"""Java's arithmetic where Kafka's results depend on it: String.hashCode (which partition of
`__consumer_offsets` holds a group), Utils.murmur2 (which partition a key goes to), and the
iteration order of a java.util.HashMap (where Kafka iterates one and the order changes a result:
the group protocol's vote, the sticky assignor)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

K = TypeVar("K")

INT_MIN = -(2**31)
_MASK = 0xFFFFFFFF
_MURMUR2_SEED = 0x9747B28C
_MURMUR2_M = 0x5BD1E995


def to_int32(n: int) -> int:
    """`n` wrapped to a signed 32-bit int, as Java's int arithmetic overflows."""
    n &= _MASK
    return n - (1 << 32) if n & 0x80000000 else n


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: ``h = 31*h + c`` over UTF-16 code units, wrapping at 32 bits.

    A character outside the Basic Multilingual Plane is two code units in Java (a surrogate pair),
    so the string is hashed as UTF-16, not as Python's code points."""
    h = 0
    for (unit,) in struct.iter_unpack(">H", text.encode("utf-16-be", "surrogatepass")):
        h = (31 * h + unit) & _MASK
    return to_int32(h)


def abs_java(n: int) -> int:
    """Kafka's Utils.abs: ``Math.abs`` would leave Integer.MIN_VALUE negative, Kafka maps it to 0."""
    return 0 if n == INT_MIN else abs(n)


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2: MurmurHash2, 32 bits, seed 0x9747b28c, as a signed 32-bit int."""
    length = len(data)
    h = _MURMUR2_SEED ^ length
    words = length >> 2
    for k in struct.unpack_from(f"<{words}I", data) if words else ():
        k = (k * _MURMUR2_M) & _MASK
        k ^= k >> 24
        h = ((h * _MURMUR2_M) & _MASK) ^ ((k * _MURMUR2_M) & _MASK)
    tail = length & 3
    if tail:
        i = words << 2
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h = ((h ^ data[i]) * _MURMUR2_M) & _MASK
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _MASK
    h ^= h >> 15
    return to_int32(h)


def to_positive(number: int) -> int:
    """Kafka's Utils.toPositive: clears the sign bit (not abs(), which differs for negatives)."""
    return number & 0x7FFFFFFF


def hash_map_capacity(size: int) -> int:
    """Capacity of a java.util.HashMap grown from the default 16 to hold `size` keys (load 0.75)."""
    capacity = 16
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def hash_map_bucket(hash_code: int, capacity: int) -> int:
    h = hash_code & _MASK
    return (h ^ (h >> 16)) & (capacity - 1)  # HashMap.hash() spreads the high bits down


def hash_map_order(keys: Iterable[K], hash_code: Callable[[K], int]) -> list[K]:
    """The iteration order of a java.util.HashMap filled with `keys` by put() in this order:
    by bucket, then by insertion within a bucket (a resize keeps that relative order). A map's
    tree bins (8+ colliding keys in one bucket) are not reproduced."""
    ordered = list(keys)
    capacity = hash_map_capacity(len(ordered))
    ranked = sorted(range(len(ordered)), key=lambda i: (hash_map_bucket(hash_code(ordered[i]), capacity), i))
    return [ordered[i] for i in ranked]


def string_order(text: str) -> bytes:
    """Sort key giving Java's String.compareTo order (UTF-16 code units), not Python's (code points)."""
    return text.encode("utf-16-be", "surrogatepass")
