"""The workload of a run, over minikafka's own clients and real sockets:

- the producer: idempotent, acks=all, writing the numbers 0, 1, 2, ... as keyless records (the
  sticky partitioner spreads them) at a steady rate; every send, acknowledgement and error;
- the consumer group's members: each a process of its own (`python -m client.chaos.workload
  member ...`), so that it can be killed, paused and stopped like a broker; each commits what it
  read after every poll and records its polls, commits, assignments and revocations;
- the standalone consumer: every partition assigned, from the beginning, started during a failover.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

from client.chaos import history as h
from client.chaos.history import HistoryWriter
from client.cluster import KafkaError
from client.consumer import ConsumerRecord, KafkaConsumer
from client.group.consumer_coordinator import ConsumerRebalanceListener
from client.producer import FutureRecordMetadata, KafkaProducer
from minikafka_protocol.common import TopicPartition

# The members' session: Kafka's group.min.session.timeout.ms, so a dead member is noticed soon.
MEMBER_SESSION_TIMEOUT_MS = 6000


def number(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def poll_event(records: list[ConsumerRecord]) -> list[list[int | None]]:
    return [[r.partition, r.offset, number(r.value)] for r in records]


class Producer:
    """Sends numbered records from a thread of its own until stopped."""

    def __init__(self, bootstrap: str, topic: str, history: HistoryWriter, rate_per_s: float = 100.0) -> None:
        self._producer = KafkaProducer(bootstrap, acks="all", linger_ms=5, delivery_timeout_ms=120000)
        self._topic = topic
        self._history = history
        self._interval = 1 / rate_per_s
        self._stop = threading.Event()
        self._pending: set[FutureRecordMetadata] = set()
        self._lock = threading.Lock()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="chaos-producer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._history.record(h.SEND, n=n)
            try:
                future = self._producer.send(self._topic, str(n).encode())
            except KafkaError as e:
                self._history.record(h.SEND_ERROR, n=n, error=str(e))
            else:
                with self._lock:
                    self._pending.add(future)
                future.add_done_callback(lambda f, n=n: self._done(n, f))
            n += 1
            self.sent = n
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _done(self, n: int, future: FutureRecordMetadata) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception(0)
        if error is None:
            meta = future.result(0)
            self._history.record(h.ACK, n=n, partition=meta.partition, offset=meta.offset)
        else:
            self._history.record(h.SEND_ERROR, n=n, error=str(error))

    def stop(self, timeout_s: float) -> int:
        """Stop sending and wait (at most `timeout_s`) for the answers; how many are still pending."""
        self._stop.set()
        self._thread.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.05)
        self._producer.close(timeout=1)
        with self._lock:
            return len(self._pending)


class StandaloneReader:
    """A consumer without a group: every partition, from the beginning, until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, history: HistoryWriter) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._history = history
        self._stop = threading.Event()
        self.read: set[int] = set()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def _run(self) -> None:
        consumer = KafkaConsumer(self._bootstrap, auto_offset_reset="earliest", request_timeout_ms=10000)
        try:
            consumer.assign([(self._topic, p) for p in range(self._partitions)])
            consumer.seek_to_beginning()
            while not self._stop.is_set():
                try:
                    records = consumer.poll(200)
                except KafkaError as e:  # retriable errors are retried inside; note the rest and go on
                    self._history.record(h.POLL, records=[], error=str(e))
                    time.sleep(0.2)
                    continue
                if records:
                    self._history.record(h.POLL, records=poll_event(records))
                    self.read.update(n for r in records if (n := number(r.value)) is not None)
        except Exception as e:  # the reader's end is a finding, not a crash of the run
            self.error = f"{type(e).__name__}: {e}"
            self._history.record(h.POLL, records=[], error=self.error)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        if self.started:
            self._thread.join(10)


# -- a group member, in a process of its own ----------------------------------------------------------


class _Recorder(ConsumerRebalanceListener):
    def __init__(self, consumer: KafkaConsumer, history: HistoryWriter, name: str) -> None:
        self.consumer = consumer
        self.history = history
        self.name = name

    def _generation(self) -> int:
        return self.consumer.group_state().generation_id

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        state = self.consumer.group_state()
        self.history.record(h.ASSIGNED, consumer=self.name, member_id=state.member_id,
                            generation=state.generation_id, leader=state.is_leader,
                            partitions=sorted(tp.partition for tp in assigned))

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.history.record(h.REVOKED, consumer=self.name, generation=self._generation(),
                            partitions=sorted(tp.partition for tp in revoked))

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.history.record(h.LOST, consumer=self.name, partitions=sorted(tp.partition for tp in lost))


def run_member(bootstrap: str, topic: str, group: str, name: str, history_path: Path) -> int:
    """Consume as a member of `group` until SIGTERM, committing after every poll."""
    history = HistoryWriter(history_path, name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = KafkaConsumer(
        bootstrap, group_id=group, client_id=name, auto_offset_reset="earliest", enable_auto_commit=False,
        session_timeout_ms=MEMBER_SESSION_TIMEOUT_MS, heartbeat_interval_ms=1000, max_poll_interval_ms=60000,
        request_timeout_ms=10000, default_api_timeout_ms=10000,
    )
    recorder = _Recorder(consumer, history, name)
    consumer.subscribe([topic], recorder)
    try:
        while not stop.is_set():
            try:
                records = consumer.poll(200)
            except KafkaError as e:
                history.record(h.POLL, consumer=name, records=[], error=str(e))
                time.sleep(0.2)
                continue
            if not records:
                continue
            history.record(h.POLL, consumer=name, records=poll_event(records))
            generation = consumer.group_state().generation_id
            offsets = {(r.topic, r.partition): r.offset + 1 for r in records}
            try:
                consumer.commit(offsets)
            except KafkaError as e:
                history.record(h.COMMIT_ERROR, consumer=name, generation=generation, error=str(e))
            else:
                history.record(h.COMMIT, consumer=name, generation=generation,
                               offsets={str(p): o for (_, p), o in offsets.items()})
    finally:
        with contextlib.suppress(Exception):
            consumer.close(timeout_ms=5000)
        history.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.chaos.workload")
    commands = parser.add_subparsers(dest="command", required=True)
    member = commands.add_parser("member", help="one member of the chaos run's consumer group")
    member.add_argument("--bootstrap-server", required=True)
    member.add_argument("--topic", required=True)
    member.add_argument("--group", required=True)
    member.add_argument("--name", required=True, help="client.id, and the history's source")
    member.add_argument("--history", required=True, type=Path)
    args = parser.parse_args(argv)
    return run_member(args.bootstrap_server, args.topic, args.group, args.name, args.history)


if __name__ == "__main__":
    sys.exit(main())
