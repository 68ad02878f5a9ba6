"""The `minikafka` command line, a module per command group: `cluster` (cluster describe,
local-cluster), `topics` (topics, leader-election), `produce_consume`, `groups`, `watch` and
`chaos`, `certs`, `acls`, the shared errors and checks in `common`, and the parser and `main` in `main`.
"""

from client.cli.main import main

__all__ = ["main"]
