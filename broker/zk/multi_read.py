"""ZooKeeper's multiRead (3.6 and later, opcode 22): many getData in one request and one answer.

kazoo has no call for it; this is the request object its connection sends and decodes, built
from kazoo's own serialization helpers. A controller loading fifty thousand partition states
pays one round trip and one Python callback per few hundred states instead of per state.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from kazoo.exceptions import EXCEPTIONS
from kazoo.protocol.serialization import (
    GetData,
    int_struct,
    multiheader_struct,
    stat_struct,
    write_string,
)
from kazoo.protocol.states import ZnodeStat

MULTI_READ = 22
ERROR = -1


class MultiRead(namedtuple("MultiRead", "paths")):
    type = MULTI_READ

    def serialize(self) -> bytearray:
        b = bytearray()
        for path in self.paths:
            b.extend(multiheader_struct.pack(GetData.type, False, -1))
            b.extend(write_string(path))
            b.extend(b"\x00")  # no watch
        return b + multiheader_struct.pack(-1, True, -1)

    @classmethod
    def deserialize(cls, data: bytes, offset: int) -> list[Any]:
        """One entry per path: (data, ZnodeStat), or the exception ZooKeeper gave for it.
        Unpacked with the structs directly: the answer for a few hundred znodes is parsed on
        kazoo's connection thread, which every other request waits behind."""
        results: list[Any] = []
        header_size, stat_size = multiheader_struct.size, stat_struct.size
        while True:
            kind, done, _ = multiheader_struct.unpack_from(data, offset)
            offset += header_size
            if done:
                return results
            if kind == GetData.type:
                (length,) = int_struct.unpack_from(data, offset)
                offset += 4
                value = data[offset:offset + length] if length >= 0 else None
                offset += max(length, 0)
                results.append((value, ZnodeStat._make(stat_struct.unpack_from(data, offset))))
                offset += stat_size
            elif kind == ERROR:
                (err,) = int_struct.unpack_from(data, offset)
                offset += 4
                results.append(EXCEPTIONS[err]())
            else:
                raise ValueError(f"unexpected operation {kind} in a multiRead answer")
