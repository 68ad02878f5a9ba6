"""The controller: controller election, failover and broker changes."""
