"""The replica manager's per-partition answers to a produce and to a fetch."""

from __future__ import annotations

from dataclasses import dataclass

from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors


@dataclass
class ProduceResult:
    error: Errors
    message: str = ""
    base_offset: int = -1
    log_start_offset: int = -1
    leader_id: int = -1
    leader_epoch: int = -1


@dataclass
class FetchRequestPartition:
    tp: TopicPartition
    fetch_offset: int
    current_leader_epoch: int = -1
    max_bytes: int = 1048576


@dataclass
class FetchResult:
    error: Errors
    message: str = ""
    high_watermark: int = -1
    log_start_offset: int = -1
    log_end_offset: int = -1
    records: bytes = b""
    leader_id: int = -1
    leader_epoch: int = -1
