"""The group coordinator (Kafka's kafka.coordinator.group, ZooKeeper-era classic groups).

- ``group_coordinator``: Kafka's GroupCoordinator, the running coordinator: its thread owns all group
  state, handles the group requests (their answers are futures) and follows the leadership of
  ``__consumer_offsets``.
- ``group_coordinator_rules``: its rules, pure: the decisions of JoinGroup, SyncGroup, Heartbeat,
  LeaveGroup, OffsetCommit and OffsetFetch and the timers, kept as deadlines polled with ``now_ms``;
  they answer with the stores to make as plain data.
- ``group_metadata_manager``: Kafka's GroupMetadataManager: loading an offsets partition's groups and
  offsets, storing group and offset records, and which offsets partitions are owned or loading.
- ``member_metadata`` / ``group_metadata``: Kafka's MemberMetadata and GroupMetadata with the group
  state machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead).
- ``offsets_log``: the ``__consumer_offsets`` record formats (GroupMetadataManager's schemas) and the
  replay that rebuilds groups and committed offsets.
- ``offsets_topic``: the creation of ``__consumer_offsets`` on the first FindCoordinator.
"""
