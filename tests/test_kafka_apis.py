"""The request layer without a transport: requests as plain data in, Kafka's error codes out,
parked answers as futures (a real replica manager on a temporary directory, no server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.api import messages as m
from broker.api.authorization import ALLOW_EVERYTHING, Authorizer
from broker.api.context import RequestContext
from broker.api.control_apis import ControlApis
from broker.api.data_apis import DataApis
from broker.api.group_apis import GroupApis
from broker.api.kafka_apis import KafkaApis
from broker.api.timer import RequestTimer
from broker.authorizer import acl
from broker.authorizer.acl import AclEntry, Operation, Permission, ResourcePattern, ResourceType
from broker.controller_fence import ControllerFence, ControllerIdentity
from broker.fetch_session import PartitionData
from broker.group.group_coordinator import GroupCoordinator
from broker.group.group_coordinator_rules import JoinGroupRequest
from broker.group.offsets_topic import OffsetsTopicCreator
from broker.log import record_batch as rb
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import BrokerEndpoint, MetadataCache, PartitionInfo
from broker.replica_manager import ReplicaManager
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

T0 = TopicPartition("t", 0)
MISSING = TopicPartition("missing", 0)
CALLER = RequestContext(client_host="/127.0.0.1")
BROKER = RequestContext(client_host="/127.0.0.1", principal="User:CN=broker-9,OU=brokers,O=minikafka")
ALICE = RequestContext(client_host="/127.0.0.1", principal="User:CN=alice,OU=clients,O=minikafka")
ALICE_READS_T = {ResourcePattern(ResourceType.TOPIC, "t"): frozenset({
    AclEntry(ALICE.principal, Permission.ALLOW, Operation.READ)})}


class NoProducerIds:
    def generate(self) -> int:
        raise ConnectionError("ZooKeeper is away")


class NotController:
    is_active = False


class TopicCreations:
    """The one ZooKeeper write OffsetsTopicCreator makes, recorded."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create_topic(self, assignment: object, configs: dict[str, str]) -> None:
        self.created.append(assignment.topic)  # type: ignore[attr-defined]


@pytest.fixture
def zk() -> TopicCreations:
    return TopicCreations()


@pytest.fixture
def zk_controller() -> list[ControllerIdentity]:
    """The controller as ZooKeeper names it: controller 9, epoch 1."""
    return [ControllerIdentity(1, 9)]


class TableAuthorizer:
    """The authorizer's decision (broker/authorizer/acl.py) over ACLs in a dict, the brokers super users."""

    def __init__(self, acls: dict[ResourcePattern, frozenset[AclEntry]]) -> None:
        self.acls = acls

    def authorize(self, principal: str, host: str, operation: Operation, resource_type: ResourceType,
                  name: str, request: str, log_if_denied: bool = True) -> bool:
        return acl.authorize(principal, host, operation, acl.matching_acls(self.acls, resource_type, name),
                             frozenset({BROKER.principal}), False)

    def authorize_by_resource_type(self, principal: str, host: str, operation: Operation,
                                   resource_type: ResourceType) -> bool:
        return acl.authorize_by_resource_type(principal, host, operation, resource_type, self.acls,
                                              frozenset({BROKER.principal}), False)


@pytest.fixture
def authorizer(request: pytest.FixtureRequest) -> Authorizer:
    """Everyone may do everything, unless a test gives ACLs (parametrize indirect)."""
    param = getattr(request, "param", None)
    return ALLOW_EVERYTHING if param is None else TableAuthorizer(param)


