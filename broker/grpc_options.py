"""gRPC options every minikafka server and channel uses."""

# The whole state of a large cluster travels in one UpdateMetadata or LeaderAndIsr request
# (50,000 partitions is a few MB); gRPC's default limit is 4 MB.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def server_options(request_max_bytes: int) -> list[tuple[str, int]]:
    """A listener's limits. Kafka's socket.request.max.bytes caps what a client may send; the
    answers a broker sends (a large Fetch, the whole cluster's metadata) may be larger.

    Kafka's queued.max.requests, the other limit, is the listener's worker pool: a parked
    JoinGroup, SyncGroup or long-poll Fetch holds a worker thread until it completes, so a group
    of hundreds needs hundreds of workers (threads start only as requests need them). Beyond it
    gRPC refuses a request with RESOURCE_EXHAUSTED at once, where Kafka stops reading sockets
    until the queue drains. Kafka's max.connections has no counterpart: gRPC's Python server
    cannot count or cap connections."""
    return [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", request_max_bytes)]


def target(host: str, port: int) -> str:
    """A gRPC target for host and port; an IPv6 address goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
