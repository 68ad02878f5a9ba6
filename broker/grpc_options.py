"""gRPC options every minikafka server and channel uses."""

# The whole state of a large cluster travels in one UpdateMetadata or LeaderAndIsr request
# (50,000 partitions is a few MB); gRPC's default limit is 4 MB.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def target(host: str, port: int) -> str:
    """A gRPC target for host and port; an IPv6 address goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
