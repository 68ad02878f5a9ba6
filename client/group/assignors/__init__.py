"""Kafka's consumer partition assignors, as pure code (org.apache.kafka.clients.consumer).

The group leader computes the partition assignment of its group with the assignor the group voted
for; the coordinator only carries the members' metadata and the result as opaque bytes.

- `abstract`: ConsumerPartitionAssignor (the entry point every assignor shares) and MemberInfo.
- `range`, `roundrobin`, `sticky`: RangeAssignor ("range"), RoundRobinAssignor ("roundrobin") and
  StickyAssignor ("sticky", with AbstractStickyAssignor's constrained and general algorithms and
  its StickyAssignorUserData), over plain data: the partition count of each topic and each
  member's `Subscription`; the result maps each member id to its partitions, sorted.
- Here, the registry: `ASSIGNORS`, `assignor_for` and `select_assignor` (the assignor of the
  group's vote).

The consumer protocol's bytes (Subscription, Assignment) and the vote itself are Kafka protocol
shared with the broker, in `minikafka_protocol.consumer_protocol` and `minikafka_protocol.group`.

Where Java iterates a HashMap whose order changes a result (which members the sticky assignor
serves first, which moved partition it moves back, the vote's tie), the order of a
java.util.HashMap is reproduced (`java_string_hash`, bucket order, then insertion order), so
results match Kafka's: checked against Kafka's own classes on thousands of random groups (the
test suite keeps a digest of such a check), member ids in any script included.

Differences from Kafka, on purpose:
- Rack-aware assignment (KIP-881) is left out: `rack_id` travels on the wire but is not used.
- Other guards: an owned partition beyond its topic's partition count is dropped (Java would keep
  it); a member with an empty subscription never makes the subscriptions "all equal"; a topic
  listed twice in a subscription counts once.
- The sticky assignor's own differences are listed in `sticky`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from client.group.assignors.abstract import Assignments, ConsumerPartitionAssignor, MemberInfo
from client.group.assignors.range import RangeAssignor
from client.group.assignors.roundrobin import RoundRobinAssignor
from client.group.assignors.sticky import StickyAssignor
from minikafka_protocol.group import select_protocol

__all__ = [
    "ASSIGNORS",
    "Assignments",
    "ConsumerPartitionAssignor",
    "MemberInfo",
    "RangeAssignor",
    "RoundRobinAssignor",
    "StickyAssignor",
    "assignor_for",
    "select_assignor",
]

ASSIGNORS: dict[str, ConsumerPartitionAssignor] = {
    assignor.name: assignor for assignor in (RangeAssignor(), RoundRobinAssignor(), StickyAssignor())
}


def assignor_for(protocol: str) -> ConsumerPartitionAssignor:
    """The assignor of a protocol name (ConsumerCoordinator.lookupAssignor)."""
    try:
        return ASSIGNORS[protocol]
    except KeyError:
        raise ValueError(f"coordinator selected invalid assignment protocol: {protocol}") from None


def select_assignor(member_protocols: Iterable[Sequence[str]]) -> ConsumerPartitionAssignor:
    """The assignor of the protocol the group voted for, given each member's protocols by preference."""
    return assignor_for(select_protocol(member_protocols))

