#!/opt/venv/bin/python
"""Docker's health check of a broker: exit 0 when its gRPC health service says SERVING (once it
is registered in ZooKeeper), 1 otherwise.

    broker-healthcheck [HOST:PORT] [--command-config FILE]   (FILE: client properties for SSL)"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client.security import PLAINTEXT, read_command_config

parser = argparse.ArgumentParser(prog="broker-healthcheck")
parser.add_argument("address", nargs="?", default="localhost:9092")
parser.add_argument("--command-config", metavar="FILE")
args = parser.parse_args()
security = read_command_config(args.command_config) if args.command_config else PLAINTEXT
try:
    with security.channel(args.address, options=[]) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
except grpc.RpcError as e:
    print(f"{args.address}: {e.code().name}", file=sys.stderr)
    sys.exit(1)
print(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
sys.exit(0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1)
