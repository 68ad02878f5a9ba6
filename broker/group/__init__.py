"""The group coordinator's pure heart (Kafka's kafka.coordinator.group, ZooKeeper-era classic groups).

- ``partition_for``: which ``__consumer_offsets`` partition (and so which broker) coordinates a group.
- ``member_metadata`` / ``group_metadata``: Kafka's MemberMetadata and GroupMetadata with the group
  state machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead).
- ``group_coordinator_rules``: Kafka's GroupCoordinator decisions (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
  OffsetCommit, OffsetFetch) and its timers, kept as deadlines that the adapter polls with ``now_ms``.
- ``offsets_log``: the ``__consumer_offsets`` record formats (GroupMetadataManager's schemas) and the
  replay that rebuilds groups and committed offsets when a broker becomes a coordinator.

No threads, sockets or disk here: the broker's adapters feed requests and the time in, and carry the
answers and the records to append out.
"""
