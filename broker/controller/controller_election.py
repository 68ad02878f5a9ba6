"""Controller election: the decisions, as pure functions over plain values.

The race itself is one ZooKeeper multi (KafkaZkClient.register_controller_and_increment_epoch);
what a broker makes of what it reads before and after is decided here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum


class ElectionStep(Enum):
    # /controller names a broker: watch it and wait (Kafka's "stopping the election process").
    FOLLOW = "follow"
    # /controller is missing: race for it.
    RACE = "race"
    # /controller cannot stand: remove it (conditionally on its version), then race.
    CLEAR = "clear"


def next_election_step(
    controller_id: int | None, malformed: bool, broker_id: int, acting_as_controller: bool
) -> ElectionStep:
    """What a broker does on reading /controller at the start of an election.

    Kafka waits for a malformed /controller to go away; minikafka removes it, because no
    broker wrote it, nothing else would ever clear it, and the election must converge. The
    same goes for a /controller naming this broker when it is not acting as controller (it
    resigned after a refused write, or gave up a session ZooKeeper later revived): nobody
    would act on it, and nobody else could be elected while it stands."""
    if malformed:
        return ElectionStep.CLEAR
    if controller_id is None:
        return ElectionStep.RACE
    if controller_id == broker_id and not acting_as_controller:
        return ElectionStep.CLEAR
    return ElectionStep.FOLLOW


def is_active(broker_id: int, active_controller_id: int) -> bool:
    return active_controller_id == broker_id


def must_resign(broker_id: int, was_active_controller_id: int, now_controller_id: int) -> bool:
    """KafkaController.maybeResign: a broker that was controller and no longer is resigns."""
    return is_active(broker_id, was_active_controller_id) and not is_active(broker_id, now_controller_id)


@dataclass(frozen=True)
class BrokerChanges:
    """What a change under /brokers/ids means (KafkaController.processBrokerChange)."""

    new: tuple[int, ...]
    dead: tuple[int, ...]
    # Same id, newer broker epoch: the broker restarted between two reads.
    bounced: tuple[int, ...]
    live: tuple[int, ...]

    @property
    def any(self) -> bool:
        return bool(self.new or self.dead or self.bounced)


def broker_changes(known: Mapping[int, int], current: Mapping[int, int]) -> BrokerChanges:
    """Compare {broker id: broker epoch} as the controller knew it with what ZooKeeper holds."""
    new = sorted(set(current) - set(known))
    dead = sorted(set(known) - set(current))
    bounced = sorted(b for b in set(current) & set(known) if current[b] > known[b])
    return BrokerChanges(tuple(new), tuple(dead), tuple(bounced), tuple(sorted(current)))


def imbalanced_partitions(
    assignments: Mapping[tuple[str, int], Sequence[int]],
    leaders: Mapping[tuple[str, int], int],
    live: Collection[int],
    imbalance_percentage: int,
) -> list[tuple[str, int]]:
    """Kafka's checkAndTriggerAutoLeaderRebalance: for each live preferred broker, the share of
    the partitions it prefers that it does not lead; above leader.imbalance.per.broker.percentage,
    the partitions it should lead again (it must be alive to be chosen)."""
    by_preferred: dict[int, list[tuple[str, int]]] = {}
    for tp, replicas in assignments.items():
        if replicas:
            by_preferred.setdefault(replicas[0], []).append(tp)
    chosen = []
    for broker, partitions in sorted(by_preferred.items()):
        if broker not in live:
            continue
        not_led = [tp for tp in partitions if leaders.get(tp) != broker]
        if len(not_led) * 100 > imbalance_percentage * len(partitions):
            chosen.extend(sorted(not_led))
    return chosen