@pytest.fixture
def apis(tmp_path: Path, zk: TopicCreations, zk_controller: list[ControllerIdentity],
         authorizer: Authorizer) -> Iterator[KafkaApis]:
    """Broker 1 leading t-0 with broker 2 in the ISR, as the controller's two requests make it,
    and coordinating no group yet."""
    replicas = ReplicaManager(1, lambda: 100, LogManager([str(tmp_path)], LogConfig()))
    metadata = MetadataCache()
    group_coordinator = GroupCoordinator(1, replicas, lambda: 50)
    group_coordinator.startup()
    apis = KafkaApis(
        DataApis(1, replicas, metadata, NoProducerIds(), authorizer),  # type: ignore[arg-type]
        ControlApis(1, replicas, metadata, NotController(), RequestTimer(),  # type: ignore[arg-type]
                    ControllerFence("[Broker id=1]", lambda: zk_controller[0]), authorizer),
        GroupApis(1, metadata, group_coordinator, OffsetsTopicCreator(zk, 50, 3, 104857600),  # type: ignore[arg-type]
                  authorizer),
    )
    state = PartitionInfo("t", 0, 1, 0, isr=(1, 2), replicas=(1, 2), zk_version=0, controller_epoch=1)
    brokers = [BrokerEndpoint(1, "127.0.0.1", 9092), BrokerEndpoint(2, "127.0.0.1", 9093)]
    answers = [apis.handle(BROKER, m.LeaderAndIsrRequest(9, 1, -1, [state])).result(),
               apis.handle(BROKER, m.UpdateMetadataRequest(9, 1, -1, brokers, [state], [])).result()]
    assert answers == [m.ControllerRequestResponse(Errors.NONE, {T0: Errors.NONE}),
                       m.ControllerRequestResponse(Errors.NONE)]
    yield apis
    group_coordinator.shutdown()
    replicas.stop()


def produce(apis: KafkaApis, acks: int, *tps: TopicPartition) -> m.ProduceResponse:
    request = m.ProduceRequest(acks, 10000, {tp: rb.build_batch([(None, b"v")]) for tp in tps})
    return apis.handle(CALLER, request).result(timeout=5)


def test_produce_is_checked_before_any_append(apis: KafkaApis) -> None:
    answer = produce(apis, 2, T0)
    assert answer.partitions[T0].error is Errors.INVALID_REQUIRED_ACKS
    answer = produce(apis, 1, MISSING, T0)
    assert [(tp, r.error, r.base_offset) for tp, r in answer.partitions.items()] == [
        (MISSING, Errors.UNKNOWN_TOPIC_OR_PARTITION, -1), (T0, Errors.NONE, 0)]


def test_an_acks_all_produce_parks_as_a_future_until_the_follower_fetches(apis: KafkaApis) -> None:
    request = m.ProduceRequest(-1, 10000, {T0: rb.build_batch([(None, b"v")])})
    parked = apis.handle(CALLER, request)
    assert not parked.done()
    follower = m.FetchRequest(replica_id=2, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20,
                              partitions={T0: PartitionData(1)})
    assert apis.handle(CALLER, follower).result().error is Errors.NONE
    assert parked.result(timeout=5).partitions[T0].error is Errors.NONE


def test_fetch_and_offsets_answer_each_partition_with_kafkas_codes(apis: KafkaApis) -> None:
    produce(apis, 1, T0)
    fetched = apis.handle(CALLER, m.FetchRequest(-1, 0, 0, 1 << 20, {
        MISSING: PartitionData(0), T0: PartitionData(0),
    })).result()
    assert fetched.partitions[MISSING].error is Errors.UNKNOWN_TOPIC_OR_PARTITION
    assert fetched.partitions[T0].high_watermark == 0  # the follower has not fetched: nothing to read yet
    listed = apis.handle(CALLER, m.ListOffsetsRequest({
        T0: m.ListOffsetsPartition(-1, -2), MISSING: m.ListOffsetsPartition(-1, -1),
    })).result()
    assert (listed.partitions[T0].error, listed.partitions[T0].offset) == (Errors.NONE, 0)
    assert listed.partitions[MISSING].error is Errors.UNKNOWN_TOPIC_OR_PARTITION
    by_time = apis.handle(CALLER, m.ListOffsetsRequest({T0: m.ListOffsetsPartition(-1, 12345)})).result()
    assert by_time.partitions[T0].error is Errors.INVALID_REQUEST and "timestamps" in by_time.partitions[T0].message
    ended = apis.handle(CALLER, m.OffsetForLeaderEpochRequest({T0: m.OffsetForLeaderEpochPartition(5, 0)})).result()
    assert ended.partitions[T0].error is Errors.UNKNOWN_LEADER_EPOCH  # the caller knows a newer leader epoch


