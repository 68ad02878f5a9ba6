"""The gRPC transport: one servicer per service of proto/minikafka_rpc/kafka.proto (Admin,
BrokerControl, Data, Group), each a thin adapter that converts its messages to the request
layer's (broker/api) and back. No API's behaviour lives here."""
