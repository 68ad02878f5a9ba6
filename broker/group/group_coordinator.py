"""The group coordinator (Kafka's GroupCoordinator): handles the group requests of the groups whose
``__consumer_offsets`` partition this broker leads.

One thread, ``group-coordinator``, owns all group state: the pure ``GroupCoordinatorRules`` (the
groups and their state machine), the ``GroupMetadataManager``'s owned and loading partitions, and
the JoinGroup and SyncGroup requests parked until their phase ends. The request layer's threads,
the replica manager's leadership callbacks and append completions only enqueue work for it; every
request gets a Future. Whatever the rules decide is carried out by ``_apply``: it answers parked
requests and hands the stores to the metadata manager, whose completions come back through the rules.

Coordinator ownership follows leadership of ``__consumer_offsets`` (Kafka's onElection and
onResignation): when this broker becomes the leader of partition p the metadata manager loads p
(requests for p's groups get COORDINATOR_LOAD_IN_PROGRESS meanwhile) and then p's groups are
coordinated here; when it stops leading p they are unloaded, answering the parked requests
NOT_COORDINATOR. Group records and offset commits are appended to p with acks=all; only once they
are replicated is anyone answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
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
from broker.group.group_metadata import GroupMetadata, GroupState, GroupSummary, OffsetAndMetadata, TopicPartition
from broker.group.group_metadata_manager import GroupMetadataManager
from broker.replica_manager import ReplicaManager
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC

log = logging.getLogger("broker.group.coordinator")

R = TypeVar("R")


def now_ms() -> int:
    return int(time.time() * 1000)


class GroupCoordinator:
    """Kafka's GroupCoordinator: the group requests, on one thread, over its rules and its metadata manager."""

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
        self.prefix = f"[GroupCoordinator {broker_id}]:"
        self._clock = clock
        self._events: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._metadata_manager = GroupMetadataManager(
            broker_id, replica_manager, partition_count, self._events.put, clock,
            commit_timeout_ms=commit_timeout_ms, load_buffer_size=load_buffer_size,
            max_metadata_bytes=max_metadata_bytes, log_prefix=self.prefix,
        )
        self._rules = GroupCoordinatorRules(config, log_prefix=self.prefix + " ",
                                            group_partition=self._metadata_manager.partition_name)
        self._thread = threading.Thread(target=self._run, name=f"group-coordinator-{broker_id}", daemon=True)
        self._stopping = threading.Lock()
        self._stopped = False
        # Owned by the coordinator thread:
        self._active = False
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
        self._metadata_manager.shutdown()
        self._drain()
        log.info("%s Shutdown complete.", self.prefix)

    def _deactivate(self) -> None:
        self._active = False
        manager = self._metadata_manager
        for partition in sorted({*manager.owned_partitions(), *manager.loading_partitions()}):
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
        manager = self._metadata_manager
        if manager.partition_count() is None or not self._active:
            return validate_group_status(group_id, api, is_active=False)
        partition = manager.partition_for(group_id)
        return validate_group_status(group_id, api, is_active=True, is_loading=manager.is_partition_loading(partition),
                                     is_local=manager.is_partition_owned(partition))

    def _apply(self, out: Outcome[Any], commit: Future[dict[TopicPartition, Errors]] | None = None) -> None:
        """Carry out an outcome of the rules: answer the parked requests it settles, then make its
        stores in their order; ``commit`` is the OffsetCommit being handled, answered once its offsets
        are written."""
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
                assert commit is not None, "only an OffsetCommit stores offsets"
                self._store_offsets(store, commit)

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

    # -- stores ----------------------------------------------------------------------------------

    def _store_group(self, store: StoreGroup) -> None:
        self._metadata_manager.store_group(
            store, lambda error: self._apply(self._rules.on_group_stored(store, error, self._clock())))

    def _store_offsets(self, store: StoreOffsets, commit: Future[dict[TopicPartition, Errors]]) -> None:
        def stored(written: StoreOffsets, append_error: Errors) -> None:
            answer = self._rules.on_offsets_stored(written, append_error)
            # What the metadata manager did not write had metadata over offset.metadata.max.bytes.
            answer.update(dict.fromkeys((tp for tp in store.offsets if tp not in written.offsets),
                                        Errors.OFFSET_METADATA_TOO_LARGE))
            commit.set_result(answer)

        self._metadata_manager.store_offsets(store, stored)

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
        """Kafka's handleCommitOffsets; the metadata manager refuses metadata over
        offset.metadata.max.bytes per partition (OFFSET_METADATA_TOO_LARGE) and writes the rest."""

        def work(future: Future[dict[TopicPartition, Errors]], now: int) -> None:
            error = self._status(group_id, GroupApi.OFFSET_COMMIT)
            if error is not None:
                future.set_result(dict.fromkeys(offsets, error))
                return
            out = self._rules.handle_commit_offsets(group_id, member_id, generation_id, offsets, now,
                                                    group_instance_id)
            if out.response is not None:
                future.set_result(out.response)
            self._apply(out, future)

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
            error = Errors.COORDINATOR_LOAD_IN_PROGRESS if self._metadata_manager.is_loading() else Errors.NONE
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
        manager = self._metadata_manager
        for partition in resigned:
            self._resign(partition)
        for partition, epoch in elected:
            if manager.is_partition_owned(partition) or manager.is_partition_loading(partition):
                continue
            log.info("%s Elected as the group coordinator for partition %d in epoch %d", self.prefix, partition,
                     epoch)
            manager.schedule_load_group_and_offsets(partition, epoch, self._on_group_loaded)

    def _on_group_loaded(self, group: GroupMetadata, now: int) -> None:
        self._apply(self._rules.load_group(group, now))

    def _resign(self, partition: int) -> None:
        if not self._metadata_manager.remove_partition(partition):
            return
        now = self._clock()
        unloaded = [g for g in self._rules.groups if self._metadata_manager.partition_for(g) == partition]
        for group_id in unloaded:
            self._apply(self._rules.unload_group(group_id, now))
        log.info("%s Resigned as the group coordinator for partition %d; unloaded %d groups", self.prefix,
                 partition, len(unloaded))

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
        manager = self._metadata_manager
        return self._enqueue(lambda f, _now: f.set_result((manager.owned_partitions(), manager.loading_partitions())),
                             lambda _e: ([], []))
