"""The group coordinator (Kafka's GroupCoordinator), with the loading and storing of its groups.

One thread, ``group-coordinator``, owns the pure ``GroupCoordinatorRules``, the offsets partitions
this broker coordinates, and the JoinGroup and SyncGroup requests parked until their phase ends.
gRPC threads, the replica manager's leadership callbacks and append completions only enqueue work
for it; every request gets a Future.

Coordinator ownership follows leadership of ``__consumer_offsets``: when this broker becomes the
leader of partition p it replays p's log on the loader thread (requests for p's groups get
COORDINATOR_LOAD_IN_PROGRESS meanwhile) and then coordinates p's groups; when it stops leading p
it unloads them, answering the parked requests NOT_COORDINATOR. Group records and offset commits
are appended to p with acks=all; only once they are replicated is anyone answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from broker.group.group_coordinator_rules import (
    GroupApi,
    GroupConfig,
    GroupCoordinatorRules,
    JoinGroupRequest,
    JoinGroupResult,
    LeaveGroupResult,
    MemberIdentity,
    OffsetFetchPartition,
    Outcome,
    StoreGroup,
    StoreOffsets,
    SyncGroupRequest,
    SyncGroupResult,
    validate_group_status,
)
from broker.group.group_metadata import GroupState, GroupSummary, OffsetAndMetadata, TopicPartition
from broker.group.offsets_log import (
    GroupMetadataLoader,
    LoadedGroups,
    Record,
    SchemaError,
    group_metadata_record,
    offset_commit_records,
)
from broker.log.record_batch import batches, build_batch, records
from broker.replica_manager import ProduceResult, ReplicaManager
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for

log = logging.getLogger("broker.group.coordinator")

ACKS_ALL = -1  # Kafka's offsets.commit.required.acks, which it deprecated at -1
R = TypeVar("R")


def now_ms() -> int:
    return int(time.time() * 1000)


class GroupCoordinator:
    def __init__(
        self,
        broker_id: int,
        replica_manager: ReplicaManager,
        partition_count: Callable[[], int | None],
        config: GroupConfig | None = None,
        commit_timeout_ms: int = 5000,
        load_buffer_size: int = 5 * 1024 * 1024,
        max_metadata_bytes: int = 4096,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.broker_id = broker_id
        self._replicas = replica_manager
        self._partition_count = partition_count
        self.prefix = f"[GroupCoordinator {broker_id}]:"
        self._rules = GroupCoordinatorRules(config, log_prefix=self.prefix + " ", group_partition=self._partition_name)
        self._commit_timeout_ms = commit_timeout_ms
        self._load_buffer_size = load_buffer_size
        self.max_metadata_bytes = max_metadata_bytes
        self._clock = clock
        self._events: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"group-coordinator-{broker_id}", daemon=True)
        self._loader = ThreadPoolExecutor(1, thread_name_prefix=f"group-metadata-manager-{broker_id}")
        self._stopping = threading.Lock()
        self._stopped = False
        # Owned by the coordinator thread:
        self._active = False
        self._owned: set[int] = set()
        self._loading: dict[int, int] = {}  # partition -> the leader epoch it is loaded for
        self._joins: dict[str, Future[JoinGroupResult]] = {}
        self._syncs: dict[str, Future[SyncGroupResult]] = {}

    # -- life ------------------------------------------------------------------------------------

    def startup(self) -> None:
        log.info("%s Starting up.", self.prefix)
        self._events.put(self._activate)
        self._thread.start()
        replica_manager = self._replicas
        replica_manager.leadership_listeners.append(self.on_leadership_change)
        # Partitions led before this started (there are none at a broker's start, but be sure).
        led = [(tp, p.leader_epoch) for tp in replica_manager.leader_partitions()
               if tp[0] == OFFSETS_TOPIC and (p := replica_manager.partition(tp)) is not None]
        if led:
            self.on_leadership_change(led, [])

    def _activate(self) -> None:
        self._active = True
        log.info("%s Startup complete.", self.prefix)

    def shutdown(self) -> None:
        """Unload every group, answering parked requests NOT_COORDINATOR, and stop the thread; a
        request arriving later is answered COORDINATOR_NOT_AVAILABLE at once."""
        log.info("%s Shutting down.", self.prefix)
        if self._thread.is_alive():
            self._events.put(self._deactivate)
            self._events.put(None)
            self._thread.join(10)
        with self._stopping:
            self._stopped = True
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._drain()
        log.info("%s Shutdown complete.", self.prefix)

    def _deactivate(self) -> None:
        self._active = False
        for partition in sorted(set(self._owned) | set(self._loading)):
            self._resign(partition)

    def _drain(self) -> None:
        while True:
            try:
                task = self._events.get_nowait()
            except queue.Empty:
                return
            if task is not None:
                self._run_task(task)

    # -- the coordinator thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            deadline = self._rules.next_deadline_ms()
            now = self._clock()
            if deadline is not None and deadline <= now:
                self._run_task(lambda: self._apply(self._rules.poll(self._clock())))
                continue
            try:
                task = self._events.get(timeout=None if deadline is None else (deadline - now) / 1000)
            except queue.Empty:
                continue
            if task is None:
                return
            self._run_task(task)

    def _run_task(self, task: Callable[[], None]) -> None:
        try:
            task()
        except Exception:
            log.exception("%s Unexpected error", self.prefix)

    def _enqueue(self, work: Callable[[Future[R], int], None], on_error: Callable[[Errors], R]) -> Future[R]:
        """Run ``work(future, now_ms)`` on the coordinator thread; a failure in it answers ``on_error``."""
        future: Future[R] = Future()

        def task() -> None:
            try:
                work(future, self._clock())
            except Exception:
                log.exception("%s Unexpected error", self.prefix)
                if not future.done():
                    future.set_result(on_error(Errors.UNKNOWN_SERVER_ERROR))

        with self._stopping:
            if not self._stopped:
                self._events.put(task)
                return future
        task()  # stopped: nothing is owned any more, so the work only finds the error to answer
        return future

    def _status(self, group_id: str, api: GroupApi) -> Errors | None:
        """Kafka's validateGroupStatus for this broker: is it the group's coordinator, and ready?"""
        count = self._partition_count()
        if count is None or not self._active:
            return validate_group_status(group_id, api, is_active=False)
        partition = partition_for(group_id, count)
        return validate_group_status(group_id, api, is_active=True, is_loading=partition in self._loading,
                                     is_local=partition in self._owned)

    def _partition_name(self, group_id: str) -> str | None:
        count = self._partition_count()
        return f"{OFFSETS_TOPIC}-{partition_for(group_id, count)}" if count else None

    def _partition_of(self, group_id: str) -> int:
        count = self._partition_count()
        assert count is not None
        return partition_for(group_id, count)

    def _apply(self, out: Outcome[Any]) -> None:
        """Answer the parked requests an outcome settles and write the group records it asks for."""
        for member_id, join in out.joins.items():
            parked_join = self._joins.pop(member_id, None)
            if parked_join is not None:
                parked_join.set_result(join)
        for member_id, sync in out.syncs.items():
            parked_sync = self._syncs.pop(member_id, None)
            if parked_sync is not None:
                parked_sync.set_result(sync)
        for store in out.stores:
            if isinstance(store, StoreGroup):
                self._store_group(store)
            else:
                raise AssertionError("offset stores are written by commit_offsets")

    @staticmethod
    def _park(parked: dict[str, Future[R]], out: Outcome[R], future: Future[R], superseded: R) -> None:
        if out.response is not None:
            future.set_result(out.response)
            return
        assert out.parked_member_id is not None
        previous = parked.pop(out.parked_member_id, None)
        if previous is not None and not previous.done():
            # The member sent the request again: the first one's client has given up on it.
            previous.set_result(superseded)
        parked[out.parked_member_id] = future

    # -- writing to __consumer_offsets -----------------------------------------------------------

    def _append(self, partition: int, batch_records: Sequence[Record], done: Callable[[Errors], None]) -> None:
        """Append to the offsets partition (in call order) and call ``done`` on this thread once the
        ISR has it."""
        if not batch_records:
            done(Errors.NONE)
            return
        tp = (OFFSETS_TOPIC, partition)

        def replicated(results: Future[dict[TopicPartition, ProduceResult]]) -> None:
            error = results.result()[tp].error
            self._events.put(lambda: done(error))

        self._replicas.append_records(
            ACKS_ALL, self._commit_timeout_ms, {tp: build_batch(list(batch_records))}
        ).add_done_callback(replicated)

    def _store_group(self, store: StoreGroup) -> None:
        self._append(
            self._partition_of(store.group_id), [group_metadata_record(store.group)],
            lambda error: self._apply(self._rules.on_group_stored(store, error, self._clock())),
        )

    # -- requests --------------------------------------------------------------------------------

    def join_group(self, req: JoinGroupRequest) -> Future[JoinGroupResult]:
        def work(future: Future[JoinGroupResult], now: int) -> None:
            error = self._status(req.group_id, GroupApi.JOIN_GROUP)
            if error is not None:
                future.set_result(JoinGroupResult(req.member_id, error))
                return
            out = self._rules.handle_join_group(req, now)
            self._park(self._joins, out, future, JoinGroupResult(req.member_id, Errors.REBALANCE_IN_PROGRESS))
            self._apply(out)

        return self._enqueue(work, lambda e: JoinGroupResult(req.member_id, e))

    def sync_group(self, req: SyncGroupRequest) -> Future[SyncGroupResult]:
        def work(future: Future[SyncGroupResult], now: int) -> None:
            error = self._status(req.group_id, GroupApi.SYNC_GROUP)
            if error is not None:
                future.set_result(SyncGroupResult(error))
                return
            out = self._rules.handle_sync_group(req, now)
            self._park(self._syncs, out, future, SyncGroupResult(Errors.REBALANCE_IN_PROGRESS))
            self._apply(out)

        return self._enqueue(work, SyncGroupResult)

    def heartbeat(self, group_id: str, member_id: str, generation_id: int,
                  group_instance_id: str | None = None) -> Future[Errors]:
        def work(future: Future[Errors], now: int) -> None:
            error = self._status(group_id, GroupApi.HEARTBEAT)
            if error is not None:
                future.set_result(error)
                return
            out = self._rules.handle_heartbeat(group_id, member_id, generation_id, now, group_instance_id)
            future.set_result(out.response if out.response is not None else Errors.UNKNOWN_SERVER_ERROR)
            self._apply(out)

        return self._enqueue(work, lambda e: e)

    def leave_group(self, group_id: str, members: Sequence[MemberIdentity]) -> Future[LeaveGroupResult]:
        def work(future: Future[LeaveGroupResult], now: int) -> None:
            error = self._status(group_id, GroupApi.LEAVE_GROUP)
            if error is not None:
                future.set_result(LeaveGroupResult(error))
                return
            out = self._rules.handle_leave_group(group_id, members, now)
            future.set_result(out.response or LeaveGroupResult(Errors.UNKNOWN_SERVER_ERROR))
            self._apply(out)

        return self._enqueue(work, LeaveGroupResult)

    def commit_offsets(
        self, group_id: str, member_id: str, generation_id: int, offsets: Mapping[TopicPartition, OffsetAndMetadata],
        group_instance_id: str | None = None,
    ) -> Future[dict[TopicPartition, Errors]]:
        """Kafka's handleCommitOffsets and storeOffsets: metadata over offset.metadata.max.bytes is
        refused per partition (OFFSET_METADATA_TOO_LARGE) and the rest written."""

        def work(future: Future[dict[TopicPartition, Errors]], now: int) -> None:
            error = self._status(group_id, GroupApi.OFFSET_COMMIT)
            if error is not None:
                future.set_result(dict.fromkeys(offsets, error))
                return
            out = self._rules.handle_commit_offsets(group_id, member_id, generation_id, offsets, now,
                                                    group_instance_id)
            stores = [s for s in out.stores if isinstance(s, StoreOffsets)]
            out.stores = [s for s in out.stores if not isinstance(s, StoreOffsets)]
            if out.response is not None:
                future.set_result(out.response)
            self._apply(out)
            for store in stores:
                too_large = {tp for tp, o in store.offsets.items() if len(o.metadata) > self.max_metadata_bytes}
                kept = {tp: o for tp, o in store.offsets.items() if tp not in too_large}
                valid = StoreOffsets(group_id, kept)

                def stored(append_error: Errors, valid: StoreOffsets = valid, too_large: set = too_large) -> None:
                    answer = self._rules.on_offsets_stored(valid, append_error)
                    answer.update(dict.fromkeys(too_large, Errors.OFFSET_METADATA_TOO_LARGE))
                    future.set_result(answer)

                self._append(self._partition_of(group_id), offset_commit_records(group_id, kept), stored)

        return self._enqueue(work, lambda e: dict.fromkeys(offsets, e))

    def fetch_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition] | None
    ) -> Future[tuple[Errors, dict[TopicPartition, OffsetFetchPartition]]]:
        def work(future: Future[tuple[Errors, dict[TopicPartition, OffsetFetchPartition]]], now: int) -> None:
            error = self._status(group_id, GroupApi.OFFSET_FETCH)
            if error is not None:
                future.set_result((error, {}))
                return
            future.set_result((Errors.NONE, self._rules.handle_fetch_offsets(group_id, partitions)))

        return self._enqueue(work, lambda e: (e, {}))

    def describe_groups(self, group_ids: Sequence[str]) -> Future[list[tuple[Errors, GroupSummary]]]:
        def work(future: Future[list[tuple[Errors, GroupSummary]]], now: int) -> None:
            described = []
            for group_id in group_ids:
                error = self._status(group_id, GroupApi.DESCRIBE_GROUPS)
                group = self._rules.groups.get(group_id)
                if error is not None:
                    described.append((error, GroupSummary.dead(group_id)))
                    continue
                if group is not None:
                    # Expired members and finished phases first, as any handler of this group would.
                    self._apply(self._rules.poll(now))
                described.append((Errors.NONE, group.summary() if group is not None else GroupSummary.dead(group_id)))
            future.set_result(described)

        return self._enqueue(work, lambda e: [(e, GroupSummary.dead(g)) for g in group_ids])

    def list_groups(self) -> Future[tuple[Errors, list[GroupSummary]]]:
        def work(future: Future[tuple[Errors, list[GroupSummary]]], now: int) -> None:
            if not self._active:
                future.set_result((Errors.COORDINATOR_NOT_AVAILABLE, []))
                return
            error = Errors.COORDINATOR_LOAD_IN_PROGRESS if self._loading else Errors.NONE
            future.set_result((error, [g.summary() for _, g in sorted(self._rules.groups.items())]))

        return self._enqueue(work, lambda e: (e, []))

    # -- coordinator ownership -------------------------------------------------------------------

    def on_leadership_change(self, leaders: list[tuple[TopicPartition, int]], others: list[TopicPartition]) -> None:
        """Kafka's onElection / onResignation, from the replica manager's thread."""
        elected = [(tp[1], epoch) for tp, epoch in leaders if tp[0] == OFFSETS_TOPIC]
        resigned = [tp[1] for tp in others if tp[0] == OFFSETS_TOPIC]
        if elected or resigned:
            self._events.put(lambda: self._on_leadership(elected, resigned))

    def _on_leadership(self, elected: list[tuple[int, int]], resigned: list[int]) -> None:
        for partition in resigned:
            self._resign(partition)
        for partition, epoch in elected:
            if partition in self._owned or partition in self._loading:
                continue
            log.info("%s Elected as the group coordinator for partition %d in epoch %d", self.prefix, partition,
                     epoch)
            self._loading[partition] = epoch
            scheduled = time.monotonic()
            self._loader.submit(self._load, partition, epoch, scheduled)

    def _resign(self, partition: int) -> None:
        was_owned = partition in self._owned
        if self._loading.pop(partition, None) is None and not was_owned:
            return
        self._owned.discard(partition)
        now = self._clock()
        unloaded = [g for g in self._rules.groups if self._partition_of(g) == partition]
        for group_id in unloaded:
            self._apply(self._rules.unload_group(group_id, now))
        log.info("%s Resigned as the group coordinator for partition %d; unloaded %d groups", self.prefix,
                 partition, len(unloaded))

    def _load(self, partition: int, epoch: int, scheduled: float) -> None:
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
        self._events.put(lambda: self._loaded(partition, epoch, result, replayed,
                                              (done - scheduled) * 1000, (started - scheduled) * 1000))

    def _loaded(self, partition: int, epoch: int, result: LoadedGroups, replayed: int, took_ms: float,
                waited_ms: float) -> None:
        if self._loading.get(partition) != epoch:
            return  # resigned (or re-elected) while loading
        del self._loading[partition]
        self._owned.add(partition)
        now = self._clock()
        for group in result.groups.values():
            if self._partition_of(group.group_id) != partition:
                log.warning("%s Group %s found in %s-%d, where it does not belong; ignored", self.prefix,
                            group.group_id, OFFSETS_TOPIC, partition)
                continue
            self._apply(self._rules.load_group(group, now))
        log.info("%s Finished loading offsets and group metadata from %s-%d in %d milliseconds, of which %d "
                 "milliseconds was spent in the scheduler (%d records, %d groups).", self.prefix, OFFSETS_TOPIC,
                 partition, took_ms, waited_ms, replayed, len(result.groups))

    # -- views -----------------------------------------------------------------------------------

    def metrics(self) -> Future[dict[str, int]]:
        """Kafka's group coordinator gauges: NumGroups, NumGroups<State>, NumOffsets."""
        def work(future: Future[dict[str, int]], _now: int) -> None:
            groups = list(self._rules.groups.values())
            counts = {"num_groups": len(groups), "num_offsets": sum(len(g.offsets) for g in groups)}
            for state in GroupState:
                counts[f"num_groups_{state.name.lower()}"] = sum(1 for g in groups if g.state is state)
            future.set_result(counts)

        return self._enqueue(work, lambda _e: {})

    def owned_partitions(self) -> Future[tuple[list[int], list[int]]]:
        """(owned, loading) offsets partitions."""
        return self._enqueue(lambda f, _now: f.set_result((sorted(self._owned), sorted(self._loading))),
                             lambda _e: ([], []))
