"""The minikafka broker: one process per broker, coordinated through ZooKeeper."""
