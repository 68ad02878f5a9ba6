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
    MultiHeader,
    int_struct,
    multiheader_struct,
    read_buffer,
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
        """One entry per path: (data, ZnodeStat), or the exception ZooKeeper gave for it."""
        results: list[Any] = []
        header, offset = MultiHeader.deserialize(data, offset)
        while not header.done:
            if header.type == GetData.type:
                value, offset = read_buffer(data, offset)
                stat = ZnodeStat._make(stat_struct.unpack_from(data, offset))
                offset += stat_struct.size
                results.append((value, stat))
            elif header.type == ERROR:
                err = int_struct.unpack_from(data, offset)[0]
                offset += int_struct.size
                results.append(EXCEPTIONS[err]())
            else:
                raise ValueError(f"unexpected operation {header.type} in a multiRead answer")
            header, offset = MultiHeader.deserialize(data, offset)
        return results
