"""The records of ``__consumer_offsets`` (Kafka's GroupMetadataManager schemas and its load).

Every record has a key and a value, each starting with an int16 version. The key's version says
what the record is, so that log compaction keeps one record per group and per committed partition:

    key v0/v1 (OffsetCommitKey)   group string | topic string | partition int32
    key v2    (GroupMetadataKey)  group string

    OffsetCommitValue   v0, v2: offset int64 | metadata string | commitTimestamp int64
                        v1:     offset int64 | metadata string | commitTimestamp int64 | expireTimestamp int64
                        v3:     offset int64 | leaderEpoch int32 | metadata string | commitTimestamp int64
    GroupMetadataValue  protocolType string | generation int32 | protocol string? | leader string? |
                        currentStateTimestamp int64 (v2+) | members [
                          memberId string | groupInstanceId string? (v3+) | clientId string | clientHost string |
                          rebalanceTimeout int32 (v1+) | sessionTimeout int32 | subscription bytes | assignment bytes ]

string: int16 length + UTF-8 (length -1 is null where marked ?); bytes: int32 length + data; arrays: int32 count.
We write what Kafka 2.3+ writes (key v1 and v2, values v3; v1 for an offset with an expire timestamp)
and read every non-flexible version. A null value (tombstone) deletes the offset or the group.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from broker.group.group_metadata import GroupMetadata, GroupSnapshot, OffsetAndMetadata, TopicPartition
from broker.group.member_metadata import MemberMetadata
from minikafka_protocol.types import Reader, SchemaError, int16, int32, int64, nullable_bytes, nullable_string

log = logging.getLogger("broker.group.offsets_log")

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
GROUP_METADATA_VALUE_VERSION = 3
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

# -- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetKey:
    version: int
    group_id: str
    topic_partition: TopicPartition


@dataclass(frozen=True)
class GroupMetadataKey:
    version: int
    group_id: str


@dataclass(frozen=True)
class UnknownKey:
    version: int


def offset_commit_key(group_id: str, tp: TopicPartition) -> bytes:
    topic, partition = tp
    return int16(OFFSET_COMMIT_KEY_VERSION) + nullable_string(group_id) + nullable_string(topic) + int32(partition)


def group_metadata_key(group_id: str) -> bytes:
    return int16(GROUP_METADATA_KEY_VERSION) + nullable_string(group_id)


def read_message_key(key: bytes) -> OffsetKey | GroupMetadataKey | UnknownKey:
    """Kafka's readMessageKey: versions 0 and 1 are offsets, 2 is group metadata, others unknown."""
    r = Reader(key)
    version = r.int16()
    if version in (0, 1):
        group_id, topic, partition = r.string(), r.string(), r.int32()
        r.done()
        return OffsetKey(version, group_id, (topic, partition))
    if version == 2:
        group_id = r.string()
        r.done()
        return GroupMetadataKey(version, group_id)
    return UnknownKey(version)


# -- offset commit values ----------------------------------------------------------------------


def offset_commit_value(offset: OffsetAndMetadata) -> bytes:
    """Kafka's offsetCommitValue: v3, or v1 when the (pre-KIP-211) expire timestamp is set."""
    if offset.expire_timestamp_ms is not None:
        return (int16(1) + int64(offset.offset) + nullable_string(offset.metadata)
                + int64(offset.commit_timestamp_ms) + int64(offset.expire_timestamp_ms))
    epoch = NO_PARTITION_LEADER_EPOCH if offset.leader_epoch is None else offset.leader_epoch
    return (int16(OFFSET_COMMIT_VALUE_VERSION) + int64(offset.offset) + int32(epoch)
            + nullable_string(offset.metadata) + int64(offset.commit_timestamp_ms))


def read_offset_message_value(value: bytes | None) -> OffsetAndMetadata | None:
    """Kafka's readOffsetMessageValue; None for a tombstone."""
    if value is None:
        return None
    r = Reader(value)
    version = r.int16()
    if version not in (0, 1, 2, 3):
        raise SchemaError(f"Unknown offset message version: {version}")
    offset = r.int64()
    epoch = r.int32() if version >= 3 else NO_PARTITION_LEADER_EPOCH
    metadata = r.string()
    commit_timestamp = r.int64()
    expire_timestamp = r.int64() if version == 1 else NO_TIMESTAMP
    r.done()
    return OffsetAndMetadata(
        offset=offset,
        metadata=metadata,
        commit_timestamp_ms=commit_timestamp,
        leader_epoch=None if epoch == NO_PARTITION_LEADER_EPOCH else epoch,
        expire_timestamp_ms=None if expire_timestamp == NO_TIMESTAMP else expire_timestamp,
    )


# -- group metadata values ---------------------------------------------------------------------


def group_metadata_value(group: GroupSnapshot) -> bytes:
    """Kafka's groupMetadataValue (v3): the generation, protocol, leader and every member with its
    subscription for the chosen protocol and its assignment."""
    timestamp = NO_TIMESTAMP if group.current_state_timestamp_ms is None else group.current_state_timestamp_ms
    out = [
        int16(GROUP_METADATA_VALUE_VERSION),
        nullable_string(group.protocol_type or ""),
        int32(group.generation_id),
        nullable_string(group.protocol_name),
        nullable_string(group.leader_id),
        int64(timestamp),
        int32(len(group.members)),
    ]
    for member in group.members:
        out += [
            nullable_string(member.member_id),
            nullable_string(member.group_instance_id),
            nullable_string(member.client_id),
            nullable_string(member.client_host),
            int32(member.rebalance_timeout_ms),
            int32(member.session_timeout_ms),
            nullable_bytes(member.subscription),
            nullable_bytes(member.assignment),
        ]
    return b"".join(out)


