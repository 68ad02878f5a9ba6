"""The primitive types Kafka's message schemas are built of (int16, int32, int64, STRING,
NULLABLE_STRING, BYTES, NULLABLE_BYTES, ARRAY), non-flexible versions: the reader and the
writers of the consumer protocol's metadata and of the records in `__consumer_offsets`."""

from __future__ import annotations

import struct

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
MAX_STRING_BYTES = 0x7FFF  # an int16 length


class SchemaError(ValueError):
    """Kafka's SchemaException: bytes that do not parse as the schema says."""


def int16(value: int) -> bytes:
    return _I16.pack(value)


def int32(value: int) -> bytes:
    return _I32.pack(value)


def int64(value: int) -> bytes:
    return _I64.pack(value)


def nullable_string(text: str | None) -> bytes:
    if text is None:
        return _I16.pack(-1)
    raw = text.encode("utf-8")
    if len(raw) > MAX_STRING_BYTES:
        raise SchemaError(f"String of {len(raw)} bytes is longer than an int16 length allows")
    return _I16.pack(len(raw)) + raw


def nullable_bytes(data: bytes | None) -> bytes:
    return _I32.pack(-1) if data is None else _I32.pack(len(data)) + data


class Reader:
    """Reads the primitive types from `data`, raising SchemaError where it runs out or a
    non-nullable field is null."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.offset = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.offset + n > len(self.data):
            raise SchemaError(f"Buffer underflow at offset {self.offset}: {len(self.data)} bytes, needed "
                              f"{self.offset + max(n, 0)}")
        out = self.data[self.offset:self.offset + n]
        self.offset += n
        return out

    def int16(self) -> int:
        return int(_I16.unpack(self._take(2))[0])

    def int32(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def int64(self) -> int:
        return int(_I64.unpack(self._take(8))[0])

    def nullable_string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        try:
            return self._take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise SchemaError("String is not UTF-8") from None

    def string(self) -> str:
        s = self.nullable_string()
        if s is None:
            raise SchemaError("Null string in a non-nullable field")
        return s

    def nullable_bytes(self) -> bytes | None:
        n = self.int32()
        return None if n < 0 else self._take(n)

    def bytes_(self) -> bytes:
        b = self.nullable_bytes()
        if b is None:
            raise SchemaError("Null bytes in a non-nullable field")
        return b

    def array_length(self) -> int:
        n = self.int32()
        if n < 0:
            raise SchemaError("Null array in a non-nullable field")
        return n

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def done(self) -> None:
        if self.remaining:
            raise SchemaError(f"{self.remaining} bytes left over after the record")
