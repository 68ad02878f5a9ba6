#!/opt/venv/bin/python
"""Docker's health check of a broker: exit 0 when its gRPC health service says SERVING (once it
is registered in ZooKeeper), 1 otherwise."""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

address = sys.argv[1] if len(sys.argv) > 1 else "localhost:9092"
try:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
except grpc.RpcError as e:
    print(f"{address}: {e.code().name}", file=sys.stderr)
    sys.exit(1)
print(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
sys.exit(0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1)
