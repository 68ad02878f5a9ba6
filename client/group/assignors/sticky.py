"""Kafka's StickyAssignor ("sticky", AbstractStickyAssignor's constrained and general algorithms)
and its user data (StickyAssignorUserData v0 and v1), which carries a member's previous
assignment and generation in its Subscription.

Differences from Kafka, on purpose:
- The sticky assignor is pure: its maximum generation is computed per call (Java keeps it on the
  assignor instance across calls), and it computes no `partitionsTransferringOwnership` (that is
  for CooperativeStickyAssignor, not mirrored here).
- Java's general sticky algorithm gives a partition back to its owner of an older generation when
  that balances better, without checking that this member still subscribes to the topic (Java then
  assigns it to a non-subscriber) or still takes part (Java then throws a NullPointerException):
  about 3 % of random groups with stale claims and differing subscriptions. Here that member must
  be subscribed and taking part, else the partition is moved as any other.
- A HashMap's tree bins (8+ colliding keys in one bucket) are not reproduced: with that many
  colliding member ids, the order of the sticky assignor's members may differ from Java's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from client.group.assignors.abstract import Assignments, ConsumerPartitionAssignor
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import (
    DEFAULT_GENERATION,
    Subscription,
    group_by_topic,
    read_topic_partitions,
    write_topic_partitions,
)
from minikafka_protocol.java import hash_map_bucket, hash_map_capacity, hash_map_order, java_string_hash, string_order
from minikafka_protocol.types import Reader, SchemaError, int32

# --- java.util.HashMap iteration order ----------------------------------------------------------


def _topic_partition_hash(tp: TopicPartition) -> int:
    """Kafka's TopicPartition.hashCode: 31 * (31 + partition) + topic.hashCode()."""
    return 31 * (31 + tp.partition) + java_string_hash(tp.topic)


class _JavaHashSet:
    """A java.util.HashSet<TopicPartition>, for which element its iterator returns first."""

    def __init__(self) -> None:
        self._inserted: dict[TopicPartition, int] = {}
        self._count = 0
        self._capacity = 16  # a HashSet grows and never shrinks

    def add(self, tp: TopicPartition) -> None:
        if tp not in self._inserted:
            self._inserted[tp] = self._count
            self._count += 1
            self._capacity = max(self._capacity, hash_map_capacity(len(self._inserted)))

    def discard(self, tp: TopicPartition) -> None:
        self._inserted.pop(tp, None)

    def __len__(self) -> int:
        return len(self._inserted)

    def first(self) -> TopicPartition:
        return min(self._inserted, key=lambda tp: (hash_map_bucket(_topic_partition_hash(tp), self._capacity),
                                                   self._inserted[tp]))


# --- The assignor --------------------------------------------------------------------------------


class StickyAssignor(ConsumerPartitionAssignor):
    """Kafka's StickyAssignor (AbstractStickyAssignor): as balanced as possible first, then keeping
    as many of each member's previously owned partitions as possible.

    When all members subscribe to the same topics, Kafka's constrained algorithm: each member keeps
    its owned partitions up to its quota (`P // C`, or one more for `P % C` of them), the rest go
    round-robin to the members under quota. Otherwise the general algorithm: keep every valid owned
    partition, give each unassigned partition to the least loaded subscriber, then move partitions
    from the most to the least loaded members while that improves the balance, preferring to move
    a partition back where it was in an older generation and never back and forth between two
    members. A partition claimed by several members goes to the one with the highest generation,
    and to none of them when those generations are equal.
    """

    name = "sticky"

    def assign_partitions(self, partitions_per_topic: Mapping[str, int],
                          subscriptions: Mapping[str, Subscription]) -> Assignments:
        if not subscriptions:
            return {}
        # Java iterates the subscriptions HashMap; its order decides who keeps what in a tie.
        members = hash_map_order(subscriptions, java_string_hash)
        member_data = {member: _sticky_member_data(subscriptions[member]) for member in members}
        owned, doubly_claimed, max_generation = _resolve_owned_partitions(
            partitions_per_topic, subscriptions, members, member_data)
        if _all_subscriptions_equal(subscriptions, members):
            return _ConstrainedAssignmentBuilder(partitions_per_topic, members, owned, doubly_claimed).build()
        return _GeneralAssignmentBuilder(partitions_per_topic, subscriptions, members, owned, member_data,
                                         max_generation).build()


