"""`minikafka watch`: the four elections of a running cluster, live.

- `snapshot`: plain data, `ClusterSnapshot`, what one refresh saw.
- `collector`: `SnapshotCollector`, one refresh over gRPC (and ZooKeeper's `srvr`).
- `elections`: the change and event detection: what a refresh could not see carried over
  (`remembered`), the elections between two snapshots with their causes (`diff_elections`), and
  `Watch`, the known state, the election log and when each value last changed.
- `render`: the rich rendering and JSON of a snapshot, pure given data, and the refresh loop.
"""
