"""A partition log's settings (Kafka's LogConfig): the topic-level names and defaults.

A topic's overrides are stored in ZooKeeper as strings under Kafka's names (`segment.bytes`,
`retention.ms`, ...); `LogConfig.from_properties` parses them over the broker's defaults, which
the broker builds from its own settings through `SERVER_SYNONYMS` (`log.segment.bytes`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

_INT32_MAX = (1 << 31) - 1
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    retention_ms: int = 604800000  # -1: no time limit
    retention_bytes: int = -1  # -1: no size limit
    max_message_bytes: int = 1048588
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10485760
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    file_delete_delay_ms: int = 60000

    @classmethod
    def from_properties(cls, props: Mapping[str, str], defaults: LogConfig | None = None) -> LogConfig:
        """`props` (Kafka's topic-config names, string values) over `defaults`. Names Kafka knows
        but this broker does not model (cleanup.policy, compression.type, ...) are ignored: they
        come from ZooKeeper, where a Kafka tool may have put them."""
        changes: dict[str, Any] = {}
        for name, raw in props.items():
            field_name = TOPIC_CONFIGS.get(name)
            if field_name is not None:
                changes[field_name] = _PARSERS[field_name](name, raw)
        return replace(defaults or cls(), **changes)

    def to_properties(self) -> dict[str, str]:
        """The inverse of from_properties, for describing a topic's effective config."""
        out = {}
        for name, field_name in TOPIC_CONFIGS.items():
            value = getattr(self, field_name)
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


# Kafka's topic-config name -> LogConfig field.
TOPIC_CONFIGS: dict[str, str] = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "max.message.bytes": "max_message_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "segment.index.bytes": "segment_index_bytes",
    "min.insync.replicas": "min_insync_replicas",
    "unclean.leader.election.enable": "unclean_leader_election_enable",
    "file.delete.delay.ms": "file_delete_delay_ms",
}

# Kafka's topic-config name -> the broker setting that gives its default (Kafka's
# ServerTopicConfigSynonyms, primary names only: log.roll.hours and the like fold into the broker's
# own resolved value).
SERVER_SYNONYMS: dict[str, str] = {
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "retention.ms": "log.retention.ms",
    "retention.bytes": "log.retention.bytes",
    "max.message.bytes": "message.max.bytes",
    "index.interval.bytes": "log.index.interval.bytes",
    "segment.index.bytes": "log.index.size.max.bytes",
    "min.insync.replicas": "min.insync.replicas",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "file.delete.delay.ms": "log.segment.delete.delay.ms",
}


def _int_parser(minimum: int, maximum: int = _INT64_MAX) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"Invalid value {raw} for configuration {name}: Not a number of type INT") from None
        if value < minimum:
            raise ValueError(f"Invalid value {raw} for configuration {name}: Value must be at least {minimum}")
        if value > maximum:
            raise ValueError(f"Invalid value {raw} for configuration {name}: Value must be no more than {maximum}")
        return value

    return parse


def _parse_bool(name: str, raw: str) -> bool:
    lowered = str(raw).strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"Invalid value {raw} for configuration {name}: Expected value to be either true or false")
    return lowered == "true"


# Kafka's validators: a segment holds at least one batch header (Kafka's floor is the 14-byte
# legacy record overhead; ours is the v2 header, the smallest batch we can write), positions and
# relative offsets are int32, an index holds at least one 8-byte entry.
_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "segment_bytes": _int_parser(61, _INT32_MAX),
    "segment_ms": _int_parser(1),
    "retention_ms": _int_parser(-1),
    "retention_bytes": _int_parser(-1),
    "max_message_bytes": _int_parser(0, _INT32_MAX),
    "index_interval_bytes": _int_parser(0, _INT32_MAX),
    "segment_index_bytes": _int_parser(8, _INT32_MAX),
    "min_insync_replicas": _int_parser(1, _INT32_MAX),
    "unclean_leader_election_enable": _parse_bool,
    "file_delete_delay_ms": _int_parser(0),
}

