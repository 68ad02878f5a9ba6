"""The broker's replicas (Kafka's ReplicaManager): which partitions it leads or follows, as the
controller told it, and the data path through them.

Controller requests are checked as Kafka checks them: a request from a controller older than
the newest one seen is refused (STALE_CONTROLLER_EPOCH), one meant for an earlier incarnation
of this broker too (STALE_BROKER_EPOCH), and a partition state whose leader epoch is not newer
than the one the broker holds is ignored.

Produce appends to the leaders' logs here; an acks=all write waits in the delayed-produce
purgatory (broker/delayed_produce.py) until the high watermark passes it. Fetches are served by
the fetch path (broker/fetch_path.py), with the followers' incremental fetch sessions. Every
change a fetch or a write may wait for goes through one DataChanges (broker/data_changes.py). The
ISR manager (broker/isr_manager.py) is the one writer of this broker's ISR changes to ZooKeeper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

from broker.clock import now_ms
from broker.controller_fence import log_stale
from broker.data_changes import DataChanges
from broker.delayed_operation import DelayedOperationPurgatory
from broker.delayed_produce import DelayedProduce
from broker.fetch_path import FetchPath
from broker.isr_manager import IsrManager, ReplicaManagerCounters, WriteIsr
from broker.log.checkpoint_file import read_offsets, write_offsets
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.log.record_batch import CorruptRecordError, UnsupportedCompressionError
from broker.log.unified_log import RecordTooLargeError
from broker.metadata_cache import MetadataCache, PartitionInfo, TopicPartition
from broker.partition import Partition
from broker.replica_fetcher import ReplicaFetcherManager
from broker.replica_results import ProduceResult
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)
state_change_log = logging.getLogger("broker.state.change")

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
CONSUMER_REPLICA_ID = -1
HW_CHECKPOINT = "replication-offset-checkpoint"


class ReplicaManager:
    def __init__(
        self,
        broker_id: int,
        broker_epoch: Callable[[], int],
        log_manager: LogManager,
        metadata_cache: MetadataCache | None = None,
        write_isr: WriteIsr | None = None,
        topic_config: Callable[[str], dict[str, str]] = lambda _topic: {},
        replica_lag_time_max_ms: int = 30000,
        fetcher_config: dict[str, int] | None = None,
        fetch_session_cache_slots: int = 1000,
    ) -> None:
        self.broker_id = broker_id
        self._broker_epoch = broker_epoch
        self.log_manager = log_manager
        self.metadata_cache = metadata_cache or MetadataCache()
        self._topic_config = topic_config
        self._lock = threading.Lock()  # the partitions map and the controller epoch
        self.changes = DataChanges()
        self.controller_epoch = 0
        self._partitions: dict[TopicPartition, Partition] = {}
        self.counters = ReplicaManagerCounters()
        self.prefix = f"[Broker id={broker_id}]"
        self.fetchers = ReplicaFetcherManager(self, **(fetcher_config or {}))
        self.fetch_path = FetchPath(self, self.changes, fetch_session_cache_slots)
        self.delayed_produces = DelayedOperationPurgatory(f"delayed-produce-{broker_id}", self.changes)
        self.isr = IsrManager(self.prefix, self.led_partitions, write_isr, self.counters, self.notify_data_changed,
                              replica_lag_time_max_ms)
        self._checkpointed_high_watermarks: dict[TopicPartition, int] = {}
        # Kafka's onLeadershipChange callbacks (the group coordinator's): called with the partitions
        # this broker now leads, with their leader epochs, and those it stopped leading.
        self.leadership_listeners: list[
            Callable[[list[tuple[TopicPartition, int]], list[TopicPartition]], None]
        ] = []
        self._high_watermarks_written: dict[TopicPartition, int] | None = None
        for directory in log_manager.log_dirs:
            self._checkpointed_high_watermarks.update(read_offsets(Path(directory) / HW_CHECKPOINT))

    # -- views ---------------------------------------------------------------------------------

    @property
    def broker_epoch(self) -> int:
        """This broker's epoch: the zxid that created its registration, as the controller knows it."""
        return self._broker_epoch()

    def partitions(self) -> dict[TopicPartition, PartitionInfo]:
        """Each hosted partition's state as the controller last sent it."""
        with self._lock:
            return {tp: p.state for tp, p in self._partitions.items() if p.state is not None}

    def partition(self, tp: TopicPartition) -> Partition | None:
        return self._partitions.get(tp)

    def led_partitions(self) -> list[Partition]:
        with self._lock:
            return [p for p in self._partitions.values() if p.is_leader]

    def leader_partitions(self) -> list[TopicPartition]:
        with self._lock:
            return sorted(tp for tp, p in self._partitions.items() if p.is_leader)

    def under_replicated_partitions(self) -> list[TopicPartition]:
        """Partitions this broker leads whose ISR is smaller than their replica set."""
        with self._lock:
            partitions = list(self._partitions.items())
        return sorted(tp for tp, p in partitions if p.is_leader and p.state and len(p.isr) < len(p.state.replicas))

    def notify_data_changed(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Records appended, a high watermark or log start moved, a replica's state changed: in
        the partitions `tps`, or anywhere when None. Wakes the fetches and writes waiting."""
        self.changes.notify(tps)

    # -- controller requests -------------------------------------------------------------------

    def accept_controller_request(
        self, kind: str, controller_id: int, controller_epoch: int, broker_epoch: int
    ) -> Errors:
        with self._lock:
            return self._check_controller(kind, controller_id, controller_epoch, broker_epoch)

    def _check_controller(self, kind: str, controller_id: int, controller_epoch: int, broker_epoch: int) -> Errors:
        if controller_epoch < self.controller_epoch:
            log_stale(self.prefix, kind, controller_id, controller_epoch, self.controller_epoch)
            return Errors.STALE_CONTROLLER_EPOCH
        if broker_epoch != -1 and broker_epoch < self._broker_epoch():
            log.warning(
                "%s Ignoring %s request from controller %d: broker epoch %d is older than the current %d",
                self.prefix, kind, controller_id, broker_epoch, self._broker_epoch(),
            )
            return Errors.STALE_BROKER_EPOCH
        self.controller_epoch = controller_epoch
        return Errors.NONE

    def become_leader_or_follower(
        self, controller_id: int, controller_epoch: int, broker_epoch: int, states: list[PartitionInfo]
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        with self._lock:
            error = self._check_controller("LeaderAndIsr", controller_id, controller_epoch, broker_epoch)
            if error is not Errors.NONE:
                return error, {}
            results: dict[TopicPartition, Errors] = {}
            leaders: list[tuple[Partition, PartitionInfo]] = []
            followers: list[tuple[Partition, PartitionInfo]] = []
            # Read once per topic and request: a new topic's LeaderAndIsr carries all its partitions.
            configs: dict[str, LogConfig] = {}
            for state in states:
                tp = (state.topic, state.partition)
                if self.broker_id not in state.replicas:
                    results[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
                    continue
                current = self._partitions.get(tp)
                if current is not None and state.leader_epoch <= current.leader_epoch:
                    state_change_log.info(
                        "%s Ignoring LeaderAndIsr request from controller %d with correlation epoch %d for "
                        "partition %s since its associated leader epoch %d is not higher than the current "
                        "leader epoch %d",
                        self.prefix, controller_id, controller_epoch, current.name,
                        state.leader_epoch, current.leader_epoch,
                    )
                    results[tp] = Errors.STALE_CONTROLLER_EPOCH
                    continue
                try:
                    partition = current or self._create_partition(tp, configs)
                except Exception as e:  # a log that cannot be opened fails this partition only
                    log.error("%s Cannot open the log of %s-%d: %s", self.prefix, tp[0], tp[1], e)
                    results[tp] = Errors.UNKNOWN_SERVER_ERROR
                    continue
                (leaders if state.leader == self.broker_id else followers).append((partition, state))
                results[tp] = Errors.NONE
        now = now_ms()
        self.fetchers.remove_partitions([(p.topic, p.partition) for p, _ in leaders + followers])
        for partition, state in leaders:
            previous = partition.leader_epoch
            partition.make_leader(state, now)
            state_change_log.info(
                "%s Leader %s starts at leader epoch %d from offset %d with high watermark %d ISR %s. "
                "Previous leader epoch was %d.",
                self.prefix, partition.name, state.leader_epoch, partition.leader_epoch_start_offset,
                partition.high_watermark, list(state.isr), previous,
            )
        started = []
        for partition, state in followers:
            previous = partition.leader_epoch
            partition.make_follower(state)
            state_change_log.info(
                "%s Follower %s starts at leader epoch %d from offset %d with high watermark %d following "
                "leader %d. Previous leader epoch was %d.",
                self.prefix, partition.name, state.leader_epoch, partition.log.log_end_offset,
                partition.high_watermark, state.leader, previous,
            )
            if state.leader >= 0:
                started.append(partition)
        self.fetchers.add_partitions(started)
        self.notify_data_changed((p.topic, p.partition) for p, _ in leaders + followers)
        self.isr.check_soon()
        self._leadership_changed(
            [((p.topic, p.partition), state.leader_epoch) for p, state in leaders],
            [(p.topic, p.partition) for p, _ in followers],
        )
        return Errors.NONE, results

    def _leadership_changed(self, leaders: list[tuple[TopicPartition, int]], others: list[TopicPartition]) -> None:
        if not leaders and not others:
            return
        for listener in self.leadership_listeners:
            try:
                listener(leaders, others)
            except Exception:
                log.exception("%s A leadership listener failed", self.prefix)

    def _create_partition(self, tp: TopicPartition, configs: dict[str, LogConfig]) -> Partition:
        config = configs.get(tp[0])
        if config is None:
            config = configs[tp[0]] = self.topic_log_config(tp[0])
        log_ = self.log_manager.get_or_create_log(tp, config)
        return self._partitions.setdefault(
            tp, Partition(tp[0], tp[1], self.broker_id, log_, config, self._checkpointed_high_watermarks.get(tp, 0))
        )

    def topic_log_config(self, topic: str) -> LogConfig:
        try:
            overrides = self._topic_config(topic)
        except Exception as e:
            log.warning("%s Cannot read the config of topic %s, using the broker's: %s", self.prefix, topic, e)
            overrides = {}
        config, problems = LogConfig.from_stored_properties(overrides, self.log_manager.default_config)
        for problem in problems:
            log.error("%s Topic %s keeps the broker's default for one config: %s", self.prefix, topic, problem)
        return config

    def stop_replicas(
        self, controller_id: int, controller_epoch: int, broker_epoch: int,
        partitions: list[tuple[str, int, int, bool]],
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        """(topic, partition, leader epoch, delete) each; -2 as leader epoch means deletion."""
        with self._lock:
            error = self._check_controller("StopReplica", controller_id, controller_epoch, broker_epoch)
            if error is not Errors.NONE:
                return error, {}
            results: dict[TopicPartition, Errors] = {}
            stopped: list[tuple[TopicPartition, Partition | None, bool]] = []
            for topic, partition_id, leader_epoch, delete in partitions:
                tp = (topic, partition_id)
                current = self._partitions.get(tp)
                if current is not None and 0 <= leader_epoch < current.leader_epoch:
                    results[tp] = Errors.FENCED_LEADER_EPOCH
                    continue
                if delete:
                    self._partitions.pop(tp, None)
                stopped.append((tp, current, delete))
                results[tp] = Errors.NONE
        self.fetchers.remove_partitions([tp for tp, _, _ in stopped])
        for tp, current, delete in stopped:
            if current is not None and current.state is not None:
                # It no longer leads or follows anyone; a new state also tells the fetch sessions
                # that still name it to read it again (and answer with the error).
                with current.lock:
                    current.state = current.state._replace(leader=-1)
            if delete:
                self.log_manager.delete_log(tp)
            state_change_log.info("%s Stopped replica %s-%d (delete: %s)", self.prefix, tp[0], tp[1], delete)
        self.notify_data_changed(tp for tp, _, _ in stopped)
        self._leadership_changed([], [tp for tp, _, _ in stopped])
        return Errors.NONE, results

    # -- produce -------------------------------------------------------------------------------

    def append_records(
        self, acks: int, timeout_ms: int, entries: dict[TopicPartition, bytes]
    ) -> Future[dict[TopicPartition, ProduceResult]]:
        """Kafka's appendRecords: the records are in the leaders' logs, in call order, when this
        returns. The future has each partition's result: at once, or for acks=all once every ISR
        member has the records, timeout_ms passes or the broker stops, completed by the
        delayed-produce thread (Kafka's produce purgatory). No caller holds a thread meanwhile."""
        results, waiting = self._append_to_leaders(acks, entries)
        return self.delayed_produces.try_complete_else_watch(
            DelayedProduce(waiting, results, timeout_ms, self.not_leader))

    def _append_to_leaders(
        self, acks: int, entries: dict[TopicPartition, bytes]
    ) -> tuple[dict[TopicPartition, ProduceResult], dict[TopicPartition, tuple[Partition, int, int]]]:
        results: dict[TopicPartition, ProduceResult] = {}
        waiting: dict[TopicPartition, tuple[Partition, int, int]] = {}
        for tp, records in entries.items():
            partition = self._partitions.get(tp)
            if partition is None:
                results[tp] = self.not_leader(tp, Errors.UNKNOWN_TOPIC_OR_PARTITION)
                continue
            min_isr = partition.config.min_insync_replicas
            try:
                appended = partition.append_records_to_leader(records, acks, min_isr)
            except (CorruptRecordError, ValueError) as e:
                error = Errors.UNSUPPORTED_COMPRESSION_TYPE if isinstance(e, UnsupportedCompressionError) \
                    else Errors.MESSAGE_TOO_LARGE if isinstance(e, RecordTooLargeError) else Errors.CORRUPT_MESSAGE
                results[tp] = ProduceResult(error, f"{partition.name}: {e}")
                continue
            if appended.error is not Errors.NONE:
                results[tp] = self.not_leader(tp, appended.error, appended.message)
                continue
            start, _, _ = partition.offsets()
            results[tp] = ProduceResult(Errors.NONE, base_offset=appended.base_offset, log_start_offset=start)
            if acks == -1:
                waiting[tp] = (partition, appended.required_offset, min_isr)
        self.notify_data_changed(entries)
        return results, waiting

    def not_leader(self, tp: TopicPartition, error: Errors, message: str = "") -> ProduceResult:
        """An error answer, with the leader this broker knows (KIP-951) when it is not the leader."""
        info = self.metadata_cache.snapshot().partitions.get(tp)
        return ProduceResult(
            error, message, leader_id=info.leader if info else -1, leader_epoch=info.leader_epoch if info else -1
        )

    # -- offsets -------------------------------------------------------------------------------

    def leader_at(self, tp: TopicPartition, current_leader_epoch: int) -> tuple[Errors, Partition | None]:
        """The partition, if this broker leads it at the epoch the request names."""
        partition = self._partitions.get(tp)
        if partition is None:
            return Errors.UNKNOWN_TOPIC_OR_PARTITION, None
        error = partition.check_leader_epoch(current_leader_epoch)
        if error is Errors.NONE and not partition.is_leader:
            error = Errors.NOT_LEADER_OR_FOLLOWER
        return error, partition if error is Errors.NONE else None

    def list_offset(self, tp: TopicPartition, current_leader_epoch: int, timestamp: int) -> tuple[Errors, int, int]:
        """(error, offset, leader epoch): earliest is the log start, latest the high watermark."""
        error, partition = self.leader_at(tp, current_leader_epoch)
        if partition is None:
            return error, -1, -1
        start, high_watermark, _ = partition.offsets()
        if timestamp == EARLIEST_TIMESTAMP:
            return Errors.NONE, start, partition.leader_epoch
        if timestamp == LATEST_TIMESTAMP:
            return Errors.NONE, high_watermark, partition.leader_epoch
        return Errors.INVALID_REQUEST, -1, -1

    def last_offset_for_leader_epoch(
        self, tp: TopicPartition, current_leader_epoch: int, leader_epoch: int
    ) -> tuple[Errors, int, int]:
        """KIP-101, answered by the leader: (error, epoch, end offset)."""
        error, partition = self.leader_at(tp, current_leader_epoch)
        if partition is None:
            return error, -1, -1
        with partition.lock:
            epoch, end_offset = partition.log.end_offset_for_epoch(leader_epoch)
        return Errors.NONE, epoch, end_offset

    # -- threads --------------------------------------------------------------------------------

    def start(self) -> None:
        self.isr.start(f"isr-upkeep-{self.broker_id}")
        self.delayed_produces.start()
        self.fetch_path.delayed_fetches.start()

    def stop(self) -> None:
        self.isr.stop()
        self.fetchers.shutdown()
        self.changes.stop()

    # -- follower truncation -------------------------------------------------------------------

    def truncate(self, partition: Partition, offset: int, reason: str) -> None:
        """Truncate a follower's log to `offset`. Records it discards were accepted by a leader
        that this replica's new leader does not follow: after a clean election they were never
        acknowledged to acks=all producers; after an unclean one they may have been. Both are
        reported; records below this replica's high watermark were acknowledged for certain."""
        log_end = partition.log.log_end_offset
        if offset >= log_end:
            return
        discarded, acknowledged = partition.truncate_to(offset)
        self.counters.records_truncated += discarded
        self.counters.acknowledged_records_truncated += acknowledged
        self.counters.truncations.append(f"{partition.name}: {discarded} records from offset {offset}")
        state_change_log.warning(
            "%s Truncating partition %s to offset %d (log end offset was %d): %s. This discards %d records "
            "the new leader does not have, %d of them below this replica's high watermark (acknowledged "
            "writes lost: an unclean leader election chose a replica without them)",
            self.prefix, partition.name, offset, log_end, reason, discarded, acknowledged,
        )

    # -- describe ------------------------------------------------------------------------------

    def replica_states(self, tps: list[TopicPartition] | None = None) -> list[tuple[TopicPartition, Partition]]:
        with self._lock:
            chosen = tps or sorted(tp for tp, p in self._partitions.items() if p.is_leader)
            return [(tp, self._partitions[tp]) for tp in chosen if tp in self._partitions]

    def apply_retention(self) -> int:
        """Retention over every log below its high watermark; returns the segments deleted. A log
        that lost segments starts later, which fetch sessions must tell their followers."""
        deleted = self.log_manager.cleanup_logs(self.high_watermarks().get)
        if deleted:
            self.notify_data_changed()
        return deleted

    def checkpoint_high_watermarks(self) -> None:
        """Each log dir's high watermarks to disk (Kafka's checkpointHighWatermarks): a broker that
        restarts and leads again serves consumers no further than it had. Skipped while no high
        watermark moved and no partition came or went since the last one: an idle broker with
        tens of thousands of partitions would otherwise rewrite and fsync the same files every
        few seconds."""
        with self._lock:
            partitions = list(self._partitions.items())
        high_watermarks = {tp: partition.high_watermark for tp, partition in partitions}
        if high_watermarks == self._high_watermarks_written:
            return
        by_dir: dict[Path, dict[TopicPartition, int]] = {Path(d): {} for d in self.log_manager.log_dirs}
        for tp, partition in partitions:
            by_dir.setdefault(Path(partition.log.dir).parent, {})[tp] = high_watermarks[tp]
        written = True
        for directory, offsets in by_dir.items():
            try:
                write_offsets(directory / HW_CHECKPOINT, offsets)
            except OSError as e:
                written = False
                log.error("%s Cannot write the high watermarks of %s: %s", self.prefix, directory, e)
        self._high_watermarks_written = high_watermarks if written else None

    def high_watermarks(self) -> dict[TopicPartition, int]:
        with self._lock:
            return {tp: p.high_watermark for tp, p in self._partitions.items()}