def test_a_producer_id_that_cannot_be_reserved_is_coordinator_not_available(apis: KafkaApis) -> None:
    answer = apis.handle(CALLER, m.InitProducerIdRequest()).result()
    assert (answer.error, answer.producer_id, answer.message) == (Errors.COORDINATOR_NOT_AVAILABLE, -1,
                                                                  "ZooKeeper is away")


def test_a_transactional_producer_is_refused_there_being_no_transactions(apis: KafkaApis) -> None:
    answer = apis.handle(CALLER, m.InitProducerIdRequest("tx-1")).result()
    assert (answer.error, answer.producer_id) == (Errors.INVALID_REQUEST, -1)
    assert "transactions" in answer.message


def test_controlled_shutdown_and_a_stale_controller_are_answered_without_a_transport(apis: KafkaApis) -> None:
    shutdown = apis.handle(CALLER, m.ControlledShutdownRequest(2, 100)).result()
    assert (shutdown.error, shutdown.remaining_partitions) == (Errors.NOT_CONTROLLER, ())
    stale = apis.handle(CALLER, m.StopReplicaRequest(9, 0, -1, [m.StopReplicaPartition(T0, 0, True)])).result()
    assert stale.error is Errors.STALE_CONTROLLER_EPOCH


def test_a_forged_controller_epoch_deletes_nothing_and_leaves_the_real_controller_in_charge(
    apis: KafkaApis, zk_controller: list[ControllerIdentity]
) -> None:
    produced = apis.handle(CALLER, m.ProduceRequest(1, 1000, {T0: rb.build_batch([(None, b"kept")])})).result()
    assert produced.partitions[T0].error is Errors.NONE
    forged = [m.StopReplicaRequest(9, 999, -1, [m.StopReplicaPartition(T0, 0, True)]),
              m.UpdateMetadataRequest(9, 999, -1, [], [], []),
              m.StopReplicaRequest(7, 1, -1, [m.StopReplicaPartition(T0, 0, True)])]  # epoch right, sender not
    assert [apis.handle(CALLER, r).result().error for r in forged] == [Errors.STALE_CONTROLLER_EPOCH] * 3
    read = apis.handle(CALLER, m.FetchRequest(2, 0, 0, 1 << 20, {T0: PartitionData(0)})).result()
    assert [r.value for r in rb.read_records(read.partitions[T0].records)] == [b"kept"]
    # The real controller's next request is not stale, and its successor is believed once ZooKeeper names it.
    state = PartitionInfo("t", 0, 1, 1, isr=(1, 2), replicas=(1, 2), zk_version=1, controller_epoch=1)
    assert apis.handle(CALLER, m.LeaderAndIsrRequest(9, 1, -1, [state])).result().error is Errors.NONE
    zk_controller[0] = ControllerIdentity(2, 8)
    assert apis.handle(CALLER, m.UpdateMetadataRequest(8, 2, -1, [], [], [])).result().error is Errors.NONE
    assert apis.handle(CALLER, m.UpdateMetadataRequest(9, 1, -1, [], [], [])).result().error \
        is Errors.STALE_CONTROLLER_EPOCH


def test_the_first_coordinator_lookup_creates_the_offsets_topic_once(apis: KafkaApis, zk: TopicCreations) -> None:
    for _ in range(2):
        found = apis.handle(CALLER, m.FindCoordinatorRequest("g")).result()
        assert found.error is Errors.COORDINATOR_NOT_AVAILABLE and "being created" in found.message
    assert zk.created == ["__consumer_offsets"]
    too_long = apis.handle(CALLER, m.FindCoordinatorRequest("g" * 40000)).result()
    assert too_long.error is Errors.INVALID_GROUP_ID


