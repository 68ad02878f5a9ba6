"""The consumer's side of consumer groups (Kafka's ConsumerCoordinator, AbstractCoordinator and
partition assignors), laid out as aiokafka's:

- `consumer_coordinator`: `ConsumerCoordinator`, the group membership of one KafkaConsumer, owned
  by the consumer's thread; the rebalance listener, CommitFailedError, and the decisions over plain
  data (`join_protocols`, `leader_assignment`).
- `rebalance`: one `RebalanceRound` per rebalance (JoinGroup, SyncGroup); it returns
  `NeedsAssignment` to its owner when this member leads, rather than fetching metadata itself.
- `heartbeat`: the `HeartbeatThread`, which reports what it learns for the next poll().
- `wire`: the Group service's calls and requests, transport failures as Kafka's errors, and what
  a member does after each group API error (`reaction_for`).
- `member`: the member as it knows itself (Generation, MemberState, GroupState).
- `assignors`: the partition assignors, one a module, and their registry.
"""