def _sticky_member_data(subscription: Subscription) -> tuple[list[TopicPartition], int]:
    """StickyAssignor.memberData: the owned partitions and generation; Java's StickyAssignorUserData
    in the user data wins when present (as in Java), else our plain fields."""
    if subscription.user_data:
        partitions, generation = deserialize_topic_partition_assignment(subscription.user_data)
        return partitions, DEFAULT_GENERATION if generation is None else generation
    return list(subscription.owned_partitions), subscription.generation_id


def _all_subscriptions_equal(subscriptions: Mapping[str, Subscription], members: Sequence[str]) -> bool:
    first = set(subscriptions[members[0]].topics)
    return all(set(subscriptions[member].topics) == first for member in members[1:])


def _resolve_owned_partitions(
        partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription], members: Sequence[str],
        member_data: Mapping[str, tuple[list[TopicPartition], int]],
) -> tuple[dict[str, list[TopicPartition]], set[TopicPartition], int]:
    """AbstractStickyAssignor.allSubscriptionsEqual's bookkeeping: each member's owned partitions
    that still exist, a partition claimed twice going to the higher generation (to neither when
    equal), the partitions claimed twice in one generation, and the highest generation."""
    owned: dict[str, list[TopicPartition]] = {}
    doubly_claimed: set[TopicPartition] = set()
    claimed_by: dict[TopicPartition, str] = {}
    max_generation = DEFAULT_GENERATION
    for member in members:
        partitions, generation = member_data[member]
        max_generation = max(max_generation, generation)
        mine: list[TopicPartition] = []
        owned[member] = mine
        for tp in partitions:
            if not 0 <= tp.partition < partitions_per_topic.get(tp.topic, 0):
                continue
            other = claimed_by.get(tp)
            if other is None:
                mine.append(tp)
                claimed_by[tp] = member
                continue
            # As Java: the other claimant's generation is the one of its Subscription.
            other_generation = subscriptions[other].generation_id
            if generation == other_generation:
                doubly_claimed.add(tp)
                _remove_first(owned[other], tp)
                claimed_by[tp] = member
            elif generation > other_generation:
                mine.append(tp)
                _remove_first(owned[other], tp)
                claimed_by[tp] = member
    return owned, doubly_claimed, max_generation


def _remove_first(items: list[TopicPartition], item: TopicPartition) -> None:
    if item in items:
        items.remove(item)