def test_group_requests_to_a_broker_that_does_not_coordinate_the_group_are_not_coordinator(apis: KafkaApis) -> None:
    join = JoinGroupRequest("g", "", "client", "consumer", [("range", b"")], 10000, 30000)
    assert apis.handle(CALLER, join).result(timeout=5).error is Errors.NOT_COORDINATOR
    beat = apis.handle(CALLER, m.HeartbeatRequest("g", "member", 1)).result(timeout=5)
    assert beat == m.HeartbeatResponse(Errors.NOT_COORDINATOR)
    assert apis.handle(CALLER, m.LeaveGroupRequest("g", ())).result().error is Errors.INVALID_REQUEST
    committed = apis.handle(CALLER, m.OffsetCommitRequest("g", "member", 1, {
        MISSING: m.CommittedOffset(5)})).result(timeout=5)
    assert committed.errors == {MISSING: Errors.UNKNOWN_TOPIC_OR_PARTITION}  # refused before the coordinator


def test_an_unknown_request_type_is_a_programming_error(apis: KafkaApis) -> None:
    with pytest.raises(TypeError, match="no handler for str"):
        apis.handle(CALLER, "Produce")


@pytest.mark.parametrize("authorizer", [ALICE_READS_T], indirect=True)
def test_the_authorizer_refuses_with_kafkas_codes(apis: KafkaApis) -> None:
    refused = apis.handle(ALICE, m.ProduceRequest(1, 1000, {T0: rb.build_batch([(None, b"x")]),
                                                            MISSING: rb.build_batch([(None, b"x")])})).result()
    # Write is refused, and before existence: the missing topic says so too.
    assert {tp: r.error for tp, r in refused.partitions.items()} == {
        T0: Errors.TOPIC_AUTHORIZATION_FAILED, MISSING: Errors.TOPIC_AUTHORIZATION_FAILED}
    read = apis.handle(ALICE, m.FetchRequest(-1, 0, 0, 1 << 20, {T0: PartitionData(0)})).result()
    assert read.partitions[T0].error is Errors.NONE
    listed = apis.handle(ALICE, m.ListOffsetsRequest({T0: m.ListOffsetsPartition(-1, -1)})).result()
    assert listed.partitions[T0].error is Errors.NONE  # Describe comes with Read
    follower = apis.handle(ALICE, m.FetchRequest(2, 0, 0, 1 << 20, {T0: PartitionData(0)})).result()
    assert follower.partitions[T0].error is Errors.TOPIC_AUTHORIZATION_FAILED  # only brokers fetch as followers
    forged = apis.handle(ALICE, m.StopReplicaRequest(9, 1, -1, [m.StopReplicaPartition(T0, 0, True)])).result()
    assert forged.error is Errors.CLUSTER_AUTHORIZATION_FAILED
    shutdown = apis.handle(ALICE, m.ControlledShutdownRequest(2, 100)).result()
    assert shutdown.error is Errors.CLUSTER_AUTHORIZATION_FAILED
    assert apis.handle(ALICE, m.InitProducerIdRequest()).result().error is Errors.CLUSTER_AUTHORIZATION_FAILED
    assert apis.handle(ALICE, m.FindCoordinatorRequest("g")).result().error is Errors.GROUP_AUTHORIZATION_FAILED
    heartbeat = apis.handle(ALICE, m.HeartbeatRequest("g", "m", 1)).result()
    assert heartbeat.error is Errors.GROUP_AUTHORIZATION_FAILED
    fetched = apis.handle(ALICE, m.OffsetFetchRequest("g")).result()
    assert fetched.error is Errors.GROUP_AUTHORIZATION_FAILED
    # The brokers' own principal is a super user.
    assert apis.handle(BROKER, m.FetchRequest(2, 0, 0, 1 << 20, {T0: PartitionData(0)})).result() \
        .partitions[T0].error is Errors.NONE
