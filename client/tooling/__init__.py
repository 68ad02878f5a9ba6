"""The cluster tooling: what starts, hurts and inspects a cluster of real processes from outside
(Debian's ZooKeeper server, `python -m broker` processes, proxies that cut them off, ZooKeeper's
four-letter words), for `minikafka local-cluster`, `minikafka chaos`, `minikafka watch`, the
tests and the benchmarks. Like kazoo's `kazoo/testing`, it sits beside the code it drives, not
inside it: nothing here imports the broker, which it runs only as processes.
"""
