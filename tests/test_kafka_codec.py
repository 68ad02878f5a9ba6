"""The Kafka-protocol codec over kio: headers read whatever follows, one translation's values
built for every version of an API, and the v0 answer to an unknown ApiVersions version."""

from __future__ import annotations

import io
import struct

import pytest
from kio.index import load_request_schema
from kio.serial import entity_writer

from broker.api import messages as m
from broker.network import kafka_codec as codec
from broker.network.kafka_translation import TRANSLATIONS, api_versions_response
from minikafka_protocol.errors import Errors


def frame_of(api_key: int, version: int, request: object, correlation_id: int = 5) -> bytes:
    schema = load_request_schema(api_key, version)
    buffer = io.BytesIO()
    header = schema.__header_schema__
    values = {"request_api_key": api_key, "request_api_version": version, "correlation_id": correlation_id,
              "client_id": "test"}
    entity_writer(header)(buffer, codec.build(header, values))
    entity_writer(schema)(buffer, request)
    return buffer.getvalue()


@pytest.mark.parametrize("version", range(0, 13))
def test_every_metadata_version_reads_into_the_layers_request_and_answers(version: int) -> None:
    schema = load_request_schema(3, version)
    request = codec.build(schema, {"topics": [{"name": "a"}, {"name": "b"}],
                                   "include_topic_authorized_operations": False,
                                   "include_cluster_authorized_operations": False})
    frame = frame_of(3, version, request)
    header = codec.read_header(frame)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (3, version, 5, "test")
    translation = TRANSLATIONS[3]
    assert translation.request(codec.read_request(header, frame), version) == m.MetadataRequest(("a", "b"))
    answer = m.MetadataResponse("cluster", 1, 1, (), (m.TopicMetadata("a", Errors.NONE),))
    written = codec.write_response(5, codec.build(codec.response_type(3, version),
                                                  translation.response(answer, version)))
    (size, correlation_id) = struct.unpack_from(">ii", written)
    assert size == len(written) - 4 and correlation_id == 5


def test_metadata_v0_with_no_topics_asks_for_every_topic() -> None:
    request = codec.build(load_request_schema(3, 0), {"topics": []})
    assert TRANSLATIONS[3].request(request, 0) == m.MetadataRequest(None)
    assert TRANSLATIONS[3].request(codec.build(load_request_schema(3, 1), {"topics": []}), 1) == m.MetadataRequest(())


@pytest.mark.parametrize("frame", [b"", b"\x00\x03", b"\x00\x03\x00\x0c\x00\x00"])
def test_a_frame_shorter_than_a_header_is_a_codec_error(frame: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.read_header(frame)


def test_trailing_or_missing_bytes_are_codec_errors() -> None:
    frame = frame_of(3, 12, codec.build(load_request_schema(3, 12), {"topics": None,
                                                                    "include_topic_authorized_operations": False}))
    header = codec.read_header(frame)
    with pytest.raises(codec.CodecError, match="bytes after"):
        codec.read_request(header, frame + b"\0")
    with pytest.raises(codec.CodecError):
        codec.read_request(header, frame[:-2])


def test_unknown_api_versions_version_gets_error_35_in_the_v0_layout_with_our_ranges() -> None:
    written = codec.unsupported_api_versions(9)
    correlation_id, error_code, count = struct.unpack_from(">ihi", written, 4)
    assert (correlation_id, error_code, count) == (9, 35, len(codec.SUPPORTED_VERSIONS))
    ranges = [struct.unpack_from(">hhh", written, 14 + 6 * i) for i in range(count)]
    assert ranges == [(k, lo, hi) for k, (lo, hi) in sorted(codec.SUPPORTED_VERSIONS.items())]


def test_every_advertised_api_has_a_translation_and_its_versions_build() -> None:
    for key, (low, high) in codec.SUPPORTED_VERSIONS.items():
        assert key == codec.API_VERSIONS_KEY or key in TRANSLATIONS
        for version in range(low, high + 1):
            codec.response_type(key, version)
    for version in range(0, 4):
        codec.build(codec.response_type(18, version), api_versions_response(version))