class _ConstrainedAssignmentBuilder:
    """AbstractStickyAssignor.ConstrainedAssignmentBuilder (all subscriptions equal), without racks."""

    def __init__(self, partitions_per_topic: Mapping[str, int], members: Sequence[str],
                 owned: Mapping[str, list[TopicPartition]], doubly_claimed: set[TopicPartition]) -> None:
        self.partitions_per_topic = partitions_per_topic
        self.members = members
        self.owned = owned
        self.doubly_claimed = doubly_claimed
        total = sum(partitions_per_topic.values())
        self.min_quota, self.expected_over_min = divmod(total, len(members))
        self.max_quota = self.min_quota + (1 if self.expected_over_min else 0)
        self.current_over_min = 0
        self.assignment: Assignments = {member: [] for member in members}
        self.assigned: set[TopicPartition] = set()
        self.unfilled_under_min: list[str] = []
        self.unfilled_exactly_min: list[str] = []

    def build(self) -> Assignments:
        self._assign_owned_partitions()
        unassigned = [TopicPartition(topic, p) for topic in sorted(self.partitions_per_topic, key=string_order)
                      for p in range(self.partitions_per_topic[topic])
                      if TopicPartition(topic, p) not in self.assigned]
        self.unfilled_under_min.sort(key=string_order)
        self.unfilled_exactly_min.sort(key=string_order)
        self._assign_round_robin(unassigned)
        self._verify_unfilled_members()
        return self.assignment

    def _keep(self, member: str, partitions: list[TopicPartition]) -> None:
        self.assignment[member].extend(partitions)
        self.assigned.update(partitions)

    def _assign_owned_partitions(self) -> None:
        for member in self.members:
            # Java keeps the lowest partition numbers first, across topics.
            owned = sorted((tp for tp in self.owned[member] if tp not in self.doubly_claimed),
                           key=lambda tp: (tp.partition, string_order(tp.topic)))
            if len(owned) < self.min_quota:
                self._keep(member, owned)
                self.unfilled_under_min.append(member)
            elif len(owned) >= self.max_quota and self.current_over_min < self.expected_over_min:
                self.current_over_min += 1
                if self.current_over_min == self.expected_over_min:
                    self.unfilled_exactly_min.clear()
                self._keep(member, owned[:self.max_quota])
            else:
                self._keep(member, owned[:self.min_quota])
                if self.current_over_min < self.expected_over_min:
                    self.unfilled_exactly_min.append(member)

    def _assign_round_robin(self, unassigned: list[TopicPartition]) -> None:
        # Java walks an iterator over the members under quota, restarting it when it runs out,
        # and takes members at exactly minQuota only once none is under quota.
        position = 0
        for index, tp in enumerate(unassigned):
            if position < len(self.unfilled_under_min):
                member = self.unfilled_under_min[position]
                position += 1
            elif not self.unfilled_under_min and not self.unfilled_exactly_min:
                raise AssertionError(f"no more unfilled consumers for {unassigned[index:]}")
            elif not self.unfilled_under_min:
                member = self.unfilled_exactly_min.pop(0)
            else:
                member = self.unfilled_under_min[0]
                position = 1
            self.assignment[member].append(tp)
            count = len(self.assignment[member])
            if count == self.min_quota:
                position -= 1
                del self.unfilled_under_min[position]
                self.unfilled_exactly_min.append(member)
            elif count == self.max_quota:
                self.current_over_min += 1

    def _verify_unfilled_members(self) -> None:
        if not self.unfilled_under_min:
            return
        if self.current_over_min != self.expected_over_min:
            raise AssertionError("members remain under quota with no partitions left to assign")
        for member in self.unfilled_under_min:
            if len(self.assignment[member]) != self.min_quota:
                raise AssertionError(f"consumer {member} does not reach minQuota partitions")


class _PartitionMovements:
    """AbstractStickyAssignor.PartitionMovements: where partitions moved during this rebalance, so
    that no partition of a topic moves from A to B while another moves from B to A."""

    def __init__(self) -> None:
        self.movements: dict[TopicPartition, tuple[str, str]] = {}
        self.by_topic: dict[str, dict[tuple[str, str], _JavaHashSet]] = {}

    def _remove_record(self, tp: TopicPartition) -> tuple[str, str]:
        pair = self.movements.pop(tp)
        topic_moves = self.by_topic[tp.topic]
        topic_moves[pair].discard(tp)
        if not topic_moves[pair]:
            del topic_moves[pair]
        if not topic_moves:
            del self.by_topic[tp.topic]
        return pair

    def _add_record(self, tp: TopicPartition, pair: tuple[str, str]) -> None:
        self.movements[tp] = pair
        self.by_topic.setdefault(tp.topic, {}).setdefault(pair, _JavaHashSet()).add(tp)

    def move(self, tp: TopicPartition, old: str, new: str) -> None:
        if tp in self.movements:
            source, _ = self._remove_record(tp)
            if source != new:  # not simply moving back where it came from
                self._add_record(tp, (source, new))
        else:
            self._add_record(tp, (old, new))

    def partition_to_move(self, tp: TopicPartition, old: str, new: str) -> TopicPartition:
        """getTheActualPartitionToBeMoved: rather than moving `tp` from `old` to `new`, move back a
        partition of the same topic that went from `new` to `old`, if any."""
        topic_moves = self.by_topic.get(tp.topic)
        if topic_moves is None:
            return tp
        if tp in self.movements:
            old = self.movements[tp][0]
        reverse = topic_moves.get((new, old))
        return tp if reverse is None else reverse.first()


