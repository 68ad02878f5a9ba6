"""`minikafka chaos`: faults on a seeded schedule against a real cluster, a recorded history, and a
checker of what each of Kafka's elections promises (in the spirit of Jepsen's 2013 test of Kafka).

- `schedule`: the fault plan drawn from a seed (pure).
- `history`: the events of a run, as JSON lines with monotonic times.
- `checker`: the invariants over a history and the brokers' final logs (pure).
- `workload`: the idempotent producer, the consumer group's members and the standalone consumer.
- `local`: the cluster of processes on this machine, and how to hurt and heal it.
- `runner`: one run from start to verdict, and a suite of runs with its table.
"""
