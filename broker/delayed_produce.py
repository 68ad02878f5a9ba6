"""acks=all writes waiting for the ISR (Kafka's DelayedProduce in the produce purgatory): each
write's future is completed once every partition's high watermark passes it, its partition fails,
its timeout passes or the broker stops."""

from __future__ import annotations

from collections.abc import Callable

from broker.delayed_operation import DelayedOperation
from broker.partition import Partition
from broker.replica_results import ProduceResult
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

# The partition, the offset its high watermark must reach, and its min.insync.replicas.
Waiting = dict[TopicPartition, tuple[Partition, int, int]]


class DelayedProduce(DelayedOperation[dict[TopicPartition, ProduceResult]]):
    def __init__(self, waiting: Waiting, results: dict[TopicPartition, ProduceResult], timeout_ms: int,
                 not_leader: Callable[[TopicPartition, Errors], ProduceResult]) -> None:
        super().__init__(timeout_ms)
        self._waiting = waiting
        self._results = results
        self._timeout_ms = timeout_ms
        self._not_leader = not_leader

    def try_complete(self, expired: bool) -> bool:
        """Settle each waiting partition whose high watermark passed its write (or that failed);
        answer once none waits, or at expiry with the rest timed out."""
        for tp, (partition, required, min_isr) in list(self._waiting.items()):
            outcome = partition.acks_all_result(required, min_isr)
            if outcome is None:
                continue
            del self._waiting[tp]
            if outcome is not Errors.NONE:
                self._results[tp] = self._not_leader(tp, outcome)
        if self._waiting and not expired:
            return False
        for tp in self._waiting:
            self._results[tp] = ProduceResult(Errors.REQUEST_TIMED_OUT,
                                              f"not replicated to the ISR within {self._timeout_ms} ms")
        self.future.set_result(self._results)  # a failing callback is logged by Future
        return True
