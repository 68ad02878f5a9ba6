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

UNCLEAN_LEADER_ELECTION_ENABLE = "unclean.leader.election.enable"


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
        """`props` (Kafka's topic-config names, string values) over `defaults`; ValueError with
        Kafka's message for the first invalid value. Names Kafka knows but this broker does not
        model (cleanup.policy, compression.type, ...) are ignored: they come from ZooKeeper, where
        a Kafka tool may have put them."""
        changes = {TOPIC_CONFIGS[name].field: parse(name, raw) for name, raw in props.items() if name in TOPIC_CONFIGS}
        return replace(defaults or cls(), **changes)

    @classmethod
    def from_stored_properties(cls, props: Mapping[str, str], defaults: LogConfig) -> tuple[LogConfig, list[str]]:
        """A topic's config as read back from ZooKeeper: each valid override over `defaults`, and
        a message for each invalid one, which keeps its default. CreateTopics refuses invalid
        values, so only a foreign write to ZooKeeper can bring one; one bad value must not cost
        the topic its other settings."""
        changes: dict[str, Any] = {}
        problems = []
        for name, raw in props.items():
            if name in TOPIC_CONFIGS:
                try:
                    changes[TOPIC_CONFIGS[name].field] = parse(name, raw)
                except ValueError as e:
                    problems.append(str(e))
        return replace(defaults, **changes), problems

    def to_properties(self) -> dict[str, str]:
        """The inverse of from_properties, for describing a topic's effective config."""
        out = {}
        for name, definition in TOPIC_CONFIGS.items():
            value = getattr(self, definition.field)
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


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
    UNCLEAN_LEADER_ELECTION_ENABLE: "unclean.leader.election.enable",
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


@dataclass(frozen=True)
class TopicConfig:
    """One topic config: the LogConfig field it sets and the parser that validates its value."""

    field: str
    parse: Callable[[str, str], Any]


# The one table of topic configs this broker models, by Kafka's name, with Kafka's validators
# (LogConfig's ConfigDef): CreateTopics, the logs and the controller's unclean-election check all
# read it. A segment holds at least one batch header (Kafka's floor is the 14-byte legacy record
# overhead; ours is the v2 header, the smallest batch we write), positions and relative offsets
# are int32, an index holds at least one 8-byte entry.
TOPIC_CONFIGS: dict[str, TopicConfig] = {
    "segment.bytes": TopicConfig("segment_bytes", _int_parser(61, _INT32_MAX)),
    "segment.ms": TopicConfig("segment_ms", _int_parser(1)),
    "retention.ms": TopicConfig("retention_ms", _int_parser(-1)),
    "retention.bytes": TopicConfig("retention_bytes", _int_parser(-1)),
    "max.message.bytes": TopicConfig("max_message_bytes", _int_parser(0, _INT32_MAX)),
    "index.interval.bytes": TopicConfig("index_interval_bytes", _int_parser(0, _INT32_MAX)),
    "segment.index.bytes": TopicConfig("segment_index_bytes", _int_parser(8, _INT32_MAX)),
    "min.insync.replicas": TopicConfig("min_insync_replicas", _int_parser(1, _INT32_MAX)),
    UNCLEAN_LEADER_ELECTION_ENABLE: TopicConfig("unclean_leader_election_enable", _parse_bool),
    "file.delete.delay.ms": TopicConfig("file_delete_delay_ms", _int_parser(0)),
}


def parse(name: str, raw: str) -> Any:
    """The value of topic config `name`; ValueError with Kafka's message if it is unknown or invalid."""
    definition = TOPIC_CONFIGS.get(name)
    if definition is None:
        raise ValueError(f"Unknown topic config name: {name}")
    return definition.parse(name, raw)


def validate(props: Mapping[str, str]) -> None:
    """Kafka's LogConfig.validate for a new topic's overrides: every name known, every value valid."""
    for name, raw in props.items():
        parse(name, raw)
