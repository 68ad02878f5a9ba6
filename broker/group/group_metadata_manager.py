"""The groups and offsets of ``__consumer_offsets`` on this broker (Kafka's GroupMetadataManager).

When this broker becomes the leader of an offsets partition, the manager loads it: it replays the
partition's log up to its end (doLoadGroupsAndOffsets) and hands each group it rebuilt, with its
committed offsets, to the coordinator (onGroupLoaded). It stores what the coordinator's rules decide:
a group's metadata record (storeGroup) and offset commit records (storeOffsets, which first refuses
metadata over offset.metadata.max.bytes), built by offsets_log.py and appended with acks=all. And it
knows which offsets partitions are owned, and which are loading.

It has no thread for its state: the owned and loading partitions belong to the coordinator's thread,
which makes every call here. Its one thread, the loader, only reads a partition's log; what it read,
and every append's completion, comes back to the coordinator's thread through ``schedule``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from broker.group.group_coordinator_rules import StoreGroup, StoreOffsets
from broker.group.group_metadata import GroupMetadata, TopicPartition
from broker.group.offsets_log import (
    GroupMetadataLoader,
    LoadedGroups,
    Record,
    SchemaError,
    group_metadata_record,
    offset_commit_records,
)
from broker.log.record_batch import batches, build_batch, records
from broker.replica_manager import ReplicaManager
from broker.replica_results import ProduceResult
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC
from minikafka_protocol.group import partition_for as offsets_partition_for

# The coordinator's logger: loading and resigning read as one story in the broker's log.
log = logging.getLogger("broker.group.coordinator")

ACKS_ALL = -1  # Kafka's offsets.commit.required.acks, which it deprecated at -1


class GroupMetadataManager:
    """Kafka's GroupMetadataManager: loads offsets partitions, stores group and offset records, and
    keeps which offsets partitions are owned and loading; called on the coordinator's thread."""

    def __init__(
        self,
        broker_id: int,
        replica_manager: ReplicaManager,
        partition_count: Callable[[], int | None],
        schedule: Callable[[Callable[[], None]], None],
        clock: Callable[[], int],
        commit_timeout_ms: int = 5000,
        load_buffer_size: int = 5 * 1024 * 1024,
        max_metadata_bytes: int = 4096,
        log_prefix: str = "",
    ) -> None:
        """``schedule`` runs a task on the coordinator's thread; ``partition_count`` is the number of
        offsets partitions, None while this broker does not know the topic."""
        self._replicas = replica_manager
        self._partition_count = partition_count
        self._schedule = schedule
        self._clock = clock
        self._commit_timeout_ms = commit_timeout_ms
        self._load_buffer_size = load_buffer_size
        self.max_metadata_bytes = max_metadata_bytes
        self.prefix = log_prefix
        self._loader = ThreadPoolExecutor(1, thread_name_prefix=f"group-metadata-manager-{broker_id}")
        # Owned by the coordinator's thread:
        self._owned: set[int] = set()
        self._loading: dict[int, int] = {}  # partition -> the leader epoch it is loaded for

    def shutdown(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)

    # -- partitions ------------------------------------------------------------------------------

    def partition_count(self) -> int | None:
        return self._partition_count()

    def partition_for(self, group_id: str) -> int:
        """Kafka's partitionFor; only asked once the offsets topic is known."""
        count = self._partition_count()
        assert count is not None
        return offsets_partition_for(group_id, count)

    def partition_name(self, group_id: str) -> str | None:
        """The group's offsets partition as the log names it, if the topic is known."""
        count = self._partition_count()
        return f"{OFFSETS_TOPIC}-{offsets_partition_for(group_id, count)}" if count else None

    def is_partition_owned(self, partition: int) -> bool:
        return partition in self._owned

    def is_partition_loading(self, partition: int) -> bool:
        return partition in self._loading

    def is_loading(self) -> bool:
        return bool(self._loading)

    def owned_partitions(self) -> list[int]:
        return sorted(self._owned)

    def loading_partitions(self) -> list[int]:
        return sorted(self._loading)

    # -- loading ---------------------------------------------------------------------------------

    def schedule_load_group_and_offsets(self, partition: int, epoch: int,
                                        on_group_loaded: Callable[[GroupMetadata, int], None]) -> None:
        """Kafka's scheduleLoadGroupAndOffsets: the partition is loading until its log is replayed;
        then it is owned and ``on_group_loaded(group, now_ms)`` gets each of its groups."""
        self._loading[partition] = epoch
        scheduled = time.monotonic()
        self._loader.submit(self._load, partition, epoch, scheduled, on_group_loaded)

    def remove_partition(self, partition: int) -> bool:
        """Kafka's removeGroupsForPartition, for the partitions: neither owned nor loading any more.
        False if it was neither; the coordinator unloads its groups."""
        was_owned = partition in self._owned
        if self._loading.pop(partition, None) is None and not was_owned:
            return False
        self._owned.discard(partition)
        return True

    def _load(self, partition: int, epoch: int, scheduled: float,
              on_group_loaded: Callable[[GroupMetadata, int], None]) -> None:
        """On the loader thread: replay the partition's log up to its end as it is now."""
        started = time.monotonic()
        loader = GroupMetadataLoader()
        replayed = 0
        replica = self._replicas.partition((OFFSETS_TOPIC, partition))
        try:
            if replica is None:
                raise RuntimeError("the partition is not hosted here")
            offset, end = replica.log.log_start_offset, replica.log.log_end_offset
            while offset < end:
                data = replica.log.read(offset, self._load_buffer_size)
                if not data:
                    break
                for pos, header in batches(data):
                    for record in records(data, pos, header):
                        if offset <= record.offset < end:
                            try:
                                loader.add(record.key, record.value)
                                replayed += 1
                            except SchemaError as e:
                                log.error("%s Skipping a malformed record at offset %d of %s-%d: %s", self.prefix,
                                          record.offset, OFFSETS_TOPIC, partition, e)
                    offset = max(offset, header.next_offset)
        except Exception as e:  # a log truncated or closed under us: serve what was read, as Kafka does
            log.error("%s Error loading offsets from %s-%d: %s", self.prefix, OFFSETS_TOPIC, partition, e)
        result = loader.result()
        done = time.monotonic()
        self._schedule(lambda: self._loaded(partition, epoch, result, replayed, (done - scheduled) * 1000,
                                            (started - scheduled) * 1000, on_group_loaded))

    def _loaded(self, partition: int, epoch: int, result: LoadedGroups, replayed: int, took_ms: float,
                waited_ms: float, on_group_loaded: Callable[[GroupMetadata, int], None]) -> None:
        if self._loading.get(partition) != epoch:
            return  # resigned (or re-elected) while loading
        del self._loading[partition]
        self._owned.add(partition)
        now = self._clock()
        for group in result.groups.values():
            if self.partition_for(group.group_id) != partition:
                log.warning("%s Group %s found in %s-%d, where it does not belong; ignored", self.prefix,
                            group.group_id, OFFSETS_TOPIC, partition)
                continue
            on_group_loaded(group, now)
        log.info("%s Finished loading offsets and group metadata from %s-%d in %d milliseconds, of which %d "
                 "milliseconds was spent in the scheduler (%d records, %d groups).", self.prefix, OFFSETS_TOPIC,
                 partition, took_ms, waited_ms, replayed, len(result.groups))

    # -- storing ---------------------------------------------------------------------------------

    def store_group(self, store: StoreGroup, done: Callable[[Errors], None]) -> None:
        """Kafka's storeGroup: append the group's record; ``done(append_error)`` once the ISR has it."""
        self._append(self.partition_for(store.group_id), [group_metadata_record(store.group)], done)

    def store_offsets(self, store: StoreOffsets, done: Callable[[StoreOffsets, Errors], None]) -> None:
        """Kafka's storeOffsets: append the offsets whose metadata is within offset.metadata.max.bytes;
        ``done(written, append_error)`` once the ISR has them, ``written`` being those offsets."""
        kept = {tp: o for tp, o in store.offsets.items() if len(o.metadata) <= self.max_metadata_bytes}
        written = StoreOffsets(store.group_id, kept)
        self._append(self.partition_for(store.group_id), offset_commit_records(store.group_id, kept),
                     lambda error: done(written, error))

    def _append(self, partition: int, batch_records: Sequence[Record], done: Callable[[Errors], None]) -> None:
        """Append to the offsets partition (in call order) and call ``done`` on the coordinator's
        thread once the ISR has it; at once when there is nothing to append."""
        if not batch_records:
            done(Errors.NONE)
            return
        tp = (OFFSETS_TOPIC, partition)

        def replicated(results: Future[dict[TopicPartition, ProduceResult]]) -> None:
            error = results.result()[tp].error
            self._schedule(lambda: done(error))

        self._replicas.append_records(
            ACKS_ALL, self._commit_timeout_ms, {tp: build_batch(list(batch_records))}
        ).add_done_callback(replicated)
