"""Code generated from proto/minikafka_rpc/*.proto by `make proto`: never edit it by hand."""
