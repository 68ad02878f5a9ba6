"""The multiRead request's bytes, both ways, without a server."""

from __future__ import annotations

from kazoo.exceptions import NoNodeError
from kazoo.protocol.serialization import int_struct, multiheader_struct, stat_struct
from kazoo.protocol.states import ZnodeStat

from broker.zk.multi_read import MultiRead

STAT = ZnodeStat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


def answer(*entries: bytes | int | None) -> bytes:
    """A multiRead answer: data (or None) per found znode, an int error code per failed one."""
    out = b""
    for entry in entries:
        if isinstance(entry, int):
            out += multiheader_struct.pack(-1, False, entry) + int_struct.pack(entry)
        else:
            body = int_struct.pack(-1) if entry is None else int_struct.pack(len(entry)) + entry
            out += multiheader_struct.pack(4, False, 0) + body + stat_struct.pack(*STAT)
    return out + multiheader_struct.pack(-1, True, -1)


def test_answer_gives_data_and_stat_or_the_error_in_order() -> None:
    results = MultiRead.deserialize(b"xx" + answer(b'{"a":1}', -101, None, b""), 2)
    assert results[0] == (b'{"a":1}', STAT)
    assert isinstance(results[1], NoNodeError)
    assert results[2] == (None, STAT) and results[3] == (b"", STAT)


def test_request_is_one_getdata_per_path_without_watch() -> None:
    request = MultiRead(["/a", "/bc"]).serialize()
    expected = b""
    for path in (b"/a", b"/bc"):
        expected += multiheader_struct.pack(4, False, -1) + int_struct.pack(len(path)) + path + b"\x00"
    assert bytes(request) == expected + multiheader_struct.pack(-1, True, -1)