def read_group_message_value(group_id: str, value: bytes | None) -> GroupMetadata | None:
    """Kafka's readGroupMessageValue; None for a tombstone. Each member supports only the group's
    protocol, with its stored subscription as metadata."""
    if value is None:
        return None
    r = Reader(value)
    version = r.int16()
    if version not in (0, 1, 2, 3):
        raise SchemaError(f"Unknown group metadata message version: {version}")
    protocol_type = r.string()
    generation = r.int32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    timestamp = r.int64() if version >= 2 else NO_TIMESTAMP
    members = []
    for _ in range(r.array_length()):
        member_id = r.string()
        instance_id = r.nullable_string() if version >= 3 else None
        client_id, client_host = r.string(), r.string()
        rebalance_timeout = r.int32() if version >= 1 else None
        session_timeout = r.int32()
        subscription, assignment = r.bytes_(), r.bytes_()
        if protocol is None:
            raise SchemaError(f"Group {group_id} has members but no protocol")
        members.append(MemberMetadata(
            member_id=member_id,
            group_instance_id=instance_id,
            client_id=client_id,
            client_host=client_host,
            # Version 0 had no rebalance timeout: the session timeout served as both.
            rebalance_timeout_ms=session_timeout if rebalance_timeout is None else rebalance_timeout,
            session_timeout_ms=session_timeout,
            protocol_type=protocol_type,
            supported_protocols=[(protocol, subscription)],
            assignment=assignment,
        ))
    r.done()
    return GroupMetadata.load_group(
        group_id,
        generation_id=generation,
        protocol_type=protocol_type,
        protocol_name=protocol,
        leader_id=leader,
        current_state_timestamp_ms=None if timestamp == NO_TIMESTAMP else timestamp,
        members=members,
    )


# -- records for the metadata manager's writes ------------------------------------------------

Record = tuple[bytes, bytes | None]


def group_metadata_record(group: GroupSnapshot) -> Record:
    return group_metadata_key(group.group_id), group_metadata_value(group)


def offset_commit_records(group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> list[Record]:
    return [(offset_commit_key(group_id, tp), offset_commit_value(o)) for tp, o in offsets.items()]


def group_tombstones(group: GroupMetadata) -> list[Record]:
    """What deleting a group writes (Kafka's cleanupGroupMetadata): its offsets, then the group itself."""
    records: list[Record] = [(offset_commit_key(group.group_id, tp), None) for tp in group.offsets]
    records.append((group_metadata_key(group.group_id), None))
    return records


# -- the load ----------------------------------------------------------------------------------


@dataclass
class LoadedGroups:
    """One offsets partition read back: its groups (with their offsets) and the groups it deleted."""

    groups: dict[str, GroupMetadata] = field(default_factory=dict)
    removed_group_ids: set[str] = field(default_factory=set)


class GroupMetadataLoader:
    """Kafka's GroupMetadataManager.doLoadGroupsAndOffsets without the log: feed the records of one
    ``__consumer_offsets`` partition in offset order, then take ``result()``.

    The latest record for a key wins and a tombstone removes it. A group with offsets but no group
    record (a "simple" consumer's, or one whose group record was deleted) comes back Empty.
    Transactional offset commits (pending until their marker) are not modelled."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, TopicPartition], OffsetAndMetadata] = {}
        self._groups: dict[str, GroupMetadata] = {}
        self._removed: set[str] = set()

    def add(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            raise SchemaError("Group metadata/offset entry key should not be null")
        parsed = read_message_key(key)
        if isinstance(parsed, OffsetKey):
            offset = read_offset_message_value(value)
            gtp = (parsed.group_id, parsed.topic_partition)
            if offset is None:
                self._offsets.pop(gtp, None)
            else:
                self._offsets[gtp] = offset
        elif isinstance(parsed, GroupMetadataKey):
            group = read_group_message_value(parsed.group_id, value)
            if group is None:
                self._groups.pop(parsed.group_id, None)
                self._removed.add(parsed.group_id)
            else:
                self._removed.discard(parsed.group_id)
                self._groups[parsed.group_id] = group
        else:
            log.warning("Unknown message key with version %d while loading offsets and group metadata. Ignoring it.",
                        parsed.version)

    def result(self) -> LoadedGroups:
        loaded = LoadedGroups(removed_group_ids=set(self._removed))
        for group_id, group in self._groups.items():
            group.offsets.clear()  # refilled below, so result() may be taken again after more records
            loaded.groups[group_id] = group
        for (group_id, tp), offset in self._offsets.items():
            group = loaded.groups.get(group_id)
            if group is None:
                group = loaded.groups[group_id] = GroupMetadata(group_id)
            group.offsets[tp] = offset
        return loaded


def load_groups_and_offsets(records: Iterable[tuple[bytes | None, bytes | None]]) -> LoadedGroups:
    """Replay ``(key, value)`` records of one offsets partition, in order."""
    loader = GroupMetadataLoader()
    for key, value in records:
        loader.add(key, value)
    return loader.result()
