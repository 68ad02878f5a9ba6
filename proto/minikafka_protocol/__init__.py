"""Kafka's own definitions, shared by the broker and the clients.

It lives in `proto/`, beside the gRPC definitions (`minikafka_rpc`), because both are the protocol
the two sides speak and neither side owns: the error codes, `TopicPartition`, Java's hash
functions that decide where a key or a group lands, the group protocol's constants and vote, the
consumer protocol's metadata bytes, and the primitive types that Kafka's schemas are made of.
"""