class _GeneralAssignmentBuilder:
    """AbstractStickyAssignor.GeneralAssignmentBuilder (subscriptions differ), without racks."""

    def __init__(self, partitions_per_topic: Mapping[str, int], subscriptions: Mapping[str, Subscription],
                 members: Sequence[str], owned: Mapping[str, list[TopicPartition]],
                 member_data: Mapping[str, tuple[list[TopicPartition], int]], max_generation: int) -> None:
        self.partitions_per_topic = partitions_per_topic
        self.members = members
        self.member_data = member_data
        self.max_generation = max_generation
        self.subscribed = {member: set(subscriptions[member].topics) for member in members}
        self.topic_consumers: dict[str, list[str]] = {topic: [] for topic in partitions_per_topic}
        self.consumer_topics: dict[str, list[str]] = {}
        for member in members:
            topics = [topic for topic in subscriptions[member].topics if topic in partitions_per_topic]
            self.consumer_topics[member] = topics
            for topic in topics:
                self.topic_consumers[topic].append(member)
        self.current: Assignments = {member: list(owned[member]) for member in members}
        self.owner: dict[TopicPartition, str] = {tp: m for m, tps in self.current.items() for tp in tps}
        # Topics with the fewest potential consumers first: they have the least choice.
        sorted_topics = sorted(partitions_per_topic,
                               key=lambda topic: (len(self.topic_consumers[topic]), string_order(topic)))
        self.sorted_all_partitions = [TopicPartition(topic, p) for topic in sorted_topics
                                      for p in range(partitions_per_topic[topic])]
        self.active = set(members)  # Java's sortedCurrentSubscriptions: those that may still change
        self.movements = _PartitionMovements()
        self.revocation_required = False

    def build(self) -> Assignments:
        previous = self._previous_assignment()
        assigned = set(self._assign_owned_partitions())
        unassigned = [tp for tp in self.sorted_all_partitions if tp not in assigned]
        self._balance(previous, unassigned)
        return self.current

    def _load(self, member: str) -> tuple[int, bytes]:
        return (len(self.current[member]), string_order(member))

    def _previous_assignment(self) -> dict[TopicPartition, tuple[str, int]]:
        """prepopulateCurrentAssignments: for partitions owned in an older generation than the
        newest one, their most recent such owner, where they may go back to restore the balance."""
        previous: dict[TopicPartition, tuple[str, int]] = {}
        for member in self.members:
            partitions, generation = self.member_data[member]
            if generation < self.max_generation:
                for tp in partitions:
                    if tp not in previous or generation > previous[tp][1]:
                        previous[tp] = (member, generation)
        return previous

    def _assign_owned_partitions(self) -> list[TopicPartition]:
        assigned: list[TopicPartition] = []
        for member in self.members:
            kept: list[TopicPartition] = []
            for tp in self.current[member]:
                if tp.topic not in self.topic_consumers:
                    self.owner.pop(tp, None)
                elif tp.topic not in self.subscribed[member]:
                    self.owner.pop(tp, None)
                    self.revocation_required = True  # unsubscribed: the partition must move
                else:
                    kept.append(tp)
                    assigned.append(tp)
            self.current[member] = kept
        return assigned

    def _max_assignment_size(self, member: str) -> int:
        return sum(self.partitions_per_topic[topic] for topic in self.consumer_topics[member])

    def _least_loaded_subscriber(self, topic: str) -> str | None:
        candidates = [member for member in self.topic_consumers[topic] if member in self.active]
        return min(candidates, key=self._load) if candidates else None

    def _can_topic_participate(self, topic: str) -> bool:
        return len(self.topic_consumers[topic]) >= 2

    def _can_consumer_participate(self, member: str) -> bool:
        if len(self.current[member]) < self._max_assignment_size(member):
            return True
        return any(self._can_topic_participate(tp.topic) for tp in self.current[member])

    def _balance(self, previous: dict[TopicPartition, tuple[str, int]], unassigned: list[TopicPartition]) -> None:
        initializing = not any(self.current.values())
        for tp in unassigned:
            member = self._least_loaded_subscriber(tp.topic)
            if member is not None:
                self.current[member].append(tp)
                self.owner[tp] = member

        # Only partitions with two or more potential consumers, and members that could change, take part.
        fixed_topics = {topic for topic in self.topic_consumers if not self._can_topic_participate(topic)}
        reassignable = [tp for tp in self.sorted_all_partitions if tp.topic not in fixed_topics]
        unassigned = [tp for tp in unassigned if tp.topic not in fixed_topics]
        fixed: Assignments = {}
        for member in self.members:
            if not self._can_consumer_participate(member):
                self.active.discard(member)
                fixed[member] = self.current.pop(member)

        before = {member: list(tps) for member, tps in self.current.items()}
        owner_before = dict(self.owner)
        if not self.revocation_required:
            self._perform_reassignments(unassigned, previous)  # first, move only the new partitions
        performed = self._perform_reassignments(reassignable, previous)
        # Moving partitions must pay off in balance, else back to the assignment before moving.
        if not initializing and performed and _balance_score(self.current) >= _balance_score(before):
            self.current = before
            self.owner = owner_before
        self.current.update(fixed)
        self.active.update(fixed)

    def _perform_reassignments(self, partitions: list[TopicPartition],
                               previous: dict[TopicPartition, tuple[str, int]]) -> bool:
        performed = False
        modified = True
        while modified:
            modified = False
            for tp in partitions:
                if self._is_balanced():
                    break
                member = self.owner[tp]
                earlier = previous.get(tp)
                if (earlier is not None and earlier[0] in self.active and tp.topic in self.subscribed[earlier[0]]
                        and len(self.current[member]) > len(self.current[earlier[0]]) + 1):
                    self._reassign(tp, earlier[0])
                    performed = modified = True
                    continue
                if any(other in self.active and len(self.current[member]) > len(self.current[other]) + 1
                       for other in self.topic_consumers[tp.topic]):
                    target = self._least_loaded_subscriber(tp.topic)
                    assert target is not None
                    self._reassign(tp, target)
                    performed = modified = True
        return performed

    def _reassign(self, tp: TopicPartition, new: str) -> None:
        moved = self.movements.partition_to_move(tp, self.owner[tp], new)
        old = self.owner[moved]
        self.movements.move(moved, old, new)
        self.current[old].remove(moved)
        self.current[new].append(moved)
        self.owner[moved] = new

    def _is_balanced(self) -> bool:
        """Balanced when counts differ by at most one, or no member could take a partition of its
        topics from a member with two or more partitions more."""
        if not self.active:
            return True
        sizes = [len(self.current[member]) for member in self.active]
        if min(sizes) >= max(sizes) - 1:
            return True
        for member in self.active:
            count = len(self.current[member])
            if count == self._max_assignment_size(member):
                continue
            mine = set(self.current[member])
            for topic in self.consumer_topics[member]:
                for p in range(self.partitions_per_topic[topic]):
                    tp = TopicPartition(topic, p)
                    other = self.owner.get(tp)
                    if tp not in mine and other in self.active and count + 1 < len(self.current[other]):
                        return False
        return True


