"""The transport-free request layer (Kafka's KafkaApis).

Every API a broker serves is a handler here that takes the request as plain data, with the
caller's `RequestContext`, and answers with Kafka's error codes. `KafkaApis.handle` is the one
entry point: it answers with a future, so a request that must wait (acks=all Produce, JoinGroup,
SyncGroup, ...) parks without holding a transport's thread. The gRPC services are thin adapters
that convert their messages to these and back; no API's behaviour lives in a transport.
"""
