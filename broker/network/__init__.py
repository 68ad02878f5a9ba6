"""Kafka's wire protocol beside gRPC: the codec (kio's schemas), the translation to and from the
request layer's messages, and the socket server of a Kafka-protocol listener."""
