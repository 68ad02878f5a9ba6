"""Hostile requests for every RPC of the brokers, drawn with hypothesis from the messages'
descriptors: random and extreme numbers, strange names, huge repeated fields, and record
batches that are truncated, corrupt, of a wrong CRC or with lengths that lie. Shared by the
fuzz test (a bounded run in `make test`) and `bench/fuzz.py` (a longer one).

Every message is well-formed protobuf: bytes that are not the method's message at all are
refused by gRPC itself before any handler runs. Fields that say how long a request may wait
are kept under a second, so that a request parked as it asked is not taken for a hang."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from broker.log import record_batch as rb
from minikafka_rpc import kafka_pb2

NAMES = ("fuzz-0", "fuzz-1", "fuzzgroup", "__consumer_offsets", "", "*", ".", "..", "a" * 300, "kept")
INT32 = (0, 1, -1, -2, 2**31 - 1, -(2**31), 2**15, 255)
INT64 = (*INT32, 2**63 - 1, -(2**63), 2**40)
MAX_WAIT_MS = 800
TIMING_WORDS = ("timeout", "wait", "delay", "interval")


@dataclass(frozen=True)
class Rpc:
    """One method of one service: its gRPC path and message classes."""

    path: str
    name: str
    request: type[Message]
    response: type[Message]

    def call(self, channel: grpc.Channel) -> Callable[..., Any]:
        return channel.unary_unary(self.path, request_serializer=self.request.SerializeToString,
                                   response_deserializer=self.response.FromString)


def rpcs() -> list[Rpc]:
    found = []
    for service in kafka_pb2.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            found.append(_rpc(service.full_name, method))
    return found


def _rpc(service: str, method: MethodDescriptor) -> Rpc:
    return Rpc(f"/{service}/{method.name}", method.name, message_factory.GetMessageClass(method.input_type),
               message_factory.GetMessageClass(method.output_type))


def record_batches() -> st.SearchStrategy[bytes]:
    """A valid batch, or one that is cut short, has a byte flipped, a wrong CRC or a length that lies."""
    valid = st.lists(st.binary(max_size=64), min_size=1, max_size=5).map(
        lambda values: rb.build_batch([(None, v) for v in values]))

    def spoil(batch: bytes, how: int, at: int, value: int) -> bytes:
        if how == 0:
            return batch[: at % max(1, len(batch))]
        data = bytearray(batch)
        if how == 1:
            data[at % len(data)] ^= 0xFF
        elif how == 2:
            data[17:21] = struct.pack(">I", value & 0xFFFFFFFF)  # the CRC
        else:
            data[8:12] = struct.pack(">i", value)  # batch length
        return bytes(data)

    spoiled = st.builds(spoil, valid, st.integers(0, 3), st.integers(0, 10_000), st.sampled_from(INT32))
    return st.one_of(valid, spoiled, st.binary(max_size=200), valid.map(lambda b: b * 3))


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 6 says is_repeated; older releases only have the label.
    repeated = getattr(field, "is_repeated", None)
    return bool(repeated) if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    timing = any(word in field.name for word in TIMING_WORDS)
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        if timing:
            return st.integers(-1000, MAX_WAIT_MS)
        return st.one_of(st.sampled_from(INT32), st.integers(-(2**31), 2**31 - 1))
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        if timing:
            return st.integers(-1000, MAX_WAIT_MS)
        return st.one_of(st.sampled_from(INT64), st.integers(-(2**63), 2**63 - 1))
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if t == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(NAMES), st.text(max_size=40))
    if t == FieldDescriptor.TYPE_BYTES:
        return record_batches() if field.name == "records" else st.binary(max_size=300)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    raise TypeError(f"no strategy for {field.full_name}")


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """A message of `descriptor` with any of its fields set, nested messages to a depth of 3."""
    cls = message_factory.GetMessageClass(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    maps = set()
    for field in descriptor.fields:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key, item = entry.fields_by_name["key"], entry.fields_by_name["value"]
            fields[field.name] = st.dictionaries(_scalar(key), _scalar(item), max_size=6)
            maps.add(field.name)
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            value = st.deferred(lambda f=field: messages(f.message_type, depth + 1))
        else:
            value = _scalar(field)
        if _repeated(field):
            # Mostly a few; now and then many, the way a hostile client sends them.
            many = depth == 0 and field.type != FieldDescriptor.TYPE_MESSAGE
            value = st.one_of(st.lists(value, max_size=4),
                              st.lists(value, min_size=200, max_size=600) if many else st.lists(value, max_size=8))
        fields[field.name] = value

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            if name in maps:
                getattr(message, name).update(value)
            elif _repeated(field):
                getattr(message, name).extend(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=fields).map(build)


@dataclass
class FuzzRun:
    sent: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)  # calls answered with a gRPC error, or not at all


def run(channel: grpc.Channel, requests: int, call_timeout_s: float = 20.0) -> FuzzRun:
    """Send `requests` hostile requests, one at a time, each to a method drawn at random; a call
    that ends in any gRPC error (INTERNAL, UNAVAILABLE after a crash, DEADLINE_EXCEEDED for a
    hang, ...) is a failure. Deterministic: the same count sends the same requests."""
    methods = rpcs()
    result = FuzzRun()

    @settings(max_examples=requests, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(st.data())
    def hostile(data: st.DataObject) -> None:
        rpc = data.draw(st.sampled_from(methods))
        request = data.draw(messages(rpc.request.DESCRIPTOR))
        result.sent += 1
        try:
            rpc.call(channel)(request, timeout=call_timeout_s)
        except grpc.RpcError as e:
            result.failures.append(f"{rpc.name}: {e.code().name} ({e.details()}) for {str(request)[:300]!r}")

    hostile()
    return result
