"""ZooKeeper: Kafka's znode layout and the broker's session."""
