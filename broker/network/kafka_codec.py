"""Kafka's request and response frames, read and written with kio (frozen dataclasses generated
from Kafka's own JSON message schemas, flexible versions and request header v2 included).

kio was chosen over kafka-python's `kafka.protocol`: it is a codec and nothing else, it covers
every API and version Kafka defines, and its entities are plain immutable data, where
kafka-python's protocol classes are a client's internals."""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import UnknownAPIKey, UnknownEntity, load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

# The versions we answer, by API key: the request layer's APIs at the versions whose fields it
# fills. A client takes the lower of its and our highest; anything else is UNSUPPORTED_VERSION.
API_VERSIONS_KEY = 18
SUPPORTED_VERSIONS: dict[int, tuple[int, int]] = {
    0: (3, 9),  # Produce: v3 is the first with record batches (magic v2), the only ones we keep
    1: (4, 12),  # Fetch: v13 names topics by id
    2: (1, 7),  # ListOffsets: v0 asks for a list of offsets
    3: (0, 12),  # Metadata; v10+ carry topic ids, which we answer as the zero uuid
    API_VERSIONS_KEY: (0, 3),
    22: (0, 4),  # InitProducerId
}


class CodecError(Exception):
    """A frame we cannot read: Kafka closes the connection."""


@dataclass(frozen=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@cache
def _request_type(api_key: int, version: int) -> type | None:
    try:
        return load_request_schema(api_key, version)
    except (UnknownAPIKey, UnknownEntity):
        return None


@cache
def response_type(api_key: int, version: int) -> type:
    return load_response_schema(api_key, version)


def read_header(frame: bytes) -> RequestHeader:
    """The header of a request frame, whatever its version: api key, version and correlation id
    come first in every header version, so an error can be answered even to what we cannot read."""
    if len(frame) < 8:
        raise CodecError(f"a request of {len(frame)} bytes has no header")
    api_key, api_version, correlation_id = struct.unpack_from(">hhi", frame)
    client_id: str | None = None
    if len(frame) >= 10:
        (length,) = struct.unpack_from(">h", frame, 8)
        if length >= 0:
            client_id = frame[10:10 + length].decode(errors="replace")
    return RequestHeader(api_key, api_version, correlation_id, client_id)


def read_request(header: RequestHeader, frame: bytes) -> Any:
    """The request body as kio's entity of its API and version; CodecError if it does not parse."""
    schema = _request_type(header.api_key, header.api_version)
    if schema is None:
        raise CodecError(f"no schema for api key {header.api_key} version {header.api_version}")
    try:
        # kio's readers answer the entity and the bytes it took.
        _, header_size = entity_reader(schema.__header_schema__)(frame, 0)
        body, body_size = entity_reader(schema)(frame, header_size)
        end = header_size + body_size
    except Exception as e:  # kio raises several types for a short or malformed buffer
        raise CodecError(f"cannot read {schema.__name__} v{header.api_version}: {e}") from e
    if end != len(frame):
        raise CodecError(f"{len(frame) - end} bytes after {schema.__name__} v{header.api_version}")
    return body


def write_response(correlation_id: int, response: Any) -> bytes:
    """A whole response frame (size, header, body) for kio's response entity."""
    buffer = io.BytesIO()
    header_schema = type(response).__header_schema__
    entity_writer(header_schema)(buffer, header_schema(correlation_id=correlation_id))
    entity_writer(type(response))(buffer, response)
    body = buffer.getvalue()
    return struct.pack(">i", len(body)) + body


def unsupported_api_versions(correlation_id: int) -> bytes:
    """Kafka's answer to an ApiVersions request at a version it does not know: error 35 in the v0
    layout (which every client can read), with the versions it does support, so that the client
    can ask again at one of them."""
    schema = response_type(API_VERSIONS_KEY, 0)
    return write_response(correlation_id, build(schema, {
        "error_code": ErrorCode.unsupported_version.value, "api_keys": api_version_ranges()}))


def api_version_ranges() -> list[dict[str, int]]:
    return [{"api_key": key, "min_version": low, "max_version": high}
            for key, (low, high) in sorted(SUPPORTED_VERSIONS.items())]


# -- building kio's entities from plain values --------------------------------------------------

@cache
def _fields(entity: type) -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(entity)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(entity) if not f.name.startswith("__")}


def _entity_of(hint: Any) -> type | None:
    """The entity type a field holds, one or a tuple of them; None for a primitive."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate  # type: ignore[return-value]
        if typing.get_origin(candidate) is tuple:
            inner = typing.get_args(candidate)[0]
            if dataclasses.is_dataclass(inner):
                return inner  # type: ignore[return-value]
    return None


def build(entity: type, values: Mapping[str, Any]) -> Any:
    """kio's entity of one API version from the values of any version: fields this version lacks
    are dropped, nested entities are built from dicts the same way, error codes and durations
    take kio's types. One translation of each API then serves all its versions."""
    kwargs: dict[str, Any] = {}
    for name, (field, hint) in _fields(entity).items():
        if name not in values:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                kwargs[name] = _empty(hint)
            continue
        value = values[name]
        nested = _entity_of(hint)
        if nested is not None and isinstance(value, Mapping):
            value = build(nested, value)
        elif nested is not None and isinstance(value, list | tuple):
            value = tuple(build(nested, v) if isinstance(v, Mapping) else v for v in value)
        elif name == "error_code":
            value = ErrorCode(value)
        elif isinstance(value, list):
            value = tuple(value)
        elif _is_timedelta(hint) and isinstance(value, int):
            value = datetime.timedelta(milliseconds=value)
        elif _is_a(hint, datetime.datetime) and isinstance(value, int):  # a timestamp in ms; -1 is none
            value = None if value < 0 else datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
        kwargs[name] = value
    return entity(**kwargs)


def _is_a(hint: Any, kind: type) -> bool:
    return any(isinstance(c, type) and issubclass(c, kind) for c in (hint, *typing.get_args(hint)))


def _is_timedelta(hint: Any) -> bool:
    return _is_a(hint, datetime.timedelta)


def _empty(hint: Any) -> Any:
    """A required field the request layer has no value for: Kafka's empty value of its type."""
    if _is_timedelta(hint):
        return datetime.timedelta(0)
    if typing.get_origin(hint) is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(hint)):
        return ()
    if type(None) in typing.get_args(hint):
        return None
    raise TypeError(f"no value for a required field of type {hint}")
