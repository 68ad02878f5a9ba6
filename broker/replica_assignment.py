"""Kafka's rack-unaware replica assignment (AdminUtils.assignReplicasToBrokers without racks).

Goals, as Kafka states them: spread replicas evenly over the brokers, and spread the followers
of the partitions a broker leads over the other brokers. The first replica of each partition
goes round-robin from a start index; the followers follow at a shift that grows by one each
time the partitions wrap around the broker list, so successive rounds pair brokers differently.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Kafka uses one shared Random for assignment; so do we when the caller brings none.
_RAND = random.Random()


class InvalidPartitions(ValueError):
    error_code = 37  # Kafka's INVALID_PARTITIONS


class InvalidReplicationFactor(ValueError):
    error_code = 38  # Kafka's INVALID_REPLICATION_FACTOR


# ZooKeeper's largest znode (jute.maxbuffer, 1 MB), less room for the rest of a topic's znode.
ASSIGNMENT_MAX_BYTES = 1024 * 1024 - 4096


def assignment_bytes(n_partitions: int, replication_factor: int, brokers: Sequence[int], first_id: int = 0) -> int:
    """About how many bytes the assignment takes in the topic's znode: `"12":[1,2,3],` each."""
    id_digits = len(str(first_id + n_partitions - 1))
    broker_digits = max(len(str(b)) for b in brokers)
    return n_partitions * (id_digits + 5 + replication_factor * (broker_digits + 1))


def assign_replicas_to_brokers(
    broker_ids: Sequence[int],
    n_partitions: int,
    replication_factor: int,
    fixed_start_index: int = -1,
    start_partition_id: int = -1,
    rng: random.Random | None = None,
) -> dict[int, list[int]]:
    """{partition id: replicas}, the first replica of each list being its preferred leader.

    The broker list is sorted by id first, as Kafka's AdminZkClient does before calling
    AdminUtils. A `fixed_start_index` >= 0 fixes both the first broker and the follower shift
    (Kafka's tests, and adding partitions, where it is the index of partition 0's leader);
    otherwise both are drawn at random. `start_partition_id` numbers the first new partition.
    """
    if n_partitions <= 0:
        raise InvalidPartitions("Number of partitions must be larger than 0.")
    if replication_factor <= 0:
        raise InvalidReplicationFactor("Replication factor must be larger than 0.")
    if replication_factor > len(broker_ids):
        raise InvalidReplicationFactor(
            f"Replication factor: {replication_factor} larger than available brokers: {len(broker_ids)}."
        )
    # Kafka would build the whole assignment and fail the ZooKeeper write; a count in the billions
    # would exhaust the broker's memory first. Refused up front, past Kafka.
    if assignment_bytes(n_partitions, replication_factor, broker_ids, max(0, start_partition_id)) \
            > ASSIGNMENT_MAX_BYTES:
        raise InvalidPartitions(
            f"Number of partitions: {n_partitions} with replication factor {replication_factor} do not fit in "
            f"one topic znode (ZooKeeper's {ASSIGNMENT_MAX_BYTES // 1024} KB)."
        )
    brokers = sorted(broker_ids)
    n_brokers = len(brokers)
    rand = rng if rng is not None else _RAND
    # Two draws, as in Kafka: where leadership starts, and where the follower shift starts.
    start_index = fixed_start_index if fixed_start_index >= 0 else rand.randrange(n_brokers)
    next_replica_shift = fixed_start_index if fixed_start_index >= 0 else rand.randrange(n_brokers)
    assignment: dict[int, list[int]] = {}
    partition_id = max(0, start_partition_id)
    for _ in range(n_partitions):
        # Each full round over the brokers moves the followers one further along.
        if partition_id > 0 and partition_id % n_brokers == 0:
            next_replica_shift += 1
        first_replica_index = (partition_id + start_index) % n_brokers
        replicas = [brokers[first_replica_index]]
        for j in range(replication_factor - 1):
            replicas.append(brokers[_replica_index(first_replica_index, next_replica_shift, j, n_brokers)])
        assignment[partition_id] = replicas
        partition_id += 1
    return assignment


def _replica_index(first_replica_index: int, second_replica_shift: int, replica_index: int, n_brokers: int) -> int:
    # The shift lies in 1..n_brokers-1, so a follower never lands on the leader's broker, and
    # consecutive followers take consecutive brokers after it.
    shift = 1 + (second_replica_shift + replica_index) % (n_brokers - 1)
    return (first_replica_index + shift) % n_brokers