def _balance_score(assignment: Assignments) -> int:
    """getBalanceScore: the sum of the count differences over all pairs of members; 0 is perfect."""
    sizes = sorted(len(tps) for tps in assignment.values())
    return sum(size * (2 * i - len(sizes) + 1) for i, size in enumerate(sizes))


# --- StickyAssignor's user data ------------------------------------------------------------------


def serialize_topic_partition_assignment(partitions: Iterable[TopicPartition],
                                         generation: int = DEFAULT_GENERATION) -> bytes:
    """StickyAssignor.serializeTopicPartitionAssignment: StickyAssignorUserData v1 (previous
    assignment, generation), no version prefix; topics in Java's HashMap order, as Java writes them."""
    groups = group_by_topic(TopicPartition(*tp) for tp in partitions)
    topics = hash_map_order(groups, java_string_hash)
    return write_topic_partitions((topic, groups[topic]) for topic in topics) + int32(generation)


def deserialize_topic_partition_assignment(data: bytes) -> tuple[list[TopicPartition], int | None]:
    """StickyAssignor.deserializeTopicPartitionAssignment: v1, else v0 (no generation: None), else
    nothing (no partitions, DEFAULT_GENERATION), since a member's old data must not fail the group."""
    reader = Reader(data)
    try:
        partitions = read_topic_partitions(reader)
    except SchemaError:
        return [], DEFAULT_GENERATION
    try:
        return partitions, reader.int32()
    except SchemaError:
        return partitions, None
